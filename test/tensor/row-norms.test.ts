import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { useBackend } from '../../src/backend/select.js';
import { halfSquaredRowNorms } from '../../src/tensor/row-norms.js';

/** Returns a [rows, columns] tensor of values of several magnitudes. */
function values(rows: number, columns: number): tf.Tensor2D {
  return tf.tensor2d(Array.from({ length: rows * columns }, (_, i) => Math.sin(i * 0.77 + 0.3) * (1 + (i % 6))), [rows, columns]);
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`halfSquaredRowNorms on ${backend}`, () => {
    // Row sizes below, at and around the 4- and 16-value blocks, and the FC model's D = 784.
    for (const [rows, columns] of [[1, 1], [2, 3], [3, 17], [4, 35], [5, 784]] as const) {
      it(`values and gradient for [${rows}, ${columns}]`, async () => {
        await useBackend(backend);
        const h = values(rows, columns);
        const upstream = tf.tensor1d(Array.from({ length: rows }, (_, b) => 0.5 - b));
        const norms = halfSquaredRowNorms(h);
        const gradient = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(halfSquaredRowNorms(x as tf.Tensor2D), upstream)))(h);
        const data = h.dataSync();
        const got = norms.dataSync();
        const gotGradient = gradient.dataSync();
        for (let b = 0; b < rows; b++) {
          let exact = 0;
          for (let j = 0; j < columns; j++) exact += 0.5 * data[b * columns + j]! ** 2;
          assert.ok(Math.abs(got[b]! - exact) <= 1e-6 * exact + 1e-6, `row ${b}: ${got[b]} against ${exact}`);
          for (let j = 0; j < columns; j++) {
            const expected = Math.fround(data[b * columns + j]! * (0.5 - b));
            assert.ok(Math.abs(gotGradient[b * columns + j]! - expected) <= 1e-6 * Math.abs(expected), `gradient [${b}, ${j}]`);
          }
        }
        tf.dispose([h, upstream, norms, gradient]);
      });
    }
  });
}

describe('halfSquaredRowNorms on wasm, second derivative', () => {
  it('raises instead of returning zero', async () => {
    await useBackend('wasm');
    const h = values(2, 8);
    const first = (x: tf.Tensor): tf.Tensor => tf.grad((u: tf.Tensor) => tf.sum(halfSquaredRowNorms(u as tf.Tensor2D)))(x);
    assert.throws(() => tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(first(x)))(h)), /differentiable once/);
    h.dispose();
  });
});
