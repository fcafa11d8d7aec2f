import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';

import { selectBackend, useBackend, type BackendSelection } from '../../src/backend/select.js';
import { createCnnFlow } from '../../src/models/cnn-flow.js';
import { getObjective } from '../../src/objectives/index.js';
import type { ObjectiveOptions } from '../../src/objectives/objective.js';
import { RandomStream } from '../../src/random/stream.js';
import { logAbsDet, logAbsDetFloat64, sumLogAbsDet } from '../../src/tensor/linalg.js';
import { lapackOperationCount, nativeBlas, type NativeBlas } from '../../src/tensor/native-blas.js';
import {
  lapackThreadsStatus,
  pauseLapackThreads,
  runLapack,
  splitByCost,
  startLapackThreads,
  stopLapackThreads,
  type LapackItem,
} from '../../src/tensor/threads/lapack-threads.js';
import { CONTROL_WORDS, ERROR_BYTES, FAILED, POSTED, READY, STARTING, STATE, STOP_JOB } from '../../src/tensor/threads/lapack-protocol.js';

// CI sets EBFLOW_REQUIRE_BLAS=1 after installing OpenBLAS; there the worker must run on a machine with two cores.
const REQUIRED = process.env.EBFLOW_REQUIRE_BLAS === '1';
const SELECT_MODULE = fileURLToPath(new URL('../../src/backend/select.js', import.meta.url));
const LINALG_MODULE = fileURLToPath(new URL('../../src/tensor/linalg.js', import.meta.url));
const NATIVE_BLAS_MODULE = fileURLToPath(new URL('../../src/tensor/native-blas.js', import.meta.url));
const LAPACK_THREADS_MODULE = fileURLToPath(new URL('../../src/tensor/threads/lapack-threads.js', import.meta.url));

/** Returns a well-conditioned n×n matrix: Gaussian entries scaled by 1/√n, plus 2·I (row-major). */
function conditionedMatrix(random: RandomStream, n: number): Float32Array {
  const values = new Float32Array(n * n);
  for (let i = 0; i < n * n; i++) values[i] = random.normal() / Math.sqrt(n);
  for (let i = 0; i < n; i++) values[i * n + i] += 2;
  return values;
}

/**
 * Returns `conditionedMatrix` with its second column zeroed. A zero column stays zero through
 * elimination, so the LU meets an exact zero pivot (two equal rows need not in float32).
 */
function zeroColumnMatrix(random: RandomStream, n: number): Float32Array {
  const values = conditionedMatrix(random, n);
  for (let i = 0; i < n; i++) values[i * n + 1] = 0;
  return values;
}

/** Checks that `sumLogAbsDet` of `matrices` is −Infinity and that its gradient names matrix `index` (200×200) as singular. */
function assertSingularIn(matrices: tf.Tensor2D[], index: number): void {
  const value = sumLogAbsDet(matrices);
  assert.equal(value.dataSync()[0], -Infinity);
  value.dispose();
  assert.throws(
    () => tf.tidy(() => tf.grads((...inputs: tf.Tensor[]) => sumLogAbsDet(inputs as tf.Tensor2D[]))(matrices)),
    new RegExp(`matrix ${index}, of size 200×200, is singular`),
  );
}

/** max |W·Gᵀ − I| in float64, which is about 0 when G = W⁻ᵀ. */
function inverseTransposeResidual(w: Float32Array, g: Float32Array, n: number): number {
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let k = 0; k < n; k++) sum += w[i * n + k] * g[j * n + k];
      worst = Math.max(worst, Math.abs(sum - (i === j ? 1 : 0)));
    }
  }
  return worst;
}

/** Returns an item of `runLapack` with a copy of the row-major `values` in shared memory. */
function sharedItem(values: Float32Array, n: number): LapackItem {
  const matrix = new Float32Array(new SharedArrayBuffer(4 * n * n));
  matrix.set(values);
  return { n, matrix, pivots: new Int32Array(new SharedArrayBuffer(4 * n)) };
}

/** Returns the OS threads of this process, from /proc/self/status. */
function processThreadCount(): number {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((entry) => entry.startsWith('Threads:'));
  return Number(line?.split(/\s+/)[1]);
}

