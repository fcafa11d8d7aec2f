import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../../src/backend/select.js';
import { countStepOperations, kernelOperations } from '../../src/runner/operation-count.js';
import { logAbsDet, type LinalgOptions } from '../../src/tensor/linalg.js';
import { wasmBlasKernelInstalled } from '../../src/tensor/wasm-blas-kernel.js';
import { resolveTrainingConfig } from '../../src/train/config.js';
import { createTrainingSession } from '../../src/train/session-impl.js';

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

test('empty product counts zero', async () => {
  assert.equal(kernelOperations({ name: 'BatchMatMul', inputShapes: [[0, 5], [5, 6]], outputShapes: [[0, 6]] }), 0);
  assert.equal(kernelOperations({ name: '_FusedMatMul', inputShapes: [[2, 4, 0], [2, 0, 3]], outputShapes: [[2, 4, 3]] }), 0);

  await selectBackend('wasm');
  const empty = tf.zeros([0, 5]);
  const b = tf.ones([5, 6]);
  const counted = await countStepOperations(async () => {
    tf.matMul(empty, b).dispose();
  });
  tf.dispose([empty, b]);
  assert.deepEqual(counted, { perStep: 0, lapackPerStep: 0, partial: false });
});

test('step count over 200,000 kernels', async () => {
  // A Glow SSM step at 4×4 launched 1.4 million kernels. tf.profile fails on a list that long,
  // because it takes Math.max over every kernel's bytes as function arguments.
  await selectBackend('wasm');
  const x = tf.scalar(1);
  const a = tf.ones([40, 50]);
  const b = tf.ones([50, 60]);
  const counted = await countStepOperations(async () => {
    for (let i = 0; i < 200_000; i++) tf.neg(x).dispose();
    tf.matMul(a, b).dispose();
  });
  tf.dispose([x, a, b]);
  assert.deepEqual(counted, { perStep: 2 * 40 * 50 * 60, lapackPerStep: 0, partial: false });
});

test('failed step leaves the engine as before', async () => {
  await selectBackend('wasm');
  const kernelBefore = tf.getKernel('BatchMatMul', 'wasm');
  const a = tf.ones([40, 50]);
  const b = tf.ones([50, 60]);
  await assert.rejects(
    countStepOperations(async () => {
      tf.matMul(a, b).dispose();
      throw new Error('injected step failure');
    }),
    /injected step failure/,
  );
  assert.equal(tf.engine().state.profiling, false, 'kernels would be profiled from now on');
  assert.equal(tf.getKernel('BatchMatMul', 'wasm'), kernelBefore, 'the BatchMatMul kernel was not restored');

  // The next count starts from zero and counts only its own step.
  const next = await countStepOperations(async () => {
    tf.matMul(a, b).dispose();
  });
  tf.dispose([a, b]);
  assert.equal(next.perStep, 2 * 40 * 50 * 60);
});

test('FC ML step count matches its formula', async (t) => {
  await selectBackend('wasm');
  if (!wasmBlasKernelInstalled()) {
    if (process.env.EBFLOW_REQUIRE_BLAS === '1') assert.fail('EBFLOW_REQUIRE_BLAS=1 but OpenBLAS did not load');
    return t.skip('OpenBLAS not loaded: the factorisations run in JavaScript, which the count sees only in part');
  }
  const [batch, dimension, layers] = [100, 64, 2];
  const config = resolveTrainingConfig({ dataset: 'synthetic', architecture: 'fc', objective: 'ml', imageShape: [8, 8, 1], depth: layers, batchSize: batch, seed: 0 });
  const session = await createTrainingSession(config);
  try {
    await session.step();
    const counted = await countStepOperations(() => session.step());
    // Forward products, weight gradients and input gradients of every layer but the first, and
    // per layer an LU (2D³/3) and the inverse W⁻ᵀ of the gradient (4D³/3).
    const products = 2 * batch * dimension ** 2 * (3 * layers - 1);
    assert.equal(counted.partial, false);
    assert.equal(counted.lapackPerStep, 2 * dimension ** 3 * layers);
    const productsCounted = counted.perStep - counted.lapackPerStep;
    // The bias gradients may run as products with a row of ones, 2·B·D each.
    assert.ok(productsCounted >= products, `products ${productsCounted}, expected at least ${products}`);
    assert.ok(productsCounted <= products + 2 * batch * dimension * layers, `products ${productsCounted}, expected at most ${products} plus the bias gradients`);
  } finally {
    session.dispose();
  }
});
