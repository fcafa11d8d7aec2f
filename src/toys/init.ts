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

/**
 * Returns a random rows×cols matrix, row-major, with orthonormal columns when rows ≥ cols and
 * orthonormal rows otherwise, as PyTorch's `orthogonal_` initialises a rectangular weight (the Q
 * factor of a standard normal matrix with R's diagonal made positive). O(rows·cols·min(rows, cols)).
 */
export function randomSemiOrthogonal(rows: number, cols: number, random: RandomStream): Float64Array {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new RangeError(`randomSemiOrthogonal: rows and cols must be positive integers, received ${rows} × ${cols}`);
  }
  const tall = Math.max(rows, cols);
  const narrow = Math.min(rows, cols);
  for (;;) {
    // A tall×narrow Gaussian matrix; its columns become orthonormal.
    const matrix = Float64Array.from(random.normalArray(tall * narrow));
    if (!orthonormalizeRectangularColumns(matrix, tall, narrow)) continue;
    if (rows >= cols) return matrix;
    const transposed = new Float64Array(rows * cols);
    for (let i = 0; i < tall; i++) {
      for (let j = 0; j < narrow; j++) transposed[j * cols + i] = matrix[i * narrow + j];
    }
    return transposed;
  }
}

/** Orthonormalises the columns of a row-major n×n matrix in place; false when a column vanishes. */
function orthonormalizeColumns(matrix: Float64Array, n: number): boolean {
  return orthonormalizeRectangularColumns(matrix, n, n);
}

/**
 * Orthonormalises the columns of a row-major rows×cols matrix (rows ≥ cols) in place by modified
 * Gram–Schmidt; false when a column vanishes.
 */
function orthonormalizeRectangularColumns(matrix: Float64Array, rows: number, cols: number): boolean {
  for (let column = 0; column < cols; column++) {
    for (let previous = 0; previous < column; previous++) {
      let projection = 0;
      for (let row = 0; row < rows; row++) projection += matrix[row * cols + previous] * matrix[row * cols + column];
      for (let row = 0; row < rows; row++) matrix[row * cols + column] -= projection * matrix[row * cols + previous];
    }
    let norm = 0;
    for (let row = 0; row < rows; row++) norm += matrix[row * cols + column] ** 2;
    norm = Math.sqrt(norm);
    if (!(norm > 1e-10)) return false;
    for (let row = 0; row < rows; row++) matrix[row * cols + column] /= norm;
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
