import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';

import { computeLabel, selectBackend, type BackendSelection } from '../../src/backend/select.js';
import { resolvePeerCommand } from '../../src/peer/bench.js';
import { RandomStream } from '../../src/random/stream.js';
import { inverse, logAbsDet, logAbsDetFloat64, solve } from '../../src/tensor/linalg.js';
import { matMul } from '../../src/tensor/matmul.js';
import {
  applyOpenMpWaitDefault,
  chooseOpenBlasCore,
  describeBlas,
  describeOpenMpWait,
  FALLBACK_OPENBLAS_CORE,
  nativeBlas,
  openWithFittingCore,
  readCpuFlags,
  scaledTranspose,
} from '../../src/tensor/native-blas.js';
import { installWasmBlasKernel, sumOfProducts, uninstallWasmBlasKernel, wasmBlasKernelInstalled } from '../../src/tensor/wasm-blas-kernel.js';
import { normRelativeError } from '../helpers/backends.js';

// CI sets EBFLOW_REQUIRE_BLAS=1 after installing OpenBLAS, so there a missing library fails
// the suite instead of skipping the OpenBLAS specs.
const REQUIRED = process.env.EBFLOW_REQUIRE_BLAS === '1';
const NATIVE_BLAS_MODULE = fileURLToPath(new URL('../../src/tensor/native-blas.js', import.meta.url));

function gaussian(random: RandomStream, count: number): Float32Array {
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = random.normal();
  return values;
}

/** Float64 op(A)·op(B) for row-major A [rows × cols] stored as given. */
function product64(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  shape: { m: number; k: number; n: number; transposeA: boolean; transposeB: boolean },
): Float64Array {
  const { m, k, n, transposeA, transposeB } = shape;
  const result = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) {
        const left = transposeA ? a[p * m + i] : a[i * k + p];
        const right = transposeB ? b[j * k + p] : b[p * n + j];
        sum += left * right;
      }
      result[i * n + j] = sum;
    }
  }
  return result;
}

/** Returns a well-conditioned n×n matrix: Gaussian entries scaled by 1/√n, plus 2·I. */
function conditionedMatrix(random: RandomStream, n: number): Float32Array {
  const values = gaussian(random, n * n).map((v) => v / Math.sqrt(n));
  for (let i = 0; i < n; i++) values[i * n + i] += 2;
  return values;
}

/** Runs a script that imports the compiled native-blas module, with extra environment variables. */
function runChild(script: string, environment: Record<string, string>): ReturnType<typeof spawnSync> {
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, ...environment },
    timeout: 60_000,
  });
}

