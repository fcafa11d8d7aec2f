import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { useBackend } from '../../src/backend/select.js';
import { preprocess } from '../../src/data/preprocess.js';
import { smoothLeakyReluStage } from '../../src/layers/smooth-leaky-relu.js';
import { RandomStream } from '../../src/random/stream.js';
import { emaUpdate, emaUpdates, rmsPropUpdate, rmsPropUpdates, sumOfSquares } from '../../src/tensor/fused-update.js';
import {
  kernelThreadStatus,
  MAX_KERNEL_THREADS,
  pauseKernelThreads,
  requestedKernelThreads,
  runInParallel,
  splitRange,
  startKernelThreads,
  stopKernelThreads,
  workerJobCount,
} from '../../src/tensor/threads/pool.js';
import { MAX_CALLS } from '../../src/tensor/threads/protocol.js';
import { offsetOf, type WasmBackendInternals } from '../../src/tensor/wasm-memory.js';

describe('requestedKernelThreads', () => {
  it('reads EBFLOW_WASM_THREADS or defaults', () => {
    const byDefault = requestedKernelThreads({});
    assert.equal(typeof byDefault, 'number');
    assert.ok((byDefault as number) >= 1);
    assert.ok((byDefault as number) <= MAX_KERNEL_THREADS);
    assert.equal(requestedKernelThreads({ EBFLOW_WASM_THREADS: ' 3 ' }), 3);
    assert.equal(requestedKernelThreads({ EBFLOW_WASM_THREADS: '' }), byDefault);
  });

  for (const value of ['0', '-2', '1.5', 'two', '0x2', '1e1', String(MAX_KERNEL_THREADS + 1)]) {
    it(`rejects EBFLOW_WASM_THREADS=${value}, naming the value and the fix`, () => {
      const message = requestedKernelThreads({ EBFLOW_WASM_THREADS: value });
      assert.equal(typeof message, 'string');
      assert.match(message as string, new RegExp(`"${value.replace('.', '\\.')}"`));
      assert.match(message as string, /set 1/);
    });
  }
});

describe('splitRange', () => {
  for (const [count, parts, multiple] of [
    [10, 2, 1],
    [10, 3, 4],
    [3, 4, 1],
    [0, 2, 1],
    [1003, 2, 4],
  ]) {
    it(`covers [0, ${count}) with ${parts} consecutive ranges on multiples of ${multiple}`, () => {
      const ranges = splitRange(count, parts, multiple);
      let next = 0;
      for (const [start, end] of ranges) {
        assert.equal(start, next);
        assert.ok(end > start);
        if (end !== count) assert.equal(end % multiple, 0);
        next = end;
      }
      assert.equal(next, count);
      assert.ok(ranges.length <= parts);
    });
  }
});

/** Waits until a job posted to the workers runs there (they start in tens of milliseconds). */
async function waitForWorkers(): Promise<void> {
  const deadline = performance.now() + 10_000;
  const before = workerJobCount();
  while (performance.now() < deadline) {
    runInParallel([[], [{ file: 'fused-update', name: 'ema', args: [0, 0, 0, 0, 0] }]]);
    if (workerJobCount() > before) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.fail('no kernel worker thread became ready within 10 s');
}

/**
 * Runs `compute` with the kernel threads running, then paused, and returns both results. The
 * threaded run goes first: its outputs could otherwise reuse the freed memory of the run on
 * one thread and find the expected values there, even in rows that no thread wrote. For the
 * same reason, each test computes values that no earlier test computed.
 */
function bothWays<T>(compute: () => T): { alone: T; shared: T; jobs: number } {
  const before = workerJobCount();
  const shared = compute();
  const jobs = workerJobCount() - before;
  pauseKernelThreads(true);
  try {
    return { alone: compute(), shared, jobs };
  } finally {
    pauseKernelThreads(false);
  }
}

function assertSameBits(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`${label}[${i}]: ${actual[i]} on several threads, ${expected[i]} on one`);
  }
}

const threadsRequested = requestedKernelThreads();