/** Runs one product of 2·512³ operations, which `blas` runs on all of its threads. */
function runLargeProduct(blas: NativeBlas): void {
  const n = 512;
  const a = new Float32Array(n * n).fill(1 / n);
  blas.sgemm(false, false, n, n, n, a, n, a, n, new Float32Array(n * n), n);
}

/** Busy-waits for `milliseconds`, so a thread that was already posted a job has time to run it. */
function spin(milliseconds: number): void {
  const until = performance.now() + milliseconds;
  while (performance.now() < until) {
    // Nothing: this thread must stay busy, not yield.
  }
}

describe('splitByCost', () => {
  test('equal matrices split one each', () => {
    assert.deepEqual(splitByCost([784, 784]), { main: [0], worker: [1] });
  });
  test('large matrix balances small ones', () => {
    // 3072³ outweighs 784³ + 784³, so the main thread takes the large one and the worker the rest.
    assert.deepEqual(splitByCost([784, 3072, 784]), { main: [1], worker: [0, 2] });
  });
  test('single matrix stays on main', () => {
    assert.deepEqual(splitByCost([500]), { main: [0], worker: [] });
    assert.deepEqual(splitByCost([]), { main: [], worker: [] });
  });
});

describe('sumLogAbsDet with the LAPACK worker thread', () => {
  let selection: BackendSelection;
  let tensorsBefore = 0;
  let workerExpected = false;

  before(async () => {
    selection = await selectBackend('wasm');
    tensorsBefore = tf.memory().numTensors;
    workerExpected = selection.blas.state === 'loaded' && selection.blas.threads >= 2 && availableParallelism() >= 2 && (process.env.EBFLOW_WASM_THREADS ?? '') !== '1';
  });

  after(() => {
    pauseLapackThreads(false);
    assert.equal(tf.memory().numTensors - tensorsBefore, 0, 'the specs leaked tensors');
  });

  test('selection records LAPACK threads', (t) => {
    if (selection.blas.state !== 'loaded') {
      if (REQUIRED) assert.fail(`EBFLOW_REQUIRE_BLAS=1 but OpenBLAS did not load: ${selection.blas.reason}`);
      assert.equal(selection.lapackThreads.threads, 1);
      assert.match(selection.lapackThreads.reason, /not loaded/);
      return t.skip('OpenBLAS not loaded');
    }
    if (!workerExpected) return t.skip(`one thread here: ${selection.lapackThreads.reason}`);
    assert.equal(selection.lapackThreads.threads, 2, selection.lapackThreads.reason);
  });

  test('matches one-by-one and float64 LU', (t) => {
    if (!workerExpected) return t.skip('no LAPACK worker thread on this machine');
    const random = new RandomStream(71);
    const sizes = [300, 260, 120];
    const values = sizes.map((n) => conditionedMatrix(random, n));
    const matrices = values.map((v, i) => tf.tensor2d(v, [sizes[i], sizes[i]]));
    const reference = values.reduce((sum, v, i) => sum + logAbsDetFloat64(v, sizes[i]), 0);
    const operationsBefore = lapackOperationCount();
    const { value, grads } = tf.valueAndGrads((...inputs: tf.Tensor[]) => sumLogAbsDet(inputs as tf.Tensor2D[]))(matrices);
    const counted = lapackOperationCount() - operationsBefore;
    assert.equal(lapackThreadsStatus().threads, 2, lapackThreadsStatus().reason);
    const total = value.dataSync()[0];
    assert.ok(Math.abs(total - reference) <= 1e-5 * Math.abs(reference), `sum ${total} against float64 ${reference}`);
    // Every matrix's factorisation (2n³/3) and inverse (4n³/3) is counted, the worker's included.
    const expected = sizes.reduce((sum, n) => sum + 2 * n ** 3, 0);
    assert.ok(Math.abs(counted - expected) <= 1e-9 * expected, `counted ${counted} operations, expected ${expected}`);
    grads.forEach((gradient, i) => {
      const residual = inverseTransposeResidual(values[i], gradient.dataSync() as Float32Array, sizes[i]);
      assert.ok(residual < 1e-4, `matrix ${i}: max |W·Gᵀ − I| = ${residual}`);
    });
    const oneByOne = tf.grads((...inputs: tf.Tensor[]) => tf.addN(inputs.map((w) => logAbsDet(w as tf.Tensor2D))))(matrices);
    grads.forEach((gradient, i) => {
      const difference = tf.tidy(() => tf.max(tf.abs(tf.sub(gradient, oneByOne[i]))).dataSync()[0]);
      assert.ok(difference < 1e-4, `matrix ${i}: gradients differ by ${difference}`);
    });
    tf.dispose([value, ...grads, ...oneByOne, ...matrices]);
  });

  test('paused worker gives equal results', (t) => {
    if (!workerExpected) return t.skip('no LAPACK worker thread on this machine');
    const random = new RandomStream(72);
    const values = [conditionedMatrix(random, 200), conditionedMatrix(random, 200)];
    const matrices = values.map((v) => tf.tensor2d(v, [200, 200]));
    const run = (): { value: number; gradients: Float32Array[] } => {
      const { value, grads } = tf.valueAndGrads((...inputs: tf.Tensor[]) => sumLogAbsDet(inputs as tf.Tensor2D[]))(matrices);
      const result = { value: value.dataSync()[0], gradients: grads.map((g) => g.dataSync() as Float32Array) };
      tf.dispose([value, ...grads]);
      return result;
    };
    const together = run();
    pauseLapackThreads(true);
    const alone = run();
    pauseLapackThreads(false);
    // At n = 200 (below RECURSIVE_LU_MIN_SIZE and SINGLE_THREAD_BELOW_OPERATIONS) both settings run
    // sgetrf and the recursive inverse on one OpenBLAS thread, so the results agree to the bit.
    assert.equal(together.value, alone.value);
    together.gradients.forEach((g, i) => assert.deepEqual(g, alone.gradients[i]));
    tf.dispose(matrices);
  });

  test('singular matrix on the worker', (t) => {
    if (!workerExpected) return t.skip('no LAPACK worker thread on this machine');
    const random = new RandomStream(73);
    const regular = conditionedMatrix(random, 200);
    const matrices = [tf.tensor2d(regular, [200, 200]), tf.tensor2d(zeroColumnMatrix(random, 200), [200, 200])];
    assert.deepEqual(splitByCost([200, 200]).worker, [1]);
    assertSingularIn(matrices, 1);
    tf.dispose(matrices);
  });

  test('runLapack rejects unshared memory', (t) => {
    const blas = nativeBlas();
    if (!workerExpected || blas === null) return t.skip('no LAPACK worker thread on this machine');
    const n = 200;
    const shared = { n, matrix: new Float32Array(new SharedArrayBuffer(4 * n * n)), pivots: new Int32Array(new SharedArrayBuffer(4 * n)) };
    const unshared = { n, matrix: new Float32Array(n * n), pivots: new Int32Array(n) };
    assert.throws(() => runLapack(blas, 'factor', [shared, unshared]), /item 1 \(200×200\) is not in a SharedArrayBuffer/);
  });

  test('runLapack rejects short arrays on this thread', (t) => {
    const blas = nativeBlas();
    if (blas === null) return t.skip('OpenBLAS not loaded');
    const n = 200;
    // The short view lies inside a full buffer, so a LAPACK call that ran anyway would still write inside it.
    const short = { n, matrix: new Float32Array(new SharedArrayBuffer(4 * n * n)).subarray(0, n * n - 1), pivots: new Int32Array(new SharedArrayBuffer(4 * n)) };
    const full = sharedItem(conditionedMatrix(new RandomStream(74), n), n);
    assert.deepEqual(splitByCost([n, n]).main, [0]);
    assert.throws(() => runLapack(blas, 'factor', [short, full]), /item 0 needs 40000 values and 200 pivots, received 39999 and 200/);
    assert.throws(() => runLapack(blas, 'factor', [short]), /item 0 needs 40000 values/);
    assert.throws(() => runLapack(blas, 'factor', [{ ...full, n: 1.5 }]), /item 0 has size n = 1\.5/);
  });

  test('gradients scale with dy', (t) => {
    if (!workerExpected) return t.skip('no LAPACK worker thread on this machine');
    const random = new RandomStream(75);
    const matrices = [tf.tensor2d(conditionedMatrix(random, 200), [200, 200]), tf.tensor2d(conditionedMatrix(random, 200), [200, 200])];
    const sum = (...inputs: tf.Tensor[]): tf.Tensor => sumLogAbsDet(inputs as tf.Tensor2D[]);
    const plain = tf.grads(sum)(matrices);
    const tripled = tf.grads((...inputs: tf.Tensor[]) => tf.mul(3, sum(...inputs)))(matrices);
    const negated = tf.grads((...inputs: tf.Tensor[]) => tf.neg(sum(...inputs)))(matrices);
    for (let i = 0; i < 2; i++) {
      const g = plain[i].dataSync();
      const g3 = tripled[i].dataSync();
      const gNegative = negated[i].dataSync();
      let worst = 0;
      for (let j = 0; j < g.length; j++) {
        worst = Math.max(worst, Math.abs(g3[j] - 3 * g[j]));
        assert.equal(gNegative[j], -g[j], `matrix ${i}, entry ${j}`);
      }
      assert.ok(worst <= 1e-6, `matrix ${i}: max |G(3·f) − 3·G(f)| = ${worst}`);
    }
    tf.dispose([...plain, ...tripled, ...negated, ...matrices]);
  });

  test('singular matrix on this thread', (t) => {
    if (!workerExpected) return t.skip('no LAPACK worker thread on this machine');
    const random = new RandomStream(76);
    const singular = zeroColumnMatrix(random, 200);
    const matrices = [tf.tensor2d(singular, [200, 200]), tf.tensor2d(conditionedMatrix(random, 200), [200, 200])];
    assert.deepEqual(splitByCost([200, 200]).main, [0]);
    assertSingularIn(matrices, 0);
    tf.dispose(matrices);
  });

  test('sizes 0 and 1 on the worker', (t) => {
    if (!workerExpected) return t.skip('no LAPACK worker thread on this machine');
    const random = new RandomStream(77);
    const sizes = [300, 260, 0, 1];
    assert.deepEqual(splitByCost(sizes), { main: [0], worker: [1, 2, 3] });
    const values = sizes.map((n) => conditionedMatrix(random, n));
    const matrices = values.map((v, i) => tf.tensor2d(v, [sizes[i], sizes[i]]));
    const reference = values.reduce((sum, v, i) => sum + logAbsDetFloat64(v, sizes[i]), 0);
    const tensorsBefore = tf.memory().numTensors;
    const { value, grads } = tf.valueAndGrads((...inputs: tf.Tensor[]) => sumLogAbsDet(inputs as tf.Tensor2D[]))(matrices);
    const total = value.dataSync()[0];
    assert.ok(Math.abs(total - reference) <= 1e-5 * Math.abs(reference), `sum ${total} against float64 ${reference}`);
    assert.deepEqual(grads.map((g) => g.shape), sizes.map((n) => [n, n]));
    assert.equal(grads[3].dataSync()[0], Math.fround(1 / values[3][0]));
    grads.slice(0, 2).forEach((gradient, i) => {
      const residual = inverseTransposeResidual(values[i], gradient.dataSync() as Float32Array, sizes[i]);
      assert.ok(residual < 1e-4, `matrix ${i}: max |W·Gᵀ − I| = ${residual}`);
    });
    tf.dispose([value, ...grads]);
    assert.equal(tf.memory().numTensors, tensorsBefore, 'value and gradients left tensors behind');
    tf.dispose(matrices);
  });

  test('main share throws, worker still awaited', (t) => {
    const blas = nativeBlas();
    if (!workerExpected || blas === null) return t.skip('no LAPACK worker thread on this machine');
    const random = new RandomStream(78);
    const n = 300;
    const values = [conditionedMatrix(random, n), conditionedMatrix(random, n)];
    const failing: NativeBlas = Object.create(blas, {
      factorLu: {
        value: () => {
          throw new Error('main share failed on purpose');
        },
      },
    });
    runLargeProduct(blas);
    assert.throws(() => runLapack(failing, 'factor', values.map((v) => sharedItem(v, n))), /main share failed on purpose/);
    // The worker finished the failed call's job, so the next call's job numbers and results are right.
    const items = values.map((v) => sharedItem(v, n));
    const infos = runLapack(blas, 'factor', items);
    assert.deepEqual(Array.from(infos), [0, 0]);
    items.forEach((item, i) => {
      const expected = sharedItem(values[i], n);
      blas.onOneThread(() => blas.factorLu(n, expected.matrix, expected.pivots));
      assert.deepEqual(item.matrix, expected.matrix, `matrix ${i}`);
      assert.deepEqual(item.pivots, expected.pivots, `pivots ${i}`);
    });
    // The failure left no pin behind: a large product runs on every OpenBLAS thread again.
    runLargeProduct(blas);
    assert.equal(blas.currentThreads(), blas.status.threads);
  });

  test('worker starts after the pin', (t) => {
    const blas = nativeBlas();
    if (!workerExpected || blas === null) return t.skip('no LAPACK worker thread on this machine');
    const random = new RandomStream(79);
    const n = 300;
    const values = [conditionedMatrix(random, n), conditionedMatrix(random, n)];
    const items = values.map((v) => sharedItem(v, n));
    let changedBeforePin = false;
    const pinning: NativeBlas = Object.create(blas, {
      onOneThread: {
        value: <T>(action: () => T): T => {
          // A worker that had its job already would factor its matrix (item 1) during this wait.
          spin(100);
          changedBeforePin = items[1].matrix.some((value, i) => value !== values[1][i]);
          return blas.onOneThread(action);
        },
      },
    });
    runLargeProduct(blas);
    const infos = runLapack(pinning, 'factor', items);
    assert.deepEqual(Array.from(infos), [0, 0]);
    assert.ok(items[1].matrix.some((value, i) => value !== values[1][i]), 'the worker did not factor its matrix');
    assert.equal(changedBeforePin, false, 'the worker ran before this thread dropped to one OpenBLAS thread');
  });

  test('concurrent starts start one worker', async (t) => {
    const blas = nativeBlas();
    if (!workerExpected || blas === null) return t.skip('no LAPACK worker thread on this machine');
    await stopLapackThreads();
    const threadsBefore = processThreadCount();
    const statuses = await Promise.all([startLapackThreads(blas), startLapackThreads(blas)]);
    assert.deepEqual(statuses.map((status) => status.threads), [2, 2]);
    assert.equal(processThreadCount(), threadsBefore + 1, 'a second worker thread was started');
    await stopLapackThreads();
    // A stop during a start stops the worker that the start brings up.
    const pending = startLapackThreads(blas);
    await stopLapackThreads();
    await pending;
    assert.equal(lapackThreadsStatus().reason, 'stopped');
    assert.equal(processThreadCount(), threadsBefore, 'the worker of the interrupted start still runs');
    assert.equal((await startLapackThreads(blas)).threads, 2);
  });

  test('CNN ML loss matches the worker off', (t) => {
    if (!workerExpected) return t.skip('no LAPACK worker thread on this machine');
    // Four convolutions of 16·16·1 = 256 inputs: two Toeplitz matrices of 256×256 go to the worker.
    const model = createCnnFlow({ imageShape: [16, 16, 1], blocks: 2, kernel: 3, random: new RandomStream(80) });
    const x = tf.tensor2d(new RandomStream(81).normalArray(2 * 256), [2, 256]);
    const ml = getObjective('ml');
    const options: ObjectiveOptions = { sigma: 0.4, epsilon: 0.3, slices: 1, energyWeight: 0, channels: 1, explicitDerivatives: true };
    const run = (): { loss: number; gradients: Float32Array[] } => {
      const { value, grads } = tf.variableGrads(() => ml.loss(model, x, {}, options), model.variables);
      const result = { loss: value.dataSync()[0], gradients: model.variables.map((v) => grads[v.name].dataSync() as Float32Array) };
      tf.dispose([value, ...Object.values(grads)]);
      return result;
    };
    const together = run();
    pauseLapackThreads(true);
    const alone = run();
    pauseLapackThreads(false);
    assert.ok(Math.abs(together.loss - alone.loss) <= 1e-5 * Math.abs(alone.loss), `loss ${together.loss} against ${alone.loss}`);
    together.gradients.forEach((gradient, i) => {
      let worst = 0;
      let scale = 0;
      for (let j = 0; j < gradient.length; j++) {
        worst = Math.max(worst, Math.abs(gradient[j] - alone.gradients[i][j]));
        scale = Math.max(scale, Math.abs(alone.gradients[i][j]));
      }
      assert.ok(worst <= 1e-4 * scale, `${model.variables[i].name}: gradients differ by ${worst} (scale ${scale})`);
    });
    // log Z against the sum of each convolution's own log-det, as computed before sumLogAbsDet.
    const logZ = tf.tidy(() => model.logNormalizer().dataSync()[0]);
    const oneByOne = tf.tidy(() => model.convLayers.reduce((sum, conv) => sum - conv.constantLogDet().dataSync()[0], 0));
    assert.ok(Math.abs(logZ - oneByOne) <= 1e-5 * Math.max(1, Math.abs(oneByOne)), `log Z ${logZ} against ${oneByOne}`);
    tf.dispose(x);
    model.dispose();
  });
});