describe('native OpenBLAS on wasm', () => {
  let selection: BackendSelection;
  let tensorsBefore = 0;

  before(async () => {
    selection = await selectBackend('wasm');
    tensorsBefore = tf.memory().numTensors;
  });

  after(() => {
    assert.equal(tf.memory().numTensors - tensorsBefore, 0, 'the OpenBLAS specs leaked tensors');
  });

  test('selection records the library or the reason', (t) => {
    if (selection.blas.state === 'off') {
      assert.ok(selection.blas.reason.length > 0);
      assert.equal(computeLabel(selection), 'wasm');
      if (REQUIRED) assert.fail(`EBFLOW_REQUIRE_BLAS=1 but OpenBLAS did not load: ${selection.blas.reason}`);
      t.skip(`OpenBLAS not loaded: ${selection.blas.reason}`);
      return;
    }
    assert.equal(computeLabel(selection), 'wasm+openblas');
    assert.ok(selection.blas.threads >= 1);
    assert.ok(wasmBlasKernelInstalled());
  });

  const shapes = [false, true].flatMap((transposeA) => [false, true].map((transposeB) => ({ m: 40, k: 50, n: 60, transposeA, transposeB })));
  for (const shape of shapes) {
    test(`matMul 40×50·50×60 transposeA=${shape.transposeA} transposeB=${shape.transposeB}`, (t) => {
      if (!wasmBlasKernelInstalled()) return t.skip('OpenBLAS not loaded');
      const random = new RandomStream(11);
      const a = gaussian(random, shape.m * shape.k);
      const b = gaussian(random, shape.k * shape.n);
      const shapeA: [number, number] = shape.transposeA ? [shape.k, shape.m] : [shape.m, shape.k];
      const shapeB: [number, number] = shape.transposeB ? [shape.n, shape.k] : [shape.k, shape.n];
      const actual = tf.tidy(() => tf.matMul(tf.tensor2d(a, shapeA), tf.tensor2d(b, shapeB), shape.transposeA, shape.transposeB).dataSync());
      assert.ok(normRelativeError(actual, product64(a, b, shape)) < 1e-6);
    });
  }

  test('sumOfProducts adds products with β = 1', (t) => {
    if (!wasmBlasKernelInstalled()) return t.skip('OpenBLAS not loaded');
    const random = new RandomStream(23);
    // Terms of different inner sizes and transposes: A₁ᵀ·B₁ (k = 30) + A₂·B₂ᵀ (k = 45) + A₃ᵀ·B₃ (k = 7).
    const a1 = tf.tensor2d(gaussian(random, 30 * 40), [30, 40]);
    const b1 = tf.tensor2d(gaussian(random, 30 * 50), [30, 50]);
    const a2 = tf.tensor2d(gaussian(random, 40 * 45), [40, 45]);
    const b2 = tf.tensor2d(gaussian(random, 50 * 45), [50, 45]);
    const a3 = tf.tensor2d(gaussian(random, 7 * 40), [7, 40]);
    const b3 = tf.tensor2d(gaussian(random, 7 * 50), [7, 50]);
    const summed = sumOfProducts([
      { a: a1, b: b1, transposeA: true, transposeB: false },
      { a: a2, b: b2, transposeA: false, transposeB: true },
      { a: a3, b: b3, transposeA: true, transposeB: false },
    ]);
    assert.ok(summed !== null);
    const expected = tf.tidy(() => tf.addN([tf.matMul(a1, b1, true, false), tf.matMul(a2, b2, false, true), tf.matMul(a3, b3, true, false)]));
    assert.deepEqual(summed.shape, [40, 50]);
    assert.ok(normRelativeError(summed.dataSync(), expected.dataSync()) < 1e-6);
    assert.throws(() => sumOfProducts([{ a: a1, b: b2, transposeA: true, transposeB: false }]), /inner sizes differ, 30 and 50/);
    assert.throws(
      () => sumOfProducts([{ a: a1, b: b1, transposeA: true, transposeB: false }, { a: a1, b: a1, transposeA: true, transposeB: false }]),
      /products of shapes \[40, 50\], \[40, 40\] cannot be added/,
    );
    tf.dispose([a1, b1, a2, b2, a3, b3, summed, expected]);
  });

  test('batched matMul with equal and broadcast batches', (t) => {
    if (!wasmBlasKernelInstalled()) return t.skip('OpenBLAS not loaded');
    const random = new RandomStream(12);
    const shape = { m: 40, k: 50, n: 60, transposeA: false, transposeB: false };
    const a = gaussian(random, 3 * 40 * 50);
    const b = gaussian(random, 3 * 50 * 60);
    const equal = tf.tidy(() => tf.matMul(tf.tensor3d(a, [3, 40, 50]), tf.tensor3d(b, [3, 50, 60])).dataSync());
    const broadcast = tf.tidy(() => tf.matMul(tf.tensor3d(a, [3, 40, 50]), tf.tensor2d(b.subarray(0, 3000), [50, 60])).dataSync());
    for (let i = 0; i < 3; i++) {
      const sliceA = a.subarray(i * 2000, (i + 1) * 2000);
      const expectedEqual = product64(sliceA, b.subarray(i * 3000, (i + 1) * 3000), shape);
      const expectedBroadcast = product64(sliceA, b.subarray(0, 3000), shape);
      assert.ok(normRelativeError(equal.subarray(i * 2400, (i + 1) * 2400), expectedEqual) < 1e-6, `batch ${i}, equal batches`);
      assert.ok(normRelativeError(broadcast.subarray(i * 2400, (i + 1) * 2400), expectedBroadcast) < 1e-6, `batch ${i}, broadcast`);
    }
  });

  test('small products fall back to XNNPACK', (t) => {
    if (!wasmBlasKernelInstalled()) return t.skip('OpenBLAS not loaded');
    const a = [1, 2, 3, 4, 5, 6];
    const b = [7, 8, 9, 10, 11, 12];
    const actual = tf.tidy(() => tf.matMul(tf.tensor2d(a, [2, 3]), tf.tensor2d(b, [3, 2])).dataSync());
    assert.deepEqual(Array.from(actual), [58, 64, 139, 154]);
  });

  test('matMul gradients match the XNNPACK path', (t) => {
    if (!wasmBlasKernelInstalled()) return t.skip('OpenBLAS not loaded');
    const blas = nativeBlas();
    assert.ok(blas !== null);
    const random = new RandomStream(13);
    const a = gaussian(random, 48 * 40);
    const b = gaussian(random, 56 * 40);
    const weights = gaussian(random, 48 * 56);
    // F(A, B) = Σ w⊙(A·Bᵀ)², and the derivative of ∂F/∂A along A itself, a second-order term.
    const derivatives = (): Float32Array[] =>
      tf.tidy(() => {
        const left = tf.tensor2d(a, [48, 40]);
        const right = tf.tensor2d(b, [56, 40]);
        const w = tf.tensor2d(weights, [48, 56]);
        const f = (x: tf.Tensor, y: tf.Tensor): tf.Scalar => tf.sum(tf.mul(w, tf.square(matMul(x, y, false, true))));
        const [gradientA, gradientB] = tf.grads(f)([left, right]);
        const second = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.grads(f)([x, right])[0], left)))(left);
        return [gradientA, gradientB, second].map((g) => g.dataSync() as Float32Array);
      });
    const withBlas = derivatives();
    uninstallWasmBlasKernel();
    let withXnnpack: Float32Array[];
    try {
      withXnnpack = derivatives();
    } finally {
      installWasmBlasKernel(blas);
    }
    for (let i = 0; i < withBlas.length; i++) {
      assert.ok(normRelativeError(withBlas[i], withXnnpack[i]) < 1e-5, `derivative ${i}`);
    }
  });

  test('log-det gradient after a square solve in between', (t) => {
    if (!wasmBlasKernelInstalled()) return t.skip('OpenBLAS not loaded');
    // The solve's two scratch arrays have the log-det's length (n² values), and it takes and gives
    // them back while the log-det still keeps its factorisation for the gradient.
    const n = 48;
    const random = new RandomStream(29);
    for (let round = 0; round < 2; round++) {
      const w = tf.tensor2d(gaussian(random, n * n).map((value) => value / Math.sqrt(n)), [n, n]);
      const b = tf.tensor2d(gaussian(random, n * n), [n, n]);
      let residual = Number.NaN;
      const gradient = tf.grad((m: tf.Tensor) => {
        const value = logAbsDet(m as tf.Tensor2D);
        residual = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.matMul(w, solve(w, b)), b))).dataSync()[0]!);
        return value;
      })(w);
      const expected = tf.tidy(() => tf.transpose(inverse(w)));
      assert.ok(residual < 1e-3, `round ${round}: ‖W·X − B‖max = ${residual}`);
      assert.ok(normRelativeError(gradient.dataSync(), expected.dataSync()) < 1e-4, `round ${round}: W⁻ᵀ`);
      tf.dispose([w, b, gradient, expected]);
    }
  });

  test('logAbsDet and its gradient through LAPACK', (t) => {
    if (!wasmBlasKernelInstalled()) return t.skip('OpenBLAS not loaded');
    const n = 150;
    const values = conditionedMatrix(new RandomStream(14), n);
    const [value, gradient] = tf.tidy(() => {
      const w = tf.tensor2d(values, [n, n]);
      const { value: v, grad } = tf.valueAndGrad((x: tf.Tensor) => logAbsDet(x as tf.Tensor2D))(w);
      return [v.dataSync()[0], grad.dataSync() as Float32Array];
    });
    const expected = logAbsDetFloat64(values, n);
    assert.ok(Math.abs(value - expected) <= 1e-5 * Math.abs(expected), `log|det| ${value} vs ${expected}`);

    // The gradient is W⁻ᵀ, so Wᵀ·gradient = I.
    let worst = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < n; p++) sum += values[p * n + i] * gradient[p * n + j];
        worst = Math.max(worst, Math.abs(sum - (i === j ? 1 : 0)));
      }
    }
    assert.ok(worst < 1e-4, `max |Wᵀ·∇ − I| = ${worst}`);

    // An upstream gradient other than 1 scales W⁻ᵀ.
    const scaled = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.mul(logAbsDet(x as tf.Tensor2D), -2.5))(tf.tensor2d(values, [n, n])).dataSync());
    assert.ok(normRelativeError(scaled, Array.from(gradient, (g) => -2.5 * g)) < 1e-6);
  });

  test('transposeCopy writes the scaled transpose', (t) => {
    const blas = nativeBlas();
    if (blas === null) return t.skip('OpenBLAS not loaded');
    const rows = 37;
    const cols = 53;
    const a = gaussian(new RandomStream(19), rows * cols);
    const expected = new Float32Array(rows * cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) expected[j * rows + i] = -1.5 * a[i * cols + j];
    const viaLibrary = new Float32Array(rows * cols);
    blas.transposeCopy(rows, cols, -1.5, a, viaLibrary);
    assert.deepEqual(viaLibrary, expected);
    assert.throws(() => blas.transposeCopy(rows, cols, 1, a, new Float32Array(10)), /needs 1961 values/);
  });

  test('scaledCopy writes the scaled values', (t) => {
    const blas = nativeBlas();
    if (blas === null) return t.skip('OpenBLAS not loaded');
    const a = gaussian(new RandomStream(23), 1001);
    const expected = Float32Array.from(a, (value) => Math.fround(-0.75 * value));
    const viaLibrary = new Float32Array(1001);
    blas.scaledCopy(1001, -0.75, a, viaLibrary);
    assert.deepEqual(viaLibrary, expected);
    assert.throws(() => blas.scaledCopy(1001, 1, a, new Float32Array(10)), /needs arrays of at least that length/);
    const untouched = new Float32Array([5]);
    blas.scaledCopy(0, 2, new Float32Array(0), untouched);
    assert.deepEqual(untouched, new Float32Array([5]));
  });

  test('logAbsDet of singular matrix', (t) => {
    if (!wasmBlasKernelInstalled()) return t.skip('OpenBLAS not loaded');
    const n = 64;
    const values = conditionedMatrix(new RandomStream(15), n);
    for (let j = 0; j < n; j++) values[5 * n + j] = 0;
    const w = tf.tensor2d(values, [n, n]);
    try {
      const value = tf.tidy(() => logAbsDet(w).dataSync()[0]);
      assert.equal(value, -Infinity);
      assert.throws(() => tf.tidy(() => tf.grad((x: tf.Tensor) => logAbsDet(x as tf.Tensor2D))(w)), /singular/);
    } finally {
      w.dispose();
    }
  });

  test('inverse and solve through LAPACK', (t) => {
    if (!wasmBlasKernelInstalled()) return t.skip('OpenBLAS not loaded');
    const n = 120;
    const random = new RandomStream(16);
    const values = conditionedMatrix(random, n);
    const rightHandSide = gaussian(random, n * 7);
    const [inverted, solution] = tf.tidy(() => {
      const w = tf.tensor2d(values, [n, n]);
      return [inverse(w).dataSync(), solve(w, tf.tensor2d(rightHandSide, [n, 7])).dataSync()];
    });
    const identity = product64(values, inverted, { m: n, k: n, n, transposeA: false, transposeB: false });
    const reconstructed = product64(values, solution, { m: n, k: n, n: 7, transposeA: false, transposeB: false });
    for (let i = 0; i < n; i++) identity[i * n + i] -= 1;
    assert.ok(Math.max(...identity.map(Math.abs)) < 1e-4, 'W·W⁻¹ = I');
    assert.ok(normRelativeError(reconstructed, rightHandSide) < 1e-5, 'W·X = B');
  });

  test('inverse of an int32 matrix', (t) => {
    if (!wasmBlasKernelInstalled()) return t.skip('OpenBLAS not loaded');
    // The path without OpenBLAS reads the values as numbers, so an int32 W must give the same inverse.
    const inverted = tf.tidy(() => inverse(tf.tensor2d([[2, 1], [0, 4]], [2, 2], 'int32')).arraySync());
    // sgetri writes −0 for the zero below the diagonal; + 0 turns it into 0.
    assert.deepEqual(inverted.map((row) => row.map((value) => value + 0)), [[0.5, -0.125], [0, 0.25]]);
  });

  test('inverse of singular matrix throws', (t) => {
    if (!wasmBlasKernelInstalled()) return t.skip('OpenBLAS not loaded');
    const w = tf.zeros([40, 40]) as tf.Tensor2D;
    try {
      assert.throws(() => inverse(w), /inverse: the 40×40 matrix is singular \(pivot 0 is exactly 0\)/);
      assert.throws(() => tf.tidy(() => solve(w, tf.ones([40, 2]) as tf.Tensor2D)), /solve: the 40×40 matrix is singular \(pivot 0 is exactly 0\)/);
    } finally {
      w.dispose();
    }
  });
});

