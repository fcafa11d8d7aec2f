import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { ActNormLayer } from '../../src/layers/actnorm.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';
import { registerLayerKit } from '../helpers/bijection-kit.js';

/**
 * A batch [B = 2, H = 1, W = 2, C = 2] whose statistics are easy by hand.
 * Channel 0 contains 1, 3, 5, 11: mean 5, squared deviations 16 + 4 + 0 + 36 = 56, unbiased variance 56/3.
 * Channel 1 contains 2, 2, 2, 4: mean 2.5, squared deviations 3·0.25 + 2.25 = 3, unbiased variance 1.
 */
const HAND_BATCH = [1, 2, 3, 2, 5, 2, 11, 4];
const HAND_MEANS = [5, 2.5];
const HAND_STDS = [Math.sqrt(56 / 3), 1];

function handLayer(): ActNormLayer {
  return new ActNormLayer({ inputShape: [1, 2, 2], name: 'actnorm-under-test' });
}

forEachBackend((backend) => {
  registerLayerKit(
    { name: 'ActNormLayer 3×2×3', sampleShape: [3, 2, 3], create: () => new ActNormLayer({ inputShape: [3, 2, 3] }) },
    backend,
  );
  registerLayerKit(
    {
      name: 'ActNormLayer 2×2×2 on shifted, scaled inputs',
      sampleShape: [2, 2, 2],
      inputScale: 4,
      batch: 3,
      create: () => new ActNormLayer({ inputShape: [2, 2, 2] }),
    },
    backend,
  );

  test('actnorm initialises to hand-computed mean and std', () => {
    const layer = handLayer();
    assert.equal(layer.initialized, false);
    const x = tf.tensor4d(HAND_BATCH, [2, 1, 2, 2]);
    const { y } = layer.forward(x);
    assert.equal(layer.initialized, true);
    const expectedLogScale = HAND_STDS.map((std) => Math.log(std + 1e-8));
    assert.equal(firstMismatch(layer.location.dataSync(), HAND_MEANS, backend.elementwise, 't'), null);
    assert.equal(firstMismatch(layer.logScale.dataSync(), expectedLogScale, backend.elementwise, 's'), null);

    // y = (x − t)·e^{−s} by hand.
    const expectedY = HAND_BATCH.map((value, i) => (value - HAND_MEANS[i % 2]) / (HAND_STDS[i % 2] + 1e-8));
    assert.equal(firstMismatch(y.dataSync(), expectedY, backend.elementwise, 'y'), null);
    tf.dispose([x, y]);
    layer.dispose();
  });

  test('actnorm log-det is −H·W·Σ s', () => {
    const layer = handLayer();
    const x = tf.tensor4d(HAND_BATCH, [2, 1, 2, 2]);
    layer.forward(x).y.dispose();
    const logDet = layer.constantLogDet();
    const expected = -1 * 2 * (Math.log(HAND_STDS[0] + 1e-8) + Math.log(HAND_STDS[1] + 1e-8));
    assert.equal(firstMismatch(logDet.dataSync(), [expected], backend.elementwise, 'log-det'), null);
    tf.dispose([x, logDet]);
    layer.dispose();
  });

  test('actnorm initialises only on the first forward', () => {
    const layer = handLayer();
    const first = tf.tensor4d(HAND_BATCH, [2, 1, 2, 2]);
    const second = tf.tensor4d(HAND_BATCH.map((value) => 10 * value - 3), [2, 1, 2, 2]);
    layer.forward(first).y.dispose();
    const location = Array.from(layer.location.dataSync());
    const logScale = Array.from(layer.logScale.dataSync());
    layer.forward(second).y.dispose();
    assert.deepEqual(Array.from(layer.location.dataSync()), location);
    assert.deepEqual(Array.from(layer.logScale.dataSync()), logScale);

    // After a reset the next forward initialises again, from the second batch.
    layer.resetInitialization();
    assert.equal(layer.initialized, false);
    layer.forward(second).y.dispose();
    const expectedMeans = HAND_MEANS.map((mean) => 10 * mean - 3);
    assert.equal(firstMismatch(layer.location.dataSync(), expectedMeans, backend.elementwise, 't after reset'), null);
    tf.dispose([first, second]);
    layer.dispose();
  });

  test('actnorm explicit initialize matches the first forward', () => {
    const lazy = handLayer();
    const explicit = handLayer();
    const x = tf.tensor4d(HAND_BATCH, [2, 1, 2, 2]);
    lazy.forward(x).y.dispose();
    explicit.initialize(x);
    assert.equal(explicit.initialized, true);
    assert.deepEqual(Array.from(explicit.location.dataSync()), Array.from(lazy.location.dataSync()));
    assert.deepEqual(Array.from(explicit.logScale.dataSync()), Array.from(lazy.logScale.dataSync()));
    x.dispose();
    lazy.dispose();
    explicit.dispose();
  });

  test('actnorm state survives getState and setState', () => {
    const original = handLayer();
    const x = tf.tensor4d(HAND_BATCH, [2, 1, 2, 2]);
    original.forward(x).y.dispose();
    const saved = JSON.parse(JSON.stringify(original.getState()));
    assert.equal(saved.initialized, true);

    const restored = handLayer();
    restored.setState(saved);
    assert.equal(restored.initialized, true);
    // The restored layer must not initialise again from a different first batch.
    const other = tf.tensor4d([0, 1, -2, 7, 3, 3, 9, -1], [2, 1, 2, 2]);
    const fromOriginal = original.forward(other).y;
    const fromRestored = restored.forward(other).y;
    assert.deepEqual(Array.from(fromRestored.dataSync()), Array.from(fromOriginal.dataSync()));
    assert.deepEqual(restored.getState(), original.getState());
    tf.dispose([x, other, fromOriginal, fromRestored]);
    original.dispose();
    restored.dispose();
  });

  test('actnorm state survives a copy of its buffers', () => {
    const original = handLayer();
    const x = tf.tensor4d(HAND_BATCH, [2, 1, 2, 2]);
    original.forward(x).y.dispose();

    // A checkpoint that saves and restores the buffer variables alone.
    const restored = handLayer();
    restored.buffers.forEach((buffer, index) => buffer.assign(original.buffers[index]));
    assert.equal(restored.initialized, true);
    const other = tf.tensor4d([0, 1, -2, 7, 3, 3, 9, -1], [2, 1, 2, 2]);
    const fromOriginal = original.forward(other).y;
    const fromRestored = restored.forward(other).y;
    assert.deepEqual(Array.from(fromRestored.dataSync()), Array.from(fromOriginal.dataSync()));
    tf.dispose([x, other, fromOriginal, fromRestored]);
    original.dispose();
    restored.dispose();
  });

  test('actnorm buffers are not trainable', () => {
    const layer = handLayer();
    assert.deepEqual(layer.variables, []);
    assert.equal(layer.buffers.length, 3);
    for (const buffer of layer.buffers) assert.equal(buffer.trainable, false, `${buffer.name} must be frozen`);
    layer.dispose();
  });

  test('actnorm rejects bad shapes and states', () => {
    const layer = handLayer();
    const wrongChannels = tf.zeros([2, 1, 2, 3]);
    const single = tf.tensor4d([1, 2], [1, 1, 1, 2]);
    assert.throws(() => layer.forward(wrongChannels), /expects NHWC \[B, 1, 2, 2\], received shape \[2, 1, 2, 3\]/);
    const onePixel = new ActNormLayer({ inputShape: [1, 1, 2] });
    assert.throws(() => onePixel.initialize(single), /at least 2 values per channel/);
    onePixel.dispose();
    assert.throws(() => layer.setState({ initialized: true, location: [1], logScale: [0, 0] }), /setState expects/);
    assert.throws(() => layer.setState({ initialized: true, location: [1, Number.NaN], logScale: [0, 0] }), /finite numbers/);
    assert.throws(() => new ActNormLayer({ inputShape: [0, 2, 2] }), /positive integers/);
    tf.dispose([wrongChannels, single]);
    layer.dispose();
  });
});