describe('sumLogAbsDet on the cpu backend', () => {
  before(async () => {
    await useBackend('cpu');
  });

  after(async () => {
    await useBackend('wasm');
  });

  test('cpu matches the float64 LU', () => {
    const random = new RandomStream(82);
    const sizes = [40, 0, 1, 25];
    const values = sizes.map((n) => conditionedMatrix(random, n));
    const matrices = values.map((v, i) => tf.tensor2d(v, [sizes[i], sizes[i]]));
    const reference = values.reduce((sum, v, i) => sum + logAbsDetFloat64(v, sizes[i]), 0);
    const tensorsBefore = tf.memory().numTensors;
    const { value, grads } = tf.valueAndGrads((...inputs: tf.Tensor[]) => tf.mul(2, sumLogAbsDet(inputs as tf.Tensor2D[])))(matrices);
    const total = value.dataSync()[0];
    assert.ok(Math.abs(total - 2 * reference) <= 1e-5 * Math.abs(reference), `2·sum ${total} against float64 ${2 * reference}`);
    [0, 3].forEach((i) => {
      const half = Float32Array.from(grads[i].dataSync(), (entry) => entry / 2);
      const residual = inverseTransposeResidual(values[i], half, sizes[i]);
      assert.ok(residual < 1e-4, `matrix ${i}: max |W·Gᵀ/2 − I| = ${residual}`);
    });
    assert.ok(Math.abs(grads[2].dataSync()[0] - 2 / values[2][0]) <= 1e-6, `1×1 gradient ${grads[2].dataSync()[0]}`);
    tf.dispose([value, ...grads]);
    assert.equal(tf.memory().numTensors, tensorsBefore, 'value and gradients left tensors behind');
    const empty = sumLogAbsDet([]);
    assert.equal(empty.dataSync()[0], 0);
    tf.dispose([empty, ...matrices]);
  });
});