describe('native OpenBLAS in a process', () => {
  test('process exits cleanly after threaded calls', (t) => {
    const probe = runChild(`import { loadNativeBlas } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
const status = await loadNativeBlas();
console.log(status.state);`, {});
    if (probe.stdout.toString().trim() !== 'loaded') {
      if (REQUIRED) assert.fail(`OpenBLAS did not load in a child process: ${probe.stderr}`);
      return t.skip('OpenBLAS not loaded');
    }
    const script = `import { loadNativeBlas, nativeBlas } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
await loadNativeBlas();
const n = 400;
const a = new Float32Array(n * n).fill(1);
const c = new Float32Array(n * n);
nativeBlas().sgemm(false, false, n, n, n, a, n, a, n, c, n);
if (c[0] !== n) throw new Error('wrong product ' + c[0]);`;
    // The crash this guards against (OpenMP threads torn down with the process) was not certain
    // on every exit, so the child runs several times.
    for (let run = 0; run < 4; run++) {
      const child = runChild(script, { EBFLOW_BLAS_THREADS: '2' });
      assert.equal(child.signal, null, `run ${run} was killed by ${child.signal}: ${child.stderr}`);
      assert.equal(child.status, 0, `run ${run}: ${child.stderr}`);
    }
  });

  test('threads per call around the cut', (t) => {
    const script = `import { loadNativeBlas, nativeBlas, SINGLE_THREAD_BELOW_OPERATIONS } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
const status = await loadNativeBlas();
if (status.state !== 'loaded') { console.log(JSON.stringify({ state: status.state })); process.exit(0); }
const blas = nativeBlas();
const seen = [];
// [n×n]·[n×n] of ones: every entry of the product is n.
const product = (n) => {
  const a = new Float32Array(n * n).fill(1);
  const c = new Float32Array(n * n);
  blas.sgemm(false, false, n, n, n, a, n, a, n, c, n);
  seen.push({ n, operations: 2 * n ** 3, threads: blas.currentThreads(), first: c[0], last: c[n * n - 1] });
};
// 2·8³ and 2·512³ operations lie on either side of the cut; the small one runs again last.
product(8); product(512); product(8);
const pivots = new Int32Array(64);
const identity = new Float32Array(64 * 64);
for (let i = 0; i < 64; i++) identity[i * 64 + i] = 2;
const info = blas.sgetrf(64, identity, pivots);
seen.push({ n: 64, operations: (2 * 64 ** 3) / 3, threads: blas.currentThreads(), first: identity[0], info });
console.log(JSON.stringify({ state: status.state, threads: status.threads, cut: SINGLE_THREAD_BELOW_OPERATIONS, recordedCut: status.singleThreadBelow, seen }));`;
    const child = runChild(script, { EBFLOW_BLAS_THREADS: '2' });
    assert.equal(child.status, 0, String(child.stderr));
    const report = JSON.parse(String(child.stdout));
    if (report.state !== 'loaded') {
      if (REQUIRED) assert.fail('OpenBLAS did not load in a child process');
      return t.skip('OpenBLAS not loaded');
    }
    assert.equal(report.threads, 2);
    assert.equal(report.recordedCut, report.cut);
    const [small, large, smallAgain, factor] = report.seen;
    assert.ok(small.operations < report.cut);
    assert.ok(large.operations >= report.cut);
    assert.deepEqual([small.threads, large.threads, smallAgain.threads, factor.threads], [1, 2, 1, 1]);
    for (const call of [small, large, smallAgain]) assert.deepEqual([call.first, call.last], [call.n, call.n]);
    assert.deepEqual([factor.info, factor.first], [0, 2]);
  });

  test('scaledTranspose, the JavaScript fallback of transposeCopy', () => {
    const rows = 70;
    const cols = 33;
    const a = Array.from({ length: rows * cols }, (_, i) => i);
    const b = new Float32Array(rows * cols);
    scaledTranspose(rows, cols, 2, a, b);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) assert.equal(b[j * rows + i], 2 * a[i * cols + j]);
  });

  test('OpenMP threads spin briefly unless the user chose a wait setting', () => {
    const unset: NodeJS.ProcessEnv = {};
    applyOpenMpWaitDefault(unset);
    assert.deepEqual(unset, { GOMP_SPINCOUNT: '1000' });
    assert.equal(describeOpenMpWait(unset), 'GOMP_SPINCOUNT=1000');
    const passive: NodeJS.ProcessEnv = { OMP_WAIT_POLICY: 'PASSIVE' };
    applyOpenMpWaitDefault(passive);
    assert.deepEqual(passive, { OMP_WAIT_POLICY: 'PASSIVE' });
    const spin: NodeJS.ProcessEnv = { GOMP_SPINCOUNT: '50' };
    applyOpenMpWaitDefault(spin);
    assert.deepEqual(spin, { GOMP_SPINCOUNT: '50' });
    assert.equal(describeOpenMpWait({}), 'libgomp default');
    assert.equal(describeOpenMpWait({ OMP_WAIT_POLICY: 'ACTIVE', GOMP_SPINCOUNT: '7' }), 'OMP_WAIT_POLICY=ACTIVE GOMP_SPINCOUNT=7');
  });

  test('the loaded status records the wait setting the library started with', (t) => {
    const child = runChild(`import { loadNativeBlas } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
console.log(JSON.stringify(await loadNativeBlas()));`, { OMP_WAIT_POLICY: 'PASSIVE' });
    assert.equal(child.status, 0, String(child.stderr));
    const status = JSON.parse(String(child.stdout));
    if (status.state !== 'loaded') {
      if (REQUIRED) assert.fail(`OpenBLAS did not load in a child process: ${status.reason}`);
      return t.skip('OpenBLAS not loaded');
    }
    assert.match(status.waitPolicy, /OMP_WAIT_POLICY=PASSIVE/);
  });

  test('empty matrices: no OpenBLAS error', (t) => {
    // OpenBLAS rejects a leading dimension of 0 and prints "illegal value" to stdout for each such call.
    const script = `import { loadNativeBlas, nativeBlas } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
const status = await loadNativeBlas();
const blas = nativeBlas();
const empty = new Float32Array(0);
const pivots = new Int32Array(0);
const infos = blas === null ? [] : [blas.sgetrf(0, empty, pivots), blas.sgetri(0, empty, pivots), blas.factorLu(0, empty, pivots)];
if (blas !== null) {
  blas.transposeCopy(0, 0, 1, empty, empty);
  blas.transposeCopy(0, 3, 1, empty, empty);
  blas.sgetrs(true, 0, 3, empty, pivots, empty);
}
console.log(JSON.stringify({ state: status.state, infos }));`;
    for (const lu of ['recursive', 'lapack']) {
      const child = runChild(script, { EBFLOW_LU: lu });
      assert.equal(child.status, 0, String(child.stderr));
      const output = String(child.stdout).trim().split('\n');
      const result = JSON.parse(output.at(-1)!) as { state: string; infos: number[] };
      if (result.state !== 'loaded') {
        if (REQUIRED) assert.fail('EBFLOW_REQUIRE_BLAS=1 but OpenBLAS did not load in a child process');
        return t.skip('OpenBLAS not loaded');
      }
      assert.deepEqual(result.infos, [0, 0, 0], `EBFLOW_LU=${lu}`);
      assert.deepEqual(output.slice(0, -1), [], `EBFLOW_LU=${lu}`);
      assert.equal(String(child.stderr), '', `EBFLOW_LU=${lu}`);
    }
  });

  test('EBFLOW_BLAS=off keeps products on the backend', () => {
    const child = runChild(`import { loadNativeBlas } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
console.log(JSON.stringify(await loadNativeBlas()));`, { EBFLOW_BLAS: 'off' });
    assert.equal(child.status, 0, String(child.stderr));
    assert.deepEqual(JSON.parse(String(child.stdout)), { state: 'off', reason: 'switched off by EBFLOW_BLAS=off' });
  });

  test('missing library named in EBFLOW_BLAS', () => {
    const child = runChild(`import { loadNativeBlas } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
await loadNativeBlas();`, { EBFLOW_BLAS: '/nonexistent/libmissing.so' });
    assert.notEqual(child.status, 0);
    assert.match(String(child.stderr), /EBFLOW_BLAS='\/nonexistent\/libmissing\.so' failed to load/);
  });

  test('invalid EBFLOW_BLAS_THREADS', () => {
    const child = runChild(`import { loadNativeBlas } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
await loadNativeBlas();`, { EBFLOW_BLAS_THREADS: 'two' });
    assert.notEqual(child.status, 0);
    assert.match(String(child.stderr), /EBFLOW_BLAS_THREADS must be a positive integer, received 'two'/);
  });

  test('invalid EBFLOW_LU', () => {
    const child = runChild(`import { loadNativeBlas } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
await loadNativeBlas();`, { EBFLOW_LU: 'blocked' });
    assert.notEqual(child.status, 0);
    assert.match(String(child.stderr), /EBFLOW_LU must be 'recursive' or 'lapack', received 'blocked'/);
  });

  test('EBFLOW_LU=lapack: sgetrf, same results', (t) => {
    // The inverse of one matrix in two processes, one per EBFLOW_LU setting (n above RECURSIVE_LU_MIN_SIZE).
    const script = `import { loadNativeBlas, nativeBlas, describeBlas } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
const status = await loadNativeBlas();
const blas = nativeBlas();
const n = 600;
const a = new Float32Array(n * n).map((_, i) => Math.sin(i) / Math.sqrt(n) + (i % (n + 1) === 0 ? 1 : 0));
const pivots = new Int32Array(n);
if (blas !== null) { blas.factorLu(n, a, pivots); blas.sgetri(n, a, pivots); }
// Every 101st entry keeps the output small (the whole inverse would overflow spawnSync's buffer).
console.log(JSON.stringify({ status, line: describeBlas(status), inverse: Array.from(a.filter((_, i) => i % 101 === 0)) }));`;
    const runs = ['lapack', 'recursive'].map((lu) => {
      const child = runChild(script, { EBFLOW_LU: lu });
      assert.equal(child.status, 0, String(child.stderr));
      return JSON.parse(String(child.stdout));
    });
    if (runs[0].status.state !== 'loaded') {
      if (REQUIRED) assert.fail(`OpenBLAS did not load in a child process: ${runs[0].status.reason}`);
      return t.skip('OpenBLAS not loaded');
    }
    assert.deepEqual(runs.map((run) => run.status.lu), ['lapack', 'recursive']);
    assert.match(runs[0].line, /LAPACK sgetrf\)/);
    assert.match(runs[1].line, /recursive LU\)/);
    assert.ok(normRelativeError(runs[1].inverse, runs[0].inverse) < 1e-5);
  });

  test('EBFLOW_BLAS_THREADS above MAX_THREADS', (t) => {
    // Far above MAX_THREADS of the usual builds (64 in Debian's 0.3.21), so OpenBLAS caps it.
    const child = runChild(`import { loadNativeBlas } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
console.log(JSON.stringify(await loadNativeBlas()));`, { EBFLOW_BLAS_THREADS: '100000' });
    if (child.status === 0) {
      const status = JSON.parse(String(child.stdout));
      assert.notEqual(status.state, 'loaded', 'OpenBLAS loaded with 100000 threads');
      if (REQUIRED) assert.fail(`OpenBLAS did not load in a child process: ${status.reason}`);
      return t.skip('OpenBLAS not loaded');
    }
    assert.match(String(child.stderr), /EBFLOW_BLAS_THREADS=100000 is more than the \d+ threads that \S+ supports/);
  });
});

