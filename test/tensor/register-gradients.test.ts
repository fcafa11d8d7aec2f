import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

import '../../src/tensor/register-gradients.js';

test('core gradients are registered', async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
  const x = tf.tensor1d([1, -2, 3]);
  const gradient = tf.tidy(() => Array.from(tf.grad((v: tf.Tensor) => tf.sum(tf.mul(v, v)))(x).dataSync()));
  assert.deepEqual(gradient, [2, -4, 6]);
  const softplusGradient = tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(tf.softplus(v)))(x).dataSync()[0]);
  assert.ok(Math.abs(softplusGradient - 1 / (1 + Math.exp(-1))) < 1e-6, `softplus′(1) = ${softplusGradient}`);
  x.dispose();
});

test('gradient registry covers the common kernels', () => {
  const kernels = [tf.Add, tf.Sub, tf.Multiply, tf.RealDiv, tf.Sum, tf.BatchMatMul, tf.Transpose, tf.Reshape, tf.Exp, tf.Log, tf.Conv2D, tf.Concat, tf.Slice];
  for (const kernel of kernels) {
    assert.notEqual(tf.getGradient(kernel), undefined, `no gradient registered for ${kernel}`);
  }
});
