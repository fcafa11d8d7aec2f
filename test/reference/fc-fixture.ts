/**
 * Test fixtures: a small FC flow with non-trivial seeded weights, the matching float64 reference
 * model, and conversions between tensors and float64 rows.
 */
import * as tf from '@tensorflow/tfjs-core';

import { createFcFlow, type FcFlow } from '../../src/models/fc-flow.js';
import { RandomStream } from '../../src/random/stream.js';
import type { FcReferenceModel } from './fc-reference.js';

export interface FcFixtureOptions {
  dimension: number;
  depth: number;
  residual: boolean;
  seed: number;
  /** Standard deviation of the perturbation added to W = −I, scaled by 1/√D. Default 0.5. */
  weightNoise?: number;
}

/**
 * Creates an FC flow whose weights are −I + (weightNoise/√D)·N(0, 1) and whose biases are
 * 1 + 0.3·N(0, 1), plus the float64 reference model holding the very same float32 values.
 */
export function createFcFixture(options: FcFixtureOptions): { model: FcFlow; reference: FcReferenceModel } {
  const { dimension, depth, residual, seed } = options;
  const noise = (options.weightNoise ?? 0.5) / Math.sqrt(dimension);
  const random = new RandomStream(seed);
  const model = createFcFlow({ dimension, depth, residual });
  const weights: Float64Array[] = [];
  const biases: Float64Array[] = [];
  for (const layer of model.denseLayers) {
    const w = random.normalArray(dimension * dimension).map((value) => value * noise);
    for (let i = 0; i < dimension; i++) w[i * dimension + i] -= 1;
    const b = random.normalArray(dimension).map((value) => 1 + 0.3 * value);
    assignValues(layer.weight, tf.tensor2d(w, [dimension, dimension]));
    assignValues(layer.bias, tf.tensor1d(b));
    weights.push(Float64Array.from(w));
    biases.push(Float64Array.from(b));
  }
  return { model, reference: { dimension, weights, biases, alpha: model.alpha, residual } };
}

/** Returns `count` rows of `dimension` standard normals times `scale`, rounded to float32. */
export function randomRows(random: RandomStream, count: number, dimension: number, scale = 1): Float64Array[] {
  return Array.from({ length: count }, () => Float64Array.from(random.normalArray(dimension).map((v) => v * scale)));
}

/** Stacks float64 rows into a float32 tensor [rows, D]. */
export function rowsToTensor(rows: ArrayLike<number>[]): tf.Tensor2D {
  const dimension = rows[0].length;
  const flat = new Float32Array(rows.length * dimension);
  rows.forEach((row, r) => flat.set(Array.from(row), r * dimension));
  return tf.tensor2d(flat, [rows.length, dimension]);
}

/** Reads a tensor [rows, …] back as float64 rows of its flattened samples. */
export function tensorToRows(tensor: tf.Tensor): Float64Array[] {
  const values = tensor.dataSync();
  const rows = tensor.shape[0];
  const dimension = values.length / rows;
  return Array.from({ length: rows }, (_, r) => Float64Array.from(values.subarray(r * dimension, (r + 1) * dimension)));
}

/** Disposes every variable of the model. */
export function disposeModel(model: { variables: tf.Variable[] }): void {
  for (const variable of model.variables) variable.dispose();
}

/** Assigns `value` to the variable and disposes `value`. */
export function assignValues(variable: tf.Variable, value: tf.Tensor): void {
  variable.assign(value);
  value.dispose();
}