/** Core names of a DYNAMIC_ARCH OpenBLAS, spelled as `openblas_get_corename` returns them. */
const KNOWN_CORES = ['Prescott', 'Sandybridge', 'Haswell', 'SkylakeX', 'Cooperlake'];

/**
 * Builds a stand-in for koffi whose library reports the core that OPENBLAS_CORETYPE named at
 * load, matched without regard to case as OpenBLAS does, or `detected` for an unset or unknown
 * name. With `sticky` the core never changes, as if unloading did nothing.
 */
function fakeKoffi(env: NodeJS.ProcessEnv, detected: string, sticky = false) {
  const events: string[] = [];
  let loadedCore = detected;
  return {
    events,
    koffi: {
      load(path: string) {
        const requested = env.OPENBLAS_CORETYPE?.toLowerCase();
        const known = KNOWN_CORES.find((name) => name.toLowerCase() === requested);
        loadedCore = sticky || known === undefined ? detected : known;
        events.push(`load ${path} as ${loadedCore}`);
        const core = loadedCore;
        return {
          func: (signature: string) => {
            assert.match(signature, /openblas_get_corename/);
            return () => core;
          },
          unload: () => events.push('unload'),
        };
      },
    },
  };
}

describe('OpenBLAS kernels fitting the CPU', () => {
  const avx512 = new Set(['sse3', 'avx', 'avx2', 'fma', 'avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl']);

  test('chooses kernels from the CPU flags', () => {
    assert.equal(chooseOpenBlasCore(avx512), 'SkylakeX');
    assert.equal(chooseOpenBlasCore(new Set(['avx', 'avx2', 'fma', 'avx512f'])), 'Haswell');
    assert.equal(chooseOpenBlasCore(new Set(['avx', 'avx2'])), 'Sandybridge');
    assert.equal(chooseOpenBlasCore(new Set(['sse3', 'ssse3'])), null);
  });

  test('reads the flags of the first processor', () => {
    const folder = mkdtempSync(join(tmpdir(), 'ebflow-cpuinfo-'));
    try {
      const file = join(folder, 'cpuinfo');
      writeFileSync(file, 'processor\t: 0\nflags\t\t: fpu sse3 avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu\n');
      assert.deepEqual([...(readCpuFlags(file) ?? [])], ['fpu', 'sse3', 'avx2', 'fma']);
      writeFileSync(file, 'processor\t: 0\n');
      assert.equal(readCpuFlags(file), null);
      assert.equal(readCpuFlags(join(folder, 'missing')), null);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  test('reloads after a Prescott fallback', () => {
    const env: NodeJS.ProcessEnv = {};
    const { koffi, events } = fakeKoffi(env, FALLBACK_OPENBLAS_CORE);
    const opened = openWithFittingCore(koffi, 'libopenblas.so.0', env, avx512);
    assert.deepEqual(events, ['load libopenblas.so.0 as Prescott', 'unload', 'load libopenblas.so.0 as SkylakeX']);
    assert.equal(env.OPENBLAS_CORETYPE, 'SkylakeX');
    assert.equal(opened.core, 'SkylakeX');
    assert.match(opened.coreChoice, /OPENBLAS_CORETYPE=SkylakeX set by ebflow-bench, because OpenBLAS chose Prescott kernels for a CPU with AVX-512$/);
  });

  test('reloads an AVX-only CPU as Sandybridge', () => {
    const env: NodeJS.ProcessEnv = {};
    const { koffi } = fakeKoffi(env, FALLBACK_OPENBLAS_CORE);
    const opened = openWithFittingCore(koffi, 'libopenblas.so.0', env, new Set(['sse3', 'avx']));
    assert.equal(env.OPENBLAS_CORETYPE, 'Sandybridge');
    assert.equal(opened.core, 'Sandybridge');
    assert.match(opened.coreChoice, /OPENBLAS_CORETYPE=Sandybridge set by ebflow-bench, because OpenBLAS chose Prescott kernels for a CPU with AVX$/);
  });

  test('library keeping the fallback: fix named', () => {
    const env: NodeJS.ProcessEnv = {};
    const { koffi } = fakeKoffi(env, FALLBACK_OPENBLAS_CORE, true);
    const opened = openWithFittingCore(koffi, 'libopenblas.so.0', env, avx512);
    assert.equal(opened.core, 'Prescott');
    assert.match(opened.coreChoice, /kept Prescott: start the process with OPENBLAS_CORETYPE=SkylakeX set/);
  });

  test('keeps detected, user and old-CPU cores', () => {
    for (const [env, detected, flags, choice] of [
      [{}, 'Haswell', avx512, /^detected by OpenBLAS$/],
      [{ OPENBLAS_CORETYPE: 'Prescott' }, 'Prescott', avx512, /^OPENBLAS_CORETYPE=Prescott from the environment$/],
      [{}, 'Prescott', new Set(['sse3']), /^detected by OpenBLAS$/],
      [{}, 'Prescott', null, /^detected by OpenBLAS$/],
    ] as const) {
      const copy: NodeJS.ProcessEnv = { ...env };
      const { koffi, events } = fakeKoffi(copy, detected);
      const opened = openWithFittingCore(koffi, 'lib.so', copy, flags);
      assert.equal(events.length, 1, `reloaded for ${JSON.stringify(env)} ${detected}`);
      assert.equal(opened.core, detected);
      assert.match(opened.coreChoice, choice);
      assert.deepEqual(copy, env);
    }
  });

  test('accepts OPENBLAS_CORETYPE in any case', () => {
    const env: NodeJS.ProcessEnv = { OPENBLAS_CORETYPE: 'haswell' };
    const { koffi, events } = fakeKoffi(env, FALLBACK_OPENBLAS_CORE);
    const opened = openWithFittingCore(koffi, 'libopenblas.so.0', env, avx512);
    assert.deepEqual(events, ['load libopenblas.so.0 as Haswell']);
    assert.equal(opened.core, 'Haswell');
    assert.equal(opened.coreChoice, 'OPENBLAS_CORETYPE=haswell from the environment');
  });

  test('reports an ignored OPENBLAS_CORETYPE', () => {
    // OpenBLAS 0.3.21 ran Cooperlake kernels with OPENBLAS_CORETYPE=Foo on the Xeon of model 207.
    for (const [value, detected] of [
      ['Foo', 'Cooperlake'],
      ['', 'Cooperlake'],
      ['Foo', FALLBACK_OPENBLAS_CORE],
    ]) {
      const env: NodeJS.ProcessEnv = { OPENBLAS_CORETYPE: value };
      const { koffi, events } = fakeKoffi(env, detected);
      const opened = openWithFittingCore(koffi, 'libopenblas.so.0', env, avx512);
      assert.equal(events.length, 1, `reloaded for OPENBLAS_CORETYPE='${value}'`);
      assert.equal(env.OPENBLAS_CORETYPE, value);
      assert.equal(opened.core, detected);
      assert.equal(
        opened.coreChoice,
        `OPENBLAS_CORETYPE=${value} from the environment was ignored, and OpenBLAS chose ${detected} kernels. ` +
          'Set it to a core name that this OpenBLAS knows (SkylakeX fits this CPU), or unset it',
      );
    }
  });

  test('log line names a core not detected', () => {
    const status = {
      state: 'loaded' as const,
      library: 'libopenblas.so.0',
      threads: 2,
      parallelism: 'openmp' as const,
      config: 'OpenBLAS 0.3.21',
      waitPolicy: 'GOMP_SPINCOUNT=1000',
      singleThreadBelow: 4e7,
    };
    const base = 'matrix products and LU on OpenBLAS (libopenblas.so.0, 2 threads, openmp, GOMP_SPINCOUNT=1000';
    assert.equal(describeBlas(status), `${base})`);
    assert.equal(describeBlas({ ...status, core: 'Haswell', coreChoice: 'detected by OpenBLAS' }), `${base}, Haswell kernels)`);
    const fromUser = { ...status, core: 'Haswell', coreChoice: 'OPENBLAS_CORETYPE=haswell from the environment' };
    assert.equal(describeBlas(fromUser), `${base}, Haswell kernels)`);
    assert.equal(describeBlas({ ...status, core: 'Haswell', lu: 'recursive' }), `${base}, Haswell kernels, recursive LU)`);
    assert.equal(describeBlas({ ...status, lu: 'lapack' }), `${base}, LAPACK sgetrf)`);
    const reloaded = 'OPENBLAS_CORETYPE=SkylakeX set by ebflow-bench, because OpenBLAS chose Prescott kernels for a CPU with AVX-512';
    assert.equal(describeBlas({ ...status, core: 'SkylakeX', coreChoice: reloaded }), `${base}, SkylakeX kernels); ${reloaded}`);
    const ignored = 'OPENBLAS_CORETYPE=Foo from the environment was ignored, and OpenBLAS chose Cooperlake kernels. Set it to a core name that this OpenBLAS knows, or unset it';
    assert.equal(describeBlas({ ...status, core: 'Cooperlake', coreChoice: ignored }), `${base}, Cooperlake kernels); ${ignored}`);
  });

  test('peer gets the core set here', async () => {
    const { koffi } = fakeKoffi({}, FALLBACK_OPENBLAS_CORE);
    openWithFittingCore(koffi, 'libopenblas.so.0', {}, avx512);
    const unset = await resolvePeerCommand({ peerCommand: 'peer', env: {} });
    assert.equal(unset.command?.env?.OPENBLAS_CORETYPE, 'SkylakeX');
    const userSet = await resolvePeerCommand({ peerCommand: 'peer', env: { OPENBLAS_CORETYPE: 'Haswell' } });
    assert.equal(userSet.command?.env?.OPENBLAS_CORETYPE, 'Haswell');
  });

  test('real library fits this CPU', (t) => {
    const env = { ...process.env };
    delete env.OPENBLAS_CORETYPE; // set by this process's own load when it fell back
    const child = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `import { loadNativeBlas, describeBlas, nativeBlas } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
const status = await loadNativeBlas();
// A product above SINGLE_THREAD_BELOW_OPERATIONS, so the reloaded library starts its threads before exit.
const n = 384;
const ones = new Float32Array(n * n).fill(1);
nativeBlas()?.sgemm(false, false, n, n, n, ones, n, ones, n, new Float32Array(n * n), n);
console.log(JSON.stringify({ status, line: describeBlas(status), env: process.env.OPENBLAS_CORETYPE ?? null }));`],
      { encoding: 'utf8', env, timeout: 60_000 },
    );
    assert.equal(child.signal, null, String(child.stderr));
    assert.equal(child.status, 0, String(child.stderr));
    const { status, line, env: childCore } = JSON.parse(String(child.stdout));
    if (status.state !== 'loaded') {
      if (REQUIRED) assert.fail(`OpenBLAS did not load in a child process: ${status.reason}`);
      return t.skip('OpenBLAS not loaded');
    }
    assert.equal(typeof status.core, 'string');
    assert.ok(line.includes(`, ${status.core} kernels`), line);
    if (status.coreChoice !== 'detected by OpenBLAS') assert.ok(line.endsWith(`); ${status.coreChoice}`), line);
    assert.equal(describeBlas(status), line);
    const flags = readCpuFlags();
    if (flags !== null && chooseOpenBlasCore(flags) !== null) {
      assert.notEqual(status.core, FALLBACK_OPENBLAS_CORE, status.coreChoice);
      if (childCore !== null) assert.equal(status.core, childCore);
    }
  });

  test('real library ignores an unknown core name', (t) => {
    const child = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `import { loadNativeBlas } from ${JSON.stringify(NATIVE_BLAS_MODULE)};
console.log(JSON.stringify(await loadNativeBlas()));`],
      { encoding: 'utf8', env: { ...process.env, OPENBLAS_CORETYPE: 'Foo' }, timeout: 60_000 },
    );
    assert.equal(child.status, 0, String(child.stderr));
    const status = JSON.parse(String(child.stdout));
    if (status.state !== 'loaded') {
      if (REQUIRED) assert.fail(`OpenBLAS did not load in a child process: ${status.reason}`);
      return t.skip('OpenBLAS not loaded');
    }
    assert.notEqual(status.core, undefined, 'openblas_get_corename is missing');
    assert.match(status.coreChoice, /^OPENBLAS_CORETYPE=Foo from the environment was ignored, and OpenBLAS chose \w+ kernels\./);
    assert.ok(describeBlas(status).endsWith(`; ${status.coreChoice}`), describeBlas(status));
  });
});
