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

test('sum and mean gradients broadcast over axes', async () => {
  await tf.setBackend('cpu');
  const x = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 3, 2]);
  const weights = tf.tensor2d([1, -2, 3, 0.5], [2, 2]);
  // d/dx Σ_{i,k} w[i,k]·Σ_j x[i,j,k] = w[i,k] for every j.
  const sumGradient = tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.sum(v, 1), weights)))(x).arraySync());
  assert.deepEqual(sumGradient, [
    [[1, -2], [1, -2], [1, -2]],
    [[3, 0.5], [3, 0.5], [3, 0.5]],
  ]);
  // The mean over axes 0 and 2 divides by their 4 elements.
  const meanGradient = tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.mean(v, [0, 2]), tf.tensor1d([4, 8, -4]))))(x).arraySync());
  assert.deepEqual(meanGradient, [
    [[1, 1], [2, 2], [-1, -1]],
    [[1, 1], [2, 2], [-1, -1]],
  ]);
  // Second order: the gradient of Σ (Σ_j x_j)² is 2·Σ x in every entry, and its Hessian-vector
  // product with ones is 2·D in every entry.
  const v = tf.tensor1d([1, 2, 3]);
  const hessianTimesOnes = tf.tidy(() => tf.grad((u: tf.Tensor) => tf.sum(tf.grad((w: tf.Tensor) => tf.square(tf.sum(w)))(u)))(v).arraySync());
  assert.deepEqual(hessianTimesOnes, [6, 6, 6]);
  tf.dispose([x, weights, v]);
});

test('square gradient is 2x to second order', async () => {
  await tf.setBackend('cpu');
  const x = tf.tensor1d([1, -2, 3]);
  const first = tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(tf.square(v)))(x).arraySync());
  assert.deepEqual(first, [2, -4, 6]);
  const second = tf.tidy(() => tf.grad((u: tf.Tensor) => tf.sum(tf.grad((v: tf.Tensor) => tf.sum(tf.square(v)))(u)))(x).arraySync());
  assert.deepEqual(second, [2, 2, 2]);
  x.dispose();
});
