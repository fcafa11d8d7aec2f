import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';

import { ExponentialMovingAverage } from '../../src/train/ema.js';

describe('EMA', () => {
  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  it('follows the warm-up decay (1 + n)/(10 + n)', () => {
    const parameter = tf.variable(tf.tensor1d([1, -4]));
    const ema = new ExponentialMovingAverage([parameter], 0.999);

    // Hand computation of shadow ← shadow − (1 − d)(shadow − θ) with d = min(0.999, (1+n)/(10+n)).
    const expected = [1, -4];
    const targets = [
      [0, 0],
      [2, 2],
      [10, -10],
    ];
    targets.forEach((target, index) => {
      const n = index + 1;
      const d = Math.min(0.999, (1 + n) / (10 + n));
      assert.equal(ema.nextDecay(), d);
      parameter.assign(tf.tensor1d(target));
      ema.update();
      for (let i = 0; i < 2; i++) expected[i] -= (1 - d) * (expected[i] - target[i]);
      const shadow = ema.getState().shadows[0];
      assert.ok(Math.abs(shadow[0] - expected[0]) < 1e-6, `update ${n}: shadow ${shadow[0]}, expected ${expected[0]}`);
      assert.ok(Math.abs(shadow[1] - expected[1]) < 1e-6, `update ${n}: shadow ${shadow[1]}, expected ${expected[1]}`);
    });
    // The first update keeps 2/11 of the initial value.
    assert.equal(ema.updateCount, 3);
    ema.dispose();
    parameter.dispose();
  });

  it('caps the decay', () => {
    const parameter = tf.variable(tf.scalar(0));
    const ema = new ExponentialMovingAverage([parameter], 0.5);
    ema.setState({ updates: 100, shadows: [Float32Array.of(8)] });
    assert.equal(ema.nextDecay(), 0.5);
    ema.update();
    assert.equal(ema.getState().shadows[0][0], 4);
    ema.dispose();
    parameter.dispose();
  });

  it('swaps shadows in and restores the live weights', async () => {
    const parameter = tf.variable(tf.tensor1d([1, 1]));
    const ema = new ExponentialMovingAverage([parameter], 0.999);
    parameter.assign(tf.tensor1d([5, 7]));
    const seen = await ema.withShadowWeights(() => Array.from(parameter.dataSync()));
    assert.deepEqual(seen, [1, 1]);
    assert.deepEqual(Array.from(parameter.dataSync()), [5, 7]);

    await assert.rejects(
      ema.withShadowWeights(() => {
        throw new Error('evaluation failed');
      }),
      /evaluation failed/,
    );
    assert.deepEqual(Array.from(parameter.dataSync()), [5, 7]);
    ema.dispose();
    parameter.dispose();
  });

  it('rejects updates during a swap', async () => {
    const parameter = tf.variable(tf.tensor1d([1]));
    const ema = new ExponentialMovingAverage([parameter], 0.9);
    await assert.rejects(ema.withShadowWeights(() => ema.update()), /inside withShadowWeights/);
    ema.dispose();
    parameter.dispose();
  });

  it('leaks no tensors', async () => {
    const parameter = tf.variable(tf.tensor1d([1, 2, 3]));
    const beforeCreation = tf.memory().numTensors;
    const ema = new ExponentialMovingAverage([parameter], 0.999);
    const beforeUpdates = tf.memory().numTensors;
    ema.update();
    await ema.withShadowWeights(() => undefined);
    ema.update();
    assert.equal(tf.memory().numTensors, beforeUpdates, 'after updates');
    ema.dispose();
    assert.equal(tf.memory().numTensors, beforeCreation, 'after dispose');
    parameter.dispose();
  });

  it('rejects an invalid decay', () => {
    const parameter = tf.variable(tf.scalar(0));
    assert.throws(() => new ExponentialMovingAverage([parameter], 1), /decay must lie in \[0, 1\), received 1/);
    parameter.dispose();
  });
});
