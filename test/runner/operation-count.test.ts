import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../../src/backend/select.js';
import { countStepOperations, kernelOperations } from '../../src/runner/operation-count.js';
import { logAbsDet, type LinalgOptions } from '../../src/tensor/linalg.js';
import { wasmBlasKernelInstalled } from '../../src/tensor/wasm-blas-kernel.js';

test('operation count of profiled kernels', async () => {
  await selectBackend('wasm');
  const a = tf.ones([3, 40, 50]);
  const b = tf.ones([50, 60]);
  const image = tf.ones([2, 9, 9, 3]);
  const filter = tf.ones([5, 5, 3, 4]);
  const profile = await tf.profile(() => {
    tf.dispose([tf.matMul(a, b), tf.matMul(b, b, true, false), tf.conv2d(image as tf.Tensor4D, filter as tf.Tensor4D, 1, 'valid'), tf.add(a, 1)]);
  });
  tf.dispose([a, b, image, filter]);
  const counts = new Map<string, number[]>();
  for (const kernel of profile.kernels) counts.set(kernel.name, [...(counts.get(kernel.name) ?? []), kernelOperations(kernel)]);

  assert.deepEqual(counts.get('BatchMatMul'), [2 * 3 * 40 * 50 * 60, 2 * 60 * 50 * 60]);
  assert.deepEqual(counts.get('Conv2D'), [2 * (2 * 5 * 5 * 4) * 5 * 5 * 3]);
  assert.deepEqual(counts.get('Add'), [0]);
});

test('step count with LAPACK and JavaScript factorisations', async (t) => {
  await selectBackend('wasm');
  const n = 20;
  const w = tf.tidy(() => tf.add(tf.eye(n), tf.mul(0.01, tf.randomNormal([n, n], 0, 1, 'float32', 3)))) as tf.Tensor2D;
  const a = tf.ones([3, 40, 50]);
  const b = tf.ones([50, 60]);
  const products = 2 * 3 * 40 * 50 * 60;
  const gradientStep = (options?: LinalgOptions) => async (): Promise<void> => {
    tf.dispose([tf.matMul(a, b), tf.grad((matrix: tf.Tensor) => logAbsDet(matrix as tf.Tensor2D, options))(w)]);
  };

  const inJavaScript = await countStepOperations(gradientStep({ products: 'float64' }));
  assert.equal(inJavaScript.partial, true);
  assert.equal(inJavaScript.lapackPerStep, 0);
  assert.equal(inJavaScript.perStep, products, 'the float64 factorisation and inverse run outside the kernels');

  const plain = await countStepOperations(async () => {
    tf.matMul(a, b).dispose();
  });
  assert.deepEqual(plain, { perStep: products, lapackPerStep: 0, partial: false });

  if (!wasmBlasKernelInstalled()) {
    tf.dispose([w, a, b]);
    return t.skip('OpenBLAS not loaded');
  }
  // The LU (2n³/3) and the inverse for the gradient (4n³/3) on LAPACK.
  const onLapack = await countStepOperations(gradientStep());
  tf.dispose([w, a, b]);
  assert.equal(onLapack.partial, false);
  assert.equal(onLapack.lapackPerStep, 2 * n ** 3);
  assert.equal(onLapack.perStep, products + 2 * n ** 3);
});