describe('the LAPACK worker thread in a process', () => {
  const script = `import { selectBackend } from ${JSON.stringify(SELECT_MODULE)};
import { sumLogAbsDet } from ${JSON.stringify(LINALG_MODULE)};
import * as tf from '@tensorflow/tfjs-core';
const selection = await selectBackend('wasm');
const n = 300;
const first = tf.mul(tf.eye(n), 2);
const second = tf.mul(tf.eye(n), 2);
const g = tf.grads((a, b) => sumLogAbsDet([a, b]))([first, second]);
const value = sumLogAbsDet([first, second]).dataSync()[0];
console.log(JSON.stringify({ blas: selection.blas.state, lapackThreads: selection.lapackThreads, value, gradient: g[0].dataSync()[0] }));`;

  // Factors two 512×512 matrices with runLapack (one on each thread) and again on this thread alone.
  const routineScript = `import { selectBackend } from ${JSON.stringify(SELECT_MODULE)};
import { nativeBlas } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
import { lapackThreadsStatus, runLapack } from ${JSON.stringify(LAPACK_THREADS_MODULE)};
const selection = await selectBackend('wasm');
const blas = nativeBlas();
if (blas === null) {
  console.log(JSON.stringify({ blas: selection.blas.state }));
  process.exit(0);
}
const n = 512;
let seed = 1;
const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5;
const items = [0, 1].map(() => {
  const matrix = new Float32Array(new SharedArrayBuffer(4 * n * n));
  for (let i = 0; i < n * n; i++) matrix[i] = next();
  for (let i = 0; i < n; i++) matrix[i * n + i] += 4;
  return { n, matrix, pivots: new Int32Array(new SharedArrayBuffer(4 * n)) };
});
const copies = items.map((item) => ({ n, matrix: item.matrix.slice(), pivots: new Int32Array(n) }));
const sameAsCopies = () => items.map((item, i) => item.matrix.every((value, j) => Object.is(value, copies[i].matrix[j])));
runLapack(blas, 'factor', items);
blas.onOneThread(() => copies.forEach((copy) => blas.factorLu(n, copy.matrix, copy.pivots)));
const sameFactors = sameAsCopies();
runLapack(blas, 'invert', items);
blas.onOneThread(() => copies.forEach((copy) => blas.invertLu(n, copy.matrix, copy.pivots)));
const same = [...sameFactors, ...sameAsCopies()];
console.log(JSON.stringify({ blas: selection.blas.state, lu: blas.status.lu, threads: lapackThreadsStatus().threads, same }));`;

  // Leaves the worker asleep after a call, then ends the process the way EXIT_MODE selects.
  const exitScript = `import { selectBackend } from ${JSON.stringify(SELECT_MODULE)};
import { sumLogAbsDet } from ${JSON.stringify(LINALG_MODULE)};
import * as tf from '@tensorflow/tfjs-core';
const selection = await selectBackend('wasm');
const n = 300;
const g = tf.grads((a, b) => sumLogAbsDet([a, b]))([tf.mul(tf.eye(n), 2), tf.mul(tf.eye(n), 2)]);
console.log(JSON.stringify({ blas: selection.blas.state, lapackThreads: selection.lapackThreads, gradient: g[0].dataSync()[0] }));
await new Promise((resolve) => setTimeout(resolve, 100));
if (process.env.EXIT_MODE === 'exit') process.exit(3);
if (process.env.EXIT_MODE === 'throw') throw new Error('thrown on purpose');`;

  /** Runs `source` in a child process, without this process's settings that switch the worker off, plus `environment`. */
  function runChild(environment: Record<string, string>, source = script): ReturnType<typeof spawnSync> {
    const inherited = { ...process.env };
    for (const name of ['EBFLOW_BLAS_THREADS', 'EBFLOW_WASM_THREADS', 'EBFLOW_LU']) delete inherited[name];
    return spawnSync(process.execPath, ['--input-type=module', '-e', source], {
      encoding: 'utf8',
      cwd: fileURLToPath(new URL('../../..', import.meta.url)),
      env: { ...inherited, ...environment },
      timeout: 60_000,
    });
  }

  test('process exits cleanly after work', (t) => {
    for (let run = 0; run < 3; run++) {
      const child = runChild({});
      assert.equal(child.signal, null, `run ${run} was killed by ${child.signal}: ${child.stderr}`);
      assert.equal(child.status, 0, `run ${run}: ${child.stderr}`);
      const report = JSON.parse(String(child.stdout)) as { blas: string; lapackThreads: { threads: number }; value: number; gradient: number };
      if (report.blas !== 'loaded') {
        if (REQUIRED) assert.fail('OpenBLAS did not load in a child process');
        return t.skip('OpenBLAS not loaded');
      }
      // log|det 2I| = n·log 2 for each of the two matrices; the gradient (2I)⁻ᵀ has 0.5 on its diagonal.
      assert.ok(Math.abs(report.value - 2 * 300 * Math.log(2)) < 1e-3, `value ${report.value}`);
      assert.equal(report.gradient, 0.5);
      if (availableParallelism() >= 2) assert.equal(report.lapackThreads.threads, 2);
    }
  });

  test('EBFLOW_WASM_THREADS=1 keeps one thread', () => {
    const child = runChild({ EBFLOW_WASM_THREADS: '1' });
    assert.equal(child.status, 0, String(child.stderr));
    const report = JSON.parse(String(child.stdout)) as { blas: string; lapackThreads: { threads: number; reason: string }; value: number };
    assert.equal(report.lapackThreads.threads, 1);
    if (report.blas === 'loaded') assert.match(report.lapackThreads.reason, /EBFLOW_WASM_THREADS/);
    assert.ok(Math.abs(report.value - 2 * 300 * Math.log(2)) < 1e-3, `value ${report.value}`);
  });

  test('EBFLOW_BLAS_THREADS=1 keeps one thread', () => {
    const child = runChild({ EBFLOW_BLAS_THREADS: '1' });
    assert.equal(child.status, 0, String(child.stderr));
    const report = JSON.parse(String(child.stdout)) as { blas: string; lapackThreads: { threads: number; reason: string }; value: number; gradient: number };
    assert.equal(report.lapackThreads.threads, 1);
    if (report.blas === 'loaded') assert.match(report.lapackThreads.reason, /EBFLOW_BLAS_THREADS/);
    assert.ok(Math.abs(report.value - 2 * 300 * Math.log(2)) < 1e-3, `value ${report.value}`);
    assert.equal(report.gradient, 0.5);
  });

  test('worker runs the main thread’s LU and inverse routines', (t) => {
    for (const lu of ['recursive', 'lapack']) {
      const child = runChild({ EBFLOW_LU: lu }, routineScript);
      assert.equal(child.status, 0, `EBFLOW_LU=${lu}: ${child.stderr}`);
      const report = JSON.parse(String(child.stdout)) as { blas: string; lu: string; threads: number; same: boolean[] };
      if (report.blas !== 'loaded') {
        if (REQUIRED) assert.fail('OpenBLAS did not load in a child process');
        return t.skip('OpenBLAS not loaded');
      }
      if (report.threads !== 2) return t.skip('no LAPACK worker thread on this machine');
      assert.equal(report.lu, lu);
      // Item 0 ran on the main thread and item 1 on the worker. Each factorisation and inverse must
      // equal, to the bit, the one this thread computes on one OpenBLAS thread.
      assert.deepEqual(report.same, [true, true, true, true], `EBFLOW_LU=${lu}`);
    }
  });

  test('process exit while the worker sleeps', (t) => {
    // The wasm backend's module ends the process with code 7 on an uncaught error.
    for (const [mode, code] of [['exit', 3], ['throw', 7], ['return', 0]] as const) {
      const child = runChild({ EXIT_MODE: mode }, exitScript);
      assert.equal(child.signal, null, `${mode}: killed by ${child.signal}: ${child.stderr}`);
      assert.equal(child.status, code, `${mode}: ${child.stderr}`);
      const report = JSON.parse(String(child.stdout)) as { blas: string; lapackThreads: { threads: number }; gradient: number };
      if (report.blas !== 'loaded') {
        if (REQUIRED) assert.fail('OpenBLAS did not load in a child process');
        return t.skip('OpenBLAS not loaded');
      }
      assert.equal(report.gradient, 0.5);
      if (availableParallelism() >= 2) assert.equal(report.lapackThreads.threads, 2);
    }
  });
});

