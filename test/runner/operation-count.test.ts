import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../../src/backend/select.js';
import { kernelOperations } from '../../src/runner/operation-count.js';

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
