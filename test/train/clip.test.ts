import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';

import { clipByGlobalNorm, globalNorm } from '../../src/train/clip.js';

describe('gradient clipping', () => {
  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  it('computes the global L2 norm', () => {
    const gradients = [tf.tensor1d([3, 4]), tf.tensor2d([[12]])];
    const norm = globalNorm(gradients);
    assert.ok(Math.abs(norm.dataSync()[0] - 13) < 1e-5);
    [...gradients, norm].forEach((t) => t.dispose());
  });

  it('scales by maxNorm/(norm + 1e-6) above the threshold', () => {
    const gradients = [tf.tensor1d([3, 4]), tf.tensor2d([[12]])];
    const clipped = clipByGlobalNorm(gradients, 6.5);
    const scale = 6.5 / (13 + 1e-6);
    assert.deepEqual(clipped[0].shape, [2]);
    assert.ok(Math.abs(clipped[0].dataSync()[1] - 4 * scale) < 1e-6);
    assert.ok(Math.abs(clipped[1].dataSync()[0] - 12 * scale) < 1e-6);
    const clippedNorm = globalNorm(clipped);
    assert.ok(Math.abs(clippedNorm.dataSync()[0] - 6.5) < 1e-5);
    [...gradients, ...clipped, clippedNorm].forEach((t) => t.dispose());
  });

  it('keeps gradients below the threshold', () => {
    const gradients = [tf.tensor1d([3, 4])];
    const clipped = clipByGlobalNorm(gradients, 100);
    assert.deepEqual(Array.from(clipped[0].dataSync()), [3, 4]);
    [...gradients, ...clipped].forEach((t) => t.dispose());
  });

  it('passes a non-finite norm through', () => {
    const gradients = [tf.tensor1d([Number.NaN, 1])];
    const norm = globalNorm(gradients);
    assert.ok(Number.isNaN(norm.dataSync()[0]));
    [...gradients, norm].forEach((t) => t.dispose());
  });

  it('rejects a non-positive threshold', () => {
    const gradients = [tf.tensor1d([1])];
    assert.throws(() => clipByGlobalNorm(gradients, 0), /maxNorm must be a finite number > 0, received 0/);
    gradients[0].dispose();
  });
});