describe('kernel threads on the wasm backend', { skip: threadsRequested === 1 || typeof threadsRequested === 'string' ? 'EBFLOW_WASM_THREADS keeps one thread' : false }, () => {
  before(async () => {
    await useBackend('wasm');
    startKernelThreads();
    await waitForWorkers();
  });

  after(() => {
    pauseKernelThreads(false);
  });

  it('share the backend memory', () => {
    const status = kernelThreadStatus();
    assert.equal(status.sharedMemory, true, status.reason);
    assert.ok(status.threads >= 2);
    const memory = (tf.backend() as unknown as WasmBackendInternals).wasm.HEAPU8.buffer;
    assert.ok(memory instanceof SharedArrayBuffer);
  });

  for (const [variant, terms] of [
    { derivatives: false, curvature: false },
    { derivatives: true, curvature: true },
  ].entries()) {
    it(`split SLR stage rows bit-exactly (${terms.curvature ? 'all terms' : 'y, Σ ln f′'})`, () => {
      // Inputs differ between the variants, so that no variant finds the other's results in memory.
      // 700 rows, so that the backward kernel splits too.
      const rows = 700;
      const h = tf.tensor2d(Float32Array.from({ length: rows * 784 }, (_, i) => (12 + variant) * Math.sin(i * 0.37)), [rows, 784]);
      // Upstream gradients that differ by element and by row, so that a part that reads another
      // part's rows of them computes other values.
      const weights = Array.from({ length: 4 }, (_, k) => tf.tensor2d(Float32Array.from({ length: rows * 784 }, (_, i) => Math.cos(i * (0.11 + 0.07 * k))), [rows, 784]));
      const rowWeights = tf.tensor1d(Float32Array.from({ length: rows }, (_, row) => 1 + Math.sin(row)));
      const compute = (): Float32Array[] =>
        tf.tidy(() => {
          const stage = smoothLeakyReluStage(h, 0.3, true, terms, 'fused');
          const loss = (x: tf.Tensor): tf.Scalar => {
            const s = smoothLeakyReluStage(x, 0.3, true, terms, 'fused');
            const parts = [tf.sum(tf.mul(s.y, weights[0])), tf.sum(tf.mul(s.rowLogSlope, rowWeights))];
            if (s.slope !== undefined) {
              parts.push(tf.sum(tf.mul(s.slope, weights[1])), tf.sum(tf.mul(s.curvatureRatio!, weights[2])), tf.sum(tf.mul(s.logSlopeCurvature!, weights[3])));
            }
            return tf.addN(parts) as tf.Scalar;
          };
          const outputs = [stage.y, stage.rowLogSlope, stage.slope, stage.curvatureRatio, stage.logSlopeCurvature, tf.grad(loss)(h)];
          return outputs.filter((t): t is tf.Tensor => t !== undefined).map((t) => t.dataSync() as Float32Array);
        });
      const { alone, shared, jobs } = bothWays(compute);
      tf.dispose([h, ...weights, rowWeights]);
      assert.ok(jobs >= 3, `the forward and backward kernels ran ${jobs} jobs on workers`);
      alone.forEach((values, i) => assertSameBits(shared[i], values, `output ${i}`));
    });
  }

  it('split logit rows bit-exactly', () => {
    const pixels = tf.tensor2d(Float32Array.from({ length: 100 * 784 }, (_, i) => (i * 37) % 256), [100, 784]);
    const compute = (): Float32Array[] =>
      tf.tidy(() => {
        const { x, logDet } = preprocess(pixels, new RandomStream(5), 1);
        return [x.dataSync() as Float32Array, logDet.dataSync() as Float32Array];
      });
    const { alone, shared, jobs } = bothWays(compute);
    pixels.dispose();
    assert.ok(jobs >= 1, `the logit kernel ran ${jobs} jobs on workers`);
    assertSameBits(shared[0], alone[0], 'x');
    assertSameBits(shared[1], alone[1], 'logDet');
  });

  it('split updates by whole tensors', () => {
    const random = new RandomStream(11);
    const shapes = [[600, 600], [7], [500, 500], [3, 5]];
    const make = (scale: number, positive = false): tf.Tensor[] =>
      shapes.map((shape) => tf.tensor(Float32Array.from({ length: shape[0] * (shape[1] ?? 1) }, () => (positive ? Math.abs : (v: number) => v)(scale * random.normal())), shape));
    const [parameters, gradients, averages] = [make(1), make(0.3), make(0.01, true)];
    const step = { gradientScale: 0.9, weightDecay: 0.001, rho: 0.99, learningRate: 1e-3, epsilon: 1e-8 };
    const before = workerJobCount();
    const together = tf.tidy(() =>
      rmsPropUpdates(parameters, gradients, averages, step).map((u) => [u.parameter.dataSync(), u.average.dataSync(), u.sumOfSquares] as const),
    );
    const shadows = tf.tidy(() => emaUpdates(averages, parameters, 0.01).map((t) => t.dataSync()));
    const norm = sumOfSquares(gradients);
    assert.ok(workerJobCount() - before >= 3, 'the updates and the norm ran on a worker');
    assert.equal(norm, together.reduce((total, update) => total + update[2], 0), 'Σ∇² of all tensors');
    parameters.forEach((parameter, i) => {
      tf.tidy(() => {
        const one = rmsPropUpdate(parameter, gradients[i], averages[i], step);
        assertSameBits(together[i][0], one.parameter.dataSync(), `θ'${i}`);
        assertSameBits(together[i][1], one.average.dataSync(), `v'${i}`);
        assert.equal(together[i][2], one.sumOfSquares, `Σ∇² of tensor ${i}`);
        assertSameBits(shadows[i], emaUpdate(averages[i], parameter, 0.01).dataSync(), `shadow ${i}`);
      });
    });
    tf.dispose([...parameters, ...gradients, ...averages]);
  });

  it('update models of many tensors', () => {
    // More tensors than a job carries: 1,200 of 300 values, split into two parts of 600 calls.
    const count = MAX_CALLS + 176;
    const shadows = Array.from({ length: count }, (_, i) => tf.fill([300], i));
    const parameters = Array.from({ length: count }, () => tf.ones([300]));
    const before = workerJobCount();
    const moved = emaUpdates(shadows, parameters, 0.5);
    const norm = sumOfSquares(parameters);
    assert.equal(workerJobCount() - before, 2, 'one job each for the EMA and the norm');
    moved.forEach((tensor, i) => assert.equal(tensor.dataSync()[299], (i + 1) / 2, `shadow ${i}`));
    assert.equal(norm, count * 300);
    const tooMany = Array.from({ length: MAX_CALLS + 1 }, () => ({ file: 'fused-update' as const, name: 'sum_squares' as const, args: [0, 0] }));
    assert.deepEqual(runInParallel([[], tooMany])[1], Array(MAX_CALLS + 1).fill(0), 'a part too large for a job runs here');
    tf.dispose([...shadows, ...parameters, ...moved]);
  });

  it('collect workers after a failure here', () => {
    const backend = tf.backend() as unknown as WasmBackendInternals;
    const values = tf.ones([8]);
    const [first, second] = [tf.zeros([8]), tf.zeros([8])];
    const ema = (out: tf.Tensor, shadow = values): { file: 'fused-update'; name: 'ema'; args: number[] } => ({
      file: 'fused-update',
      name: 'ema',
      args: [offsetOf(backend, shadow, 't'), offsetOf(backend, values, 't'), offsetOf(backend, out, 't'), 8, 0.5],
    });
    const beyond = backend.wasm.HEAPU8.length + 4096;
    const bad = { file: 'fused-update' as const, name: 'ema' as const, args: [beyond, beyond, beyond, 8, 0.5] };
    const jobs = workerJobCount();
    assert.throws(() => runInParallel([[bad], [ema(first)]]), /out of bounds/);
    assert.equal(workerJobCount(), jobs + 1, 'the worker job was collected');
    assert.deepEqual(Array.from(first.dataSync()), Array(8).fill(1));
    runInParallel([[], [ema(second)]]);
    assert.deepEqual(Array.from(second.dataSync()), Array(8).fill(1));
    assert.throws(() => runInParallel([[], [{ ...bad, args: Array(15).fill(0) }]]), /15 arguments, more than 14/);
    tf.dispose([values, first, second]);
  });

  it('report a failed worker kernel', async () => {
    const backend = tf.backend() as unknown as WasmBackendInternals;
    const values = tf.ones([8]);
    const out = tf.zeros([8]);
    // A pointer past the end of memory traps in the worker.
    const beyond = backend.wasm.HEAPU8.length + 4096;
    const bad = { file: 'fused-update' as const, name: 'ema' as const, args: [beyond, beyond, beyond, 8, 0.5] };
    const threads = kernelThreadStatus().threads;
    assert.throws(() => runInParallel([[], [bad]]), /kernel worker thread failed: .*out of bounds.*EBFLOW_WASM_THREADS=1/);
    assert.equal(kernelThreadStatus().threads, threads - 1, 'the failed worker is no longer counted');
    assert.match(kernelThreadStatus().reason, /out of bounds/);
    const good = { file: 'fused-update' as const, name: 'ema' as const, args: [offsetOf(backend, values, 't'), offsetOf(backend, values, 't'), offsetOf(backend, out, 't'), 8, 0.5] };
    runInParallel([[], [good]]);
    assert.deepEqual(Array.from(out.dataSync()), Array(8).fill(1));
    tf.dispose([values, out]);
    // Fresh workers for the tests that follow.
    stopKernelThreads();
    startKernelThreads();
    await waitForWorkers();
    assert.equal(kernelThreadStatus().threads, threads);
  });
});
