import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { useBackend } from '../../src/backend/select.js';
import { installRowSumKernel, uninstallRowSumKernel } from '../../src/tensor/wasm-sum.js';

/** Returns float32 values of `size` that are not all of one magnitude, so a dropped one shows. */
function values(size: number): number[] {
  return Array.from({ length: size }, (_, i) => Math.sin(i * 1.37 + 0.2) * (1 + (i % 7)));
}

/** Sums `data` (row-major, rows of `rowSize`) in float64. */
function exactRowSums(data: Float32Array, rowSize: number): number[] {
  const sums: number[] = [];
  for (let start = 0; start < data.length; start += rowSize) {
    let sum = 0;
    for (let j = start; j < start + rowSize; j++) sum += data[j]!;
    sums.push(sum);
  }
  return sums;
}

describe('SIMD row-sum kernel for Sum on wasm', () => {
  before(async () => {
    await useBackend('wasm');
    installRowSumKernel();
  });

  after(() => {
    // The backend selection installs this kernel, so other tests keep it.
    installRowSumKernel();
  });

  // Row sizes below, at and around the 4- and 16-value blocks, and the FC model's D = 784.
  const cases: Array<{ shape: number[]; axis: number | number[]; keepDims: boolean }> = [
    { shape: [1], axis: 0, keepDims: false },
    { shape: [3], axis: 0, keepDims: false },
    { shape: [6, 5], axis: 1, keepDims: false },
    { shape: [4, 16], axis: -1, keepDims: true },
    { shape: [3, 17], axis: 1, keepDims: false },
    { shape: [2, 35], axis: 1, keepDims: false },
    { shape: [300, 784], axis: 1, keepDims: false },
    { shape: [2, 3, 4, 5], axis: [2, 3], keepDims: false },
    { shape: [2, 3, 4, 5], axis: [3, 1, 2], keepDims: true },
    { shape: [5, 7], axis: [0, 1], keepDims: false },
    { shape: [0, 7], axis: 1, keepDims: false },
  ];

  for (const { shape, axis, keepDims } of cases) {
    it(`sum of [${shape}] over ${JSON.stringify(axis)} matches float64`, () => {
      const size = shape.reduce((p, d) => p * d, 1);
      const x = tf.tensor(values(size), shape, 'float32');
      const sum = tf.sum(x, axis, keepDims);
      uninstallRowSumKernel();
      const original = tf.sum(x, axis, keepDims);
      installRowSumKernel();
      assert.deepEqual(sum.shape, original.shape);

      const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + shape.length : a));
      const rowSize = shape.filter((_, i) => axes.includes(i)).reduce((p, d) => p * d, 1);
      const exact = exactRowSums(x.dataSync() as Float32Array, rowSize);
      const got = sum.dataSync();
      assert.equal(got.length, exact.length);
      // float32 sums of up to 784 values of magnitude ≤ 7: a few ulps of the sum's terms.
      const tolerance = 1e-6 * 7 * rowSize + 1e-6;
      exact.forEach((expected, i) => assert.ok(Math.abs(got[i]! - expected) <= tolerance, `row ${i}: ${got[i]} against ${expected}`));
      tf.dispose([x, sum, original]);
    });
  }

  it('sums over leading axes and int32 values', () => {
    const x = tf.tensor(values(12), [3, 4]);
    const columnSums = tf.sum(x, 0);
    const exact = exactRowSums(tf.transpose(x).dataSync() as Float32Array, 3);
    columnSums.dataSync().forEach((got, i) => assert.ok(Math.abs(got - exact[i]!) <= 1e-5, `column ${i}: ${got} against ${exact[i]}`));
    const integers = tf.tensor([[1, 2, 3], [4, 5, 6]], [2, 3], 'int32');
    const integerSum = tf.sum(integers, 1);
    assert.equal(integerSum.dtype, 'int32');
    assert.deepEqual(Array.from(integerSum.dataSync()), [6, 15]);
    tf.dispose([x, columnSums, integers, integerSum]);
  });

  it('keeps the gradient of a sum', () => {
    const x = tf.tensor(values(10), [2, 5]);
    const gradient = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.sum(input, 1), tf.tensor1d([2, -3]))))(x);
    assert.deepEqual(Array.from(gradient.dataSync()), [2, 2, 2, 2, 2, -3, -3, -3, -3, -3]);
    tf.dispose([x, gradient]);
  });
});
