import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { after, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { BACKEND_REQUESTS, backendRequestFromEnv, selectBackend, useBackend } from '../../src/backend/select.js';

/** Returns whether a package can be resolved from this test file, without loading it. */
function isResolvable(specifier: string): boolean {
  try {
    import.meta.resolve(specifier);
    return true;
  } catch {
    return false;
  }
}

const hasNodeGpu = isResolvable('@tensorflow/tfjs-node-gpu');
const hasNode = isResolvable('@tensorflow/tfjs-node');

after(async () => {
  await useBackend('wasm');
});

test('unknown request names the value and the allowed values', async () => {
  await assert.rejects(selectBackend('webgpu'), (error: Error) => {
    assert.match(error.message, /unknown backend request 'webgpu'/);
    for (const request of BACKEND_REQUESTS) assert.match(error.message, new RegExp(`'${request}'`));
    assert.match(error.message, /EBFLOW_BACKEND/);
    return true;
  });
});

test('auto selection records why native backends failed', { skip: hasNodeGpu || hasNode ? 'a tfjs-node package is installed' : false }, async () => {
  const selection = await selectBackend('auto');
  assert.equal(selection.name, 'wasm');
  assert.equal(selection.packageName, '@tensorflow/tfjs-backend-wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.deepEqual(
    selection.attempts.map((attempt) => attempt.name),
    ['tensorflow-gpu', 'tensorflow', 'wasm'],
  );
  assert.match(selection.attempts[0].error ?? '', /ERR_MODULE_NOT_FOUND.*@tensorflow\/tfjs-node-gpu/);
  assert.match(selection.attempts[1].error ?? '', /ERR_MODULE_NOT_FOUND.*@tensorflow\/tfjs-node/);
  assert.equal(selection.attempts[2].error, undefined);
});

test('undefined and empty requests mean auto', async () => {
  assert.equal((await selectBackend()).name, (await selectBackend('auto')).name);
  assert.equal((await selectBackend('  ')).name, (await selectBackend('auto')).name);
});

test('requested missing backend gives reason and fix', { skip: hasNodeGpu ? '@tensorflow/tfjs-node-gpu is installed' : false }, async () => {
  await assert.rejects(selectBackend('gpu'), (error: Error) => {
    assert.match(error.message, /requested backend 'gpu' \(@tensorflow\/tfjs-node-gpu\) is not available/);
    assert.match(error.message, /ERR_MODULE_NOT_FOUND/);
    assert.match(error.message, /npm install @tensorflow\/tfjs-node-gpu@4\.22\.0/);
    return true;
  });
});

test('named requests select that backend', async () => {
  for (const [request, name] of [
    ['cpu', 'cpu'],
    ['WASM', 'wasm'],
  ] as const) {
    const selection = await selectBackend(request);
    assert.equal(selection.name, name);
    assert.equal(tf.getBackend(), name);
    assert.deepEqual(selection.attempts, [{ name }]);
  }
});

test('selection records the kernel threads', async () => {
  const wasm = await selectBackend('wasm');
  const requested = process.env.EBFLOW_WASM_THREADS?.trim();
  if (availableParallelism() > 1 && (requested === undefined || requested === '' || Number(requested) > 1)) {
    assert.equal(wasm.kernelThreads.sharedMemory, true, wasm.kernelThreads.reason);
    assert.ok(wasm.kernelThreads.threads >= 2);
  } else {
    assert.equal(wasm.kernelThreads.threads, 1);
  }
  const cpu = await selectBackend('cpu');
  assert.deepEqual(cpu.kernelThreads, { threads: 1, sharedMemory: false, reason: 'the cpu backend runs its own kernels' });
});

test('an invalid EBFLOW_WASM_THREADS is rejected before any backend initialises, naming the value', async () => {
  const saved = process.env.EBFLOW_WASM_THREADS;
  try {
    process.env.EBFLOW_WASM_THREADS = 'many';
    await assert.rejects(selectBackend('wasm'), (error: Error) => {
      assert.equal(error.name, 'BackendRequestError');
      assert.match(error.message, /EBFLOW_WASM_THREADS is "many", not an integer from 1 to 16/);
      return true;
    });
  } finally {
    if (saved === undefined) delete process.env.EBFLOW_WASM_THREADS;
    else process.env.EBFLOW_WASM_THREADS = saved;
  }
});

test('wasm backend computes after selection', async () => {
  await selectBackend('wasm');
  const before = tf.memory().numTensors;
  const value = tf.tidy(() => tf.sum(tf.matMul(tf.ones([3, 4]), tf.ones([4, 2]))).dataSync()[0]);
  assert.equal(value, 24);
  assert.equal(tf.memory().numTensors, before);
});

test('backendRequestFromEnv reads EBFLOW_BACKEND', () => {
  const saved = process.env.EBFLOW_BACKEND;
  try {
    process.env.EBFLOW_BACKEND = ' cpu ';
    assert.equal(backendRequestFromEnv(), 'cpu');
    process.env.EBFLOW_BACKEND = '';
    assert.equal(backendRequestFromEnv(), undefined);
    delete process.env.EBFLOW_BACKEND;
    assert.equal(backendRequestFromEnv(), undefined);
  } finally {
    if (saved === undefined) delete process.env.EBFLOW_BACKEND;
    else process.env.EBFLOW_BACKEND = saved;
  }
});

test('useBackend rejects unknown names', async () => {
  await assert.rejects(useBackend('gpu'), /useBackend: unknown backend 'gpu'; expected one of 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'/);
});