describe('the LAPACK worker thread on its own', () => {
  test('worker marks its exit failed', async (t) => {
    await selectBackend('wasm');
    const blas = nativeBlas();
    if (blas === null) {
      if (REQUIRED) assert.fail('EBFLOW_REQUIRE_BLAS=1 but OpenBLAS is not loaded');
      return t.skip('OpenBLAS not loaded');
    }
    const { Worker, MessageChannel } = await import('node:worker_threads');
    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    const words = new Int32Array(control);
    const { port2 } = new MessageChannel();
    const thread = new Worker(new URL('../../src/tensor/threads/lapack-worker.js', import.meta.url), {
      workerData: {
        control,
        errorBytes: new SharedArrayBuffer(ERROR_BYTES),
        port: port2,
        library: blas.status.library,
        openmp: blas.status.parallelism === 'openmp',
        lu: blas.status.lu ?? 'lapack',
      },
      transferList: [port2],
    });
    const exited = new Promise((resolve) => thread.once('exit', resolve));
    while (Atomics.load(words, STATE) === STARTING) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(Atomics.load(words, STATE), READY);
    // The stop job ends the thread as any other exit would, and a waiting main thread must see it.
    Atomics.store(words, POSTED, STOP_JOB);
    Atomics.notify(words, POSTED);
    await exited;
    assert.equal(Atomics.load(words, STATE), FAILED);
  });
});
