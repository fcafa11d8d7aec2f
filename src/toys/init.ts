/**
 * Parameter initialisers of the toy models, drawn from a `RandomStream` in float64.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { RandomStream } from '../random/stream.js';

/**
 * Returns a random n×n orthogonal matrix, row-major, distributed uniformly (Haar measure): the Q
 * factor of a standard normal matrix with R's diagonal made positive, which is what PyTorch's
 * `orthogonal_` produces. Built by modified Gram–Schmidt on the columns, in float64. O(n³).
 */
export function randomOrthogonal(n: number, random: RandomStream): Float64Array {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`randomOrthogonal: n must be a positive integer, received ${n}`);
  }
  // Draw until the Gaussian matrix is numerically full rank; a rank-deficient draw has probability 0.
  for (;;) {
    const matrix = Float64Array.from(random.normalArray(n * n));
    if (orthonormalizeColumns(matrix, n)) return matrix;
  }
}

/** Orthonormalises the columns of a row-major n×n matrix in place; false when a column vanishes. */
function orthonormalizeColumns(matrix: Float64Array, n: number): boolean {
  for (let column = 0; column < n; column++) {
    for (let previous = 0; previous < column; previous++) {
      let projection = 0;
      for (let row = 0; row < n; row++) projection += matrix[row * n + previous] * matrix[row * n + column];
      for (let row = 0; row < n; row++) matrix[row * n + column] -= projection * matrix[row * n + previous];
    }
    let norm = 0;
    for (let row = 0; row < n; row++) norm += matrix[row * n + column] ** 2;
    norm = Math.sqrt(norm);
    if (!(norm > 1e-10)) return false;
    for (let row = 0; row < n; row++) matrix[row * n + column] /= norm;
  }
  return true;
}

/** Returns `count` values uniform on [−bound, bound) as a Float32Array. O(count). */
export function uniformSymmetric(count: number, bound: number, random: RandomStream): Float32Array {
  const values = random.uniformArray(count);
  for (let i = 0; i < count; i++) values[i] = bound * (2 * values[i] - 1);
  return values;
}

/**
 * Returns a trainable (or frozen) variable holding `initial`, and disposes `initial`: a variable
 * shares the tensor's data but counts as a tensor of its own.
 */
export function variableFrom<R extends tf.Rank>(initial: tf.Tensor<R>, trainable = true): tf.Variable<R> {
  const variable = tf.variable(initial, trainable);
  initial.dispose();
  return variable;
}
