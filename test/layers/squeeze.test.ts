import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { SqueezeLayer } from '../../src/layers/squeeze.js';
import { forEachBackend } from '../helpers/backends.js';
import { registerLayerKit } from '../helpers/bijection-kit.js';

/**
 * Squeezes a channel-major NCHW array as EBFlow's reference PyTorch implementation does:
 * out[b, 4c + 2·dh + dw, h, w] = in[b, c, 2h + dh, 2w + dw].
 */
function referenceSqueezeNchw(input: ArrayLike<number>, batch: number, channels: number, height: number, width: number): Float64Array {
  const output = new Float64Array(input.length);
  const outHeight = height / 2;
  const outWidth = width / 2;
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < channels; c++) {
      for (let dh = 0; dh < 2; dh++) {
        for (let dw = 0; dw < 2; dw++) {
          for (let h = 0; h < outHeight; h++) {
            for (let w = 0; w < outWidth; w++) {
              const outChannel = 4 * c + 2 * dh + dw;
              const to = ((b * 4 * channels + outChannel) * outHeight + h) * outWidth + w;
              const from = ((b * channels + c) * height + 2 * h + dh) * width + 2 * w + dw;
              output[to] = input[from];
            }
          }
        }
      }
    }
  }
  return output;
}

forEachBackend((backend) => {
  registerLayerKit({ name: 'SqueezeLayer 4×4×2', sampleShape: [4, 4, 2], create: () => new SqueezeLayer() }, backend);
  registerLayerKit({ name: 'SqueezeLayer 2×6×3', sampleShape: [2, 6, 3], create: () => new SqueezeLayer() }, backend);

  test('squeeze matches the reference NCHW order', () => {
    const [batch, height, width, channels] = [2, 4, 6, 3];
    const nhwc = tf.randomNormal([batch, height, width, channels], 0, 1, 'float32', 8);
    const { y } = new SqueezeLayer().forward(nhwc);
    assert.deepEqual(y.shape, [batch, height / 2, width / 2, 4 * channels]);
    // Read both sides in NCHW, the reference's layout.
    const inputNchw = tf.tidy(() => tf.transpose(nhwc, [0, 3, 1, 2]).dataSync());
    const outputNchw = tf.tidy(() => tf.transpose(y, [0, 3, 1, 2]).dataSync());
    const expected = referenceSqueezeNchw(inputNchw, batch, channels, height, width);
    assert.deepEqual(Array.from(outputNchw), Array.from(expected, Math.fround));
    tf.dispose([nhwc, y]);
  });

  // One channel and three take the kernel's value-by-value path, 4 and 8 its 4×4 transposes.
  for (const channels of [1, 3, 4, 8]) {
    test(`squeeze, inverse and gradient with ${channels} channels`, () => {
      const [batch, height, width] = [2, 4, 6];
      const nhwc = tf.randomNormal([batch, height, width, channels], 0, 1, 'float32', 10 + channels);
      const layer = new SqueezeLayer();
      const { y } = layer.forward(nhwc);
      const outputNchw = tf.tidy(() => tf.transpose(y, [0, 3, 1, 2]).dataSync());
      const inputNchw = tf.tidy(() => tf.transpose(nhwc, [0, 3, 1, 2]).dataSync());
      const expected = referenceSqueezeNchw(inputNchw, batch, channels, height, width);
      assert.deepEqual(Array.from(outputNchw), Array.from(expected, Math.fround));

      const restored = layer.inverse(y);
      assert.deepEqual(Array.from(restored.dataSync()), Array.from(nhwc.dataSync()));

      // The gradient of Σ w⊙squeeze(x) is the inverse permutation of w, and the other way round.
      const weights = tf.randomNormal(y.shape, 0, 1, 'float32', 20 + channels);
      const forwardGradient = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(layer.forward(x).y, weights)))(nhwc);
      const inverseGradient = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(layer.inverse(v), nhwc)))(y);
      const unsqueezedWeights = layer.inverse(weights);
      assert.deepEqual(Array.from(forwardGradient.dataSync()), Array.from(unsqueezedWeights.dataSync()));
      assert.deepEqual(Array.from(inverseGradient.dataSync()), Array.from(y.dataSync()));
      tf.dispose([nhwc, y, restored, weights, forwardGradient, inverseGradient, unsqueezedWeights]);
    });
  }

  test('squeeze differs from TensorFlow order by a channel permutation', () => {
    const channels = 2;
    const x = tf.randomNormal([1, 4, 2, channels], 0, 1, 'float32', 9);
    const { y } = new SqueezeLayer().forward(x);
    // tf.depthToSpace inverts TensorFlow's space-to-depth, which puts (dh, dw, c) at channel
    // (2·dh + dw)·C + c; ours puts it at 4c + 2·dh + dw.
    const reordered = tf.tidy(() => {
      const split = tf.reshape(y, [1, 2, 1, channels, 4]);
      return tf.reshape(tf.transpose(split, [0, 1, 2, 4, 3]), [1, 2, 1, 4 * channels]);
    });
    const restoredFromReordered = tf.tidy(() => tf.depthToSpace(reordered as tf.Tensor4D, 2).dataSync());
    const restoredFromOurs = tf.tidy(() => tf.depthToSpace(y as tf.Tensor4D, 2).dataSync());
    assert.deepEqual(Array.from(restoredFromReordered), Array.from(x.dataSync()));
    assert.notDeepEqual(Array.from(restoredFromOurs), Array.from(x.dataSync()));
    tf.dispose([x, y, reordered]);
  });

  test('squeeze log-det is zero', () => {
    const logDet = new SqueezeLayer().constantLogDet();
    assert.equal(logDet.dataSync()[0], 0);
    logDet.dispose();
  });

  test('squeeze rejects odd sides and bad ranks', () => {
    const layer = new SqueezeLayer('squeeze[0]');
    const odd = tf.zeros([1, 3, 4, 1]);
    const flat = tf.zeros([1, 16]);
    const badChannels = tf.zeros([1, 2, 2, 3]);
    assert.throws(() => layer.forward(odd), /squeeze\[0\]: height and width must be even to squeeze, received 3×4/);
    assert.throws(() => layer.forward(flat), /expects NHWC \[B, H, W, C\], received shape \[1,16\]/);
    assert.throws(() => layer.inverse(badChannels), /channels divisible by 4/);
    tf.dispose([odd, flat, badChannels]);
  });
});
