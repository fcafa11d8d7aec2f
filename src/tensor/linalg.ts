/**
 * Log-determinant, inverse and linear solves of dense square matrices, for tfjs tensors.
 *
 * tfjs 4.22 has no determinant, LU, inverse or solve. These functions copy the matrix into a
 * float64 JavaScript array and factor it with the recursive LU of `lu.ts`, whose block
 * products run on the current backend in float32 (plain `tf.matMul`) and whose narrow panels
 * run in float64 JavaScript. Inverses and solves then run as blocked tensor operations on the
 * backend (`lu-backend.ts`). On the cpu backend, whose `tf.matMul` is slower than JavaScript,
 * everything runs in float64 JavaScript instead.
 *
 * The ML objective needs log|det W| and its gradient W⁻ᵀ for every dense D×D weight; the
 * usual count is 8D³/3 operations per matrix and step (LU 2D³/3, inverse 2D³), and these
 * functions execute about 7D³/3. By that count, log|det W| with its gradient ran at 14–17
 * GFLOP/s at D = 784 (75–95 ms; wasm matMul 29–31 GFLOP/s) and 23 GFLOP/s at D = 3072 (3.4 s;
 * matMul 17 GFLOP/s), from the best CPU times of `node dist/src/cli/bench-linalg.js` on one
 * core of the project's 2-core machine while other jobs shared it. Score-matching objectives
 * never call these functions.
 *
 * When OpenBLAS is loaded (`native-blas.ts`) and the products are not forced elsewhere,
 * `logAbsDet`, `inverse` and `solve` factor and invert in float32 on it instead, as PyTorch
 * does for float32 matrices: the recursive LU of `recursive-lu.ts` (LAPACK's sgetrf with
 * EBFLOW_LU=lapack), then its inverse (`invertLu` there, LAPACK's sgetri with EBFLOW_LU=lapack)
 * for inverses and LAPACK's sgetrs for solves. The usual count is
 * 2n³/3 operations for the factorisation and 4n³/3 for the inverse, 2n³ in all for log|det W|
 * with W⁻ᵀ. `recursive-lu.ts` gives the factorisation's times against sgetrf. `sumLogAbsDet`
 * computes the log-dets of several matrices in one call, on two threads when it can.
 */
import * as tf from '@tensorflow/tfjs-core';

import { BackendLuSolver } from './lu-backend.js';
import { inverseFromLu, luFactorInPlace, solveFromLu, type FactorSettings, type LuFactorization } from './lu.js';
import { wasmFloat32View, wasmTensorFrom } from './wasm-memory.js';
import { nativeBlas, type NativeBlas } from './native-blas.js';
import { wasmBlasKernelInstalled } from './wasm-blas-kernel.js';
import { BACKEND_ENGINE, FLOAT64_ENGINE, singleEnginePolicy, sizeBasedPolicy } from './matrix-products.js';
import './register-gradients.js';
import { runLapack, type LapackItem } from './threads/lapack-threads.js';

export type { LuFactorization } from './lu.js';

/** The placement of the block products of a factorisation. */
export type ProductPlacement = 'auto' | 'backend' | 'float64';

export interface LinalgOptions {
  /**
   * Rows of the smallest blocks: triangular blocks solved without recursion and the block
   * rows of the inverse. LU panels stop splitting at min(blockSize, 8) columns. Default 64,
   * or 128 for n ≥ 2048. Small values exercise the blocked paths in tests.
   */
  blockSize?: number;
  /**
   * 'backend' runs every block product with `tf.matMul` on the current backend (float32) and
   * the solves as tensor operations. 'float64' runs everything in JavaScript. 'auto' (the
   * default) means 'float64' on the cpu backend; elsewhere it sends products of at least 32³
   * multiply-adds to the backend.
   */
  products?: ProductPlacement;
}

// Block rows of 64 suit D = 784; from D = 2048 on, 128 halves the number of block steps of the
// inverse (about 8% faster at D = 3072 on the project machine).
const DEFAULT_BLOCK_SIZE = 64;
const LARGE_MATRIX_BLOCK_SIZE = 128;
const LARGE_MATRIX_SIZE = 2048;
const AUTO_MINIMUM_WORK = 32 * 32 * 32;
const AUTO_MINIMUM_DIMENSION = 8;

interface ResolvedSettings extends FactorSettings {
  /** True when the solves run as tensor operations on the backend, false when in float64 JavaScript. */
  solveOnBackend: boolean;
}

function resolveSettings(caller: string, n: number, options: LinalgOptions = {}): ResolvedSettings {
  const blockSize = options.blockSize ?? (n >= LARGE_MATRIX_SIZE ? LARGE_MATRIX_BLOCK_SIZE : DEFAULT_BLOCK_SIZE);
  if (!Number.isInteger(blockSize) || blockSize < 2) {
    throw new RangeError(`${caller}: options.blockSize must be an integer ≥ 2, received ${blockSize}.`);
  }
  const products = options.products ?? 'auto';
  switch (products) {
    case 'float64':
      return { blockSize, policy: singleEnginePolicy(FLOAT64_ENGINE), solveOnBackend: false };
    case 'backend':
      return { blockSize, policy: singleEnginePolicy(BACKEND_ENGINE), solveOnBackend: true };
    case 'auto':
      // The cpu backend multiplies at about 0.5 GFLOP/s, float64 JavaScript at about 2.4.
      if (tf.getBackend() === 'cpu') {
        return { blockSize, policy: singleEnginePolicy(FLOAT64_ENGINE), solveOnBackend: false };
      }
      return { blockSize, policy: sizeBasedPolicy(AUTO_MINIMUM_WORK, AUTO_MINIMUM_DIMENSION), solveOnBackend: true };
    default:
      throw new RangeError(`${caller}: options.products must be 'auto', 'backend' or 'float64', received '${String(products)}'.`);
  }
}

/** Returns A⁻ᵀ from the factorisation of A as a float32 tensor, on the backend or in JavaScript as `settings` selects. */
function inverseTransposedTensor(factorization: LuFactorization, settings: ResolvedSettings): tf.Tensor2D {
  const n = factorization.n;
  if (!settings.solveOnBackend) {
    return tf.tensor2d(new Float32Array(inverseFromLu(factorization, settings, true)), [n, n]);
  }
  const solver = new BackendLuSolver(factorization, settings.blockSize);
  try {
    return solver.inverseTransposed();
  } finally {
    solver.dispose();
  }
}

/** Factorisations run by `factorInJavaScript` since the process started. */
let javascriptFactorizations = 0;

/**
 * Returns how many factorisations ran in float64 JavaScript (the path without OpenBLAS). Their
 * panel work runs outside tfjs kernels and LAPACK, so operation counts (`countStepOperations`)
 * cannot see all of it.
 */
export function javascriptFactorizationCount(): number {
  return javascriptFactorizations;
}

/** Runs `luFactorInPlace` and adds one to `javascriptFactorizationCount`. */
function factorInJavaScript(values: Float64Array, n: number, settings: ResolvedSettings): LuFactorization {
  javascriptFactorizations++;
  return luFactorInPlace(values, n, settings);
}

/** Copies a square matrix tensor, or its transpose, into a new Float64Array. */
function readMatrix(w: tf.Tensor2D, transposed: boolean): Float64Array {
  if (!transposed) return Float64Array.from(w.dataSync());
  const transpose = tf.transpose(w);
  const values = Float64Array.from(transpose.dataSync());
  transpose.dispose();
  return values;
}

function squareSize(caller: string, w: tf.Tensor): number {
  if (w.rank !== 2 || w.shape[0] !== w.shape[1]) {
    throw new Error(`${caller}: expected a square 2-D matrix, received shape [${w.shape}].`);
  }
  return w.shape[0];
}

/**
 * Factors the n×n row-major matrix `values` as P·A = L·U with partial pivoting, leaving
 * `values` unchanged. 2n³/3 operations; see `LinalgOptions` for where they run.
 */
export function luFactor(values: ArrayLike<number>, n: number, options?: LinalgOptions): LuFactorization {
  if (!Number.isInteger(n) || n < 0 || values.length !== n * n) {
    throw new Error(`luFactor: expected n×n = ${n}×${n} values, received ${values.length}.`);
  }
  return luFactorInPlace(Float64Array.from(values), n, resolveSettings('luFactor', n, options));
}

/**
 * Returns log|det A| in nats for the n×n row-major matrix `values`, computed entirely in
 * float64 (LU with partial pivoting, no float32 step). −Infinity for a singular matrix.
 * 2n³/3 operations at about 2 GFLOP/s once the JIT has warmed up (1.3 s at n = 1536 on the
 * project machine, so about 10 s at n = 3072).
 */
export function logAbsDetFloat64(values: Float64Array | Float32Array, n: number): number {
  if (!Number.isInteger(n) || n < 0 || values.length !== n * n) {
    throw new Error(`logAbsDetFloat64: expected n×n = ${n}×${n} values, received ${values.length}.`);
  }
  return luFactorInPlace(Float64Array.from(values), n, { blockSize: DEFAULT_BLOCK_SIZE, policy: singleEnginePolicy(FLOAT64_ENGINE) }).logAbsDet;
}

/**
 * Returns log|det W| in nats as a scalar, differentiable in W with gradient W⁻ᵀ.
 *
 * The forward pass factors W (2n³/3 operations); the gradient, computed only when requested,
 * reuses that factorisation for W⁻ᵀ (about 5n³/3 more). −Infinity for a singular W, whose
 * gradient then throws. The value's relative error was below 1e-6 for Gaussian W up to
 * n = 3072 (float32 block products), the gradient's below 2e-5 at n = 300 (Frobenius norm).
 *
 * NOTE: differentiable once. The gradient W⁻ᵀ is built from the factorisation, not from tfjs
 * ops, so a second derivative in W would come out as zero. No objective needs one.
 */
export function logAbsDet(w: tf.Tensor2D, options?: LinalgOptions): tf.Scalar {
  const n = squareSize('logAbsDet', w);
  const lapack = nativeLapack(options);
  if (lapack !== null) return nativeLogAbsDet(lapack, w, n);
  const settings = resolveSettings('logAbsDet', n, options);
  const op = tf.customGrad(((matrix: tf.Tensor2D) => {
    const factorization = factorInJavaScript(readMatrix(matrix, false), n, settings);
    return {
      value: tf.scalar(factorization.logAbsDet),
      gradFunc: (dy: tf.Scalar) => tf.mul(dy, inverseTransposedTensor(factorization, settings)),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (matrix: tf.Tensor2D) => tf.Scalar;
  return op(w);
}

/**
 * Returns W⁻¹ (float32). About 7n³/3 operations: the LU of Wᵀ, then (Wᵀ)⁻ᵀ = W⁻¹.
 * Not differentiable. Throws when W is singular.
 */
export function inverse(w: tf.Tensor2D, options?: LinalgOptions): tf.Tensor2D {
  const n = squareSize('inverse', w);
  const lapack = nativeLapack(options);
  if (lapack !== null) {
    // The row-major values of W, read column-major, are Wᵀ, whose inverse read back row-major is W⁻¹.
    // Values of another dtype are converted, since OpenBLAS would read an int32 array's bits as floats.
    const values = w.dtype === 'float32' ? (w.dataSync() as Float32Array).slice() : Float32Array.from(w.dataSync());
    const pivots = new Int32Array(n);
    const info = lapack.factorLu(n, values, pivots);
    if (info > 0) throw singularMatrixError('inverse', n, info);
    lapack.invertLu(n, values, pivots);
    return tf.tensor2d(values, [n, n]);
  }
  const settings = resolveSettings('inverse', n, options);
  // W⁻¹ = ((Wᵀ)⁻¹)ᵀ, the transposed inverse of Wᵀ.
  const factorization = factorInJavaScript(readMatrix(w, true), n, settings);
  return inverseTransposedTensor(factorization, settings);
}

/**
 * Returns X = W⁻¹·B for W of shape [n, n] and B of shape [n, c] (float32). 2n³/3 + 2n²c
 * operations. Not differentiable; used for sampling. Throws when W is singular.
 */
export function solve(w: tf.Tensor2D, b: tf.Tensor2D, options?: LinalgOptions): tf.Tensor2D {
  const n = squareSize('solve', w);
  if (b.rank !== 2 || b.shape[0] !== n) {
    throw new Error(`solve: the right-hand side must have shape [${n}, c] to match W [${n}, ${n}], received [${b.shape}].`);
  }
  const columns = b.shape[1];
  const lapack = nativeLapack(options);
  if (lapack !== null) return nativeSolve(lapack, w, b, n, columns);
  const settings = resolveSettings('solve', n, options);
  const factorization = factorInJavaScript(readMatrix(w, false), n, settings);
  if (!settings.solveOnBackend) {
    const x = solveFromLu(factorization, b.dataSync(), columns, settings);
    return tf.tensor2d(new Float32Array(x), [n, columns]);
  }
  const solver = new BackendLuSolver(factorization, settings.blockSize);
  try {
    return solver.solve(b);
  } finally {
    solver.dispose();
  }
}

/**
 * Returns OpenBLAS when it computes the wasm backend's products (see `wasm-blas-kernel.ts`), the
 * backend is wasm, and the caller left the product placement on 'auto' and set no block size
 * (tests set one to exercise the blocked paths).
 */
function nativeLapack(options: LinalgOptions = {}): NativeBlas | null {
  if ((options.products ?? 'auto') !== 'auto' || options.blockSize !== undefined) return null;
  if (!wasmBlasKernelInstalled() || tf.getBackend() !== 'wasm') return null;
  return nativeBlas();
}

/**
 * Float32 scratch arrays of the LAPACK path, kept between calls by length. A fresh array of
 * 784² values costs page faults on first touch: a transposed copy into it took 0.27 ms (median,
 * 0.43–0.79 mean) against 0.08 ms into a reused one (project machine). At most
 * `SCRATCH_POOL_BYTES` stay kept; an array that is never given back is left to the collector.
 */
const scratchPool = new Map<number, Float32Array[]>();
/** The same for arrays in SharedArrayBuffers, which the LAPACK worker thread can read and write. */
const sharedScratchPool = new Map<number, Float32Array[]>();
let scratchPoolBytes = 0;
const SCRATCH_POOL_BYTES = 64 * 1024 * 1024;

/** Returns a pooled array of `length` floats (with old values) or a new one, in a SharedArrayBuffer when `shared`. */
function takeScratch(length: number, shared = false): Float32Array {
  const reused = (shared ? sharedScratchPool : scratchPool).get(length)?.pop();
  if (reused === undefined) return shared ? new Float32Array(new SharedArrayBuffer(4 * length)) : new Float32Array(length);
  scratchPoolBytes -= reused.byteLength;
  return reused;
}

/** Keeps `array` for a later `takeScratch`, unless the pool is full. */
function giveBackScratch(array: Float32Array): void {
  if (scratchPoolBytes + array.byteLength > SCRATCH_POOL_BYTES) return;
  const pool = array.buffer instanceof SharedArrayBuffer ? sharedScratchPool : scratchPool;
  let free = pool.get(array.length);
  if (free === undefined) {
    free = [];
    pool.set(array.length, free);
  }
  free.push(array);
  scratchPoolBytes += array.byteLength;
}

/**
 * log|det W| from the LU (`NativeBlas.factorLu`, float32, summed in float64), with gradient W⁻ᵀ
 * from the inverse of the same factorisation (`NativeBlas.invertLu`): `nativeSumLogAbsDet` with
 * one matrix. Factoring the column-major W (the transpose of its row-major values) leaves W⁻¹
 * column-major after the inverse, which read row-major is W⁻ᵀ, so neither pass transposes the
 * result. sgetri ran faster than sgetrs on the identity (19 against 25 ms at n = 784, one
 * OpenBLAS thread), and `invertLu` faster than sgetri (`recursive-lu.ts`).
 */
function nativeLogAbsDet(lapack: NativeBlas, w: tf.Tensor2D, n: number): tf.Scalar {
  return nativeSumLogAbsDet(lapack, [w], [n], 'logAbsDet');
}

/**
 * Returns Σᵢ log|det Wᵢ| in nats as a scalar, differentiable in every Wᵢ with gradient Wᵢ⁻ᵀ:
 * the log-normaliser of a flow with several dense layers or convolutions, computed in one call.
 *
 * The value equals the sum of `logAbsDet` over the matrices. With OpenBLAS on a threaded build,
 * the factorisations, and later the inverses of the gradient, run on this thread and a worker
 * thread at once (`threads/lapack-threads.ts`). For two matrices at n = 784 that took 9–23%
 * less time than one after the other (project machine, 2-vCPU Xeon, `bench-linalg`). Operations as for `logAbsDet`: 2n³/3 per matrix
 * forward, 4n³/3 more for its gradient. −Infinity when a matrix is singular, whose gradient
 * then throws. Differentiable once, like `logAbsDet`.
 */
export function sumLogAbsDet(matrices: readonly tf.Tensor2D[], options?: LinalgOptions): tf.Scalar {
  const sizes = matrices.map((w, index) => squareSize(`sumLogAbsDet (matrix ${index})`, w));
  const lapack = nativeLapack(options);
  if (lapack === null || matrices.length < 2) {
    return tf.tidy(() => (matrices.length === 0 ? tf.scalar(0) : (tf.addN(matrices.map((w) => logAbsDet(w, options))) as tf.Scalar)));
  }
  return nativeSumLogAbsDet(lapack, matrices, sizes, 'sumLogAbsDet');
}

/**
 * `sumLogAbsDet` through LAPACK, with the calls of all matrices handed to `runLapack` together.
 * The transpose of each matrix is copied straight out of the wasm heap (the only backend this
 * path runs on). The factors stay in shared scratch arrays until the gradient has copied the
 * inverses out of them. `caller` names the public function in error messages.
 */
function nativeSumLogAbsDet(lapack: NativeBlas, matrices: readonly tf.Tensor2D[], sizes: number[], caller: string): tf.Scalar {
  const op = tf.customGrad(((...inputs: tf.Tensor2D[]) => {
    const items: LapackItem[] = sizes.map((n, index) => {
      const matrix = takeScratch(n * n, true);
      lapack.transposeCopy(n, n, 1, wasmFloat32View(inputs[index]), matrix);
      return { n, matrix, pivots: new Int32Array(new SharedArrayBuffer(4 * n)) };
    });
    const infos = runLapack(lapack, 'factor', items);
    const singular = infos.some((info) => info > 0);
    let total = 0;
    for (const { n, matrix } of items) {
      for (let i = 0; i < n; i++) total += Math.log(Math.abs(matrix[i * n + i]));
    }
    let inverted = false;
    return {
      value: tf.scalar(singular ? -Infinity : total),
      gradFunc: (dy: tf.Scalar) => {
        // The scratch arrays are given back after the first run, so a second run must not touch them.
        if (inverted) throw new Error(`${caller}: the gradient of one log-determinant ran twice; compute the log-determinant again.`);
        inverted = true;
        const singularIndex = infos.findIndex((info) => info > 0);
        if (singularIndex >= 0) throw singularGradientError(caller, matrices.length, singularIndex, sizes[singularIndex]);
        const inverseInfos = runLapack(lapack, 'invert', items);
        const failed = inverseInfos.findIndex((info) => info > 0);
        if (failed >= 0) throw singularGradientError(caller, matrices.length, failed, sizes[failed]);
        const scale = (dy.dataSync() as Float32Array)[0];
        return items.map(({ n, matrix }) => {
          const gradient = wasmTensorFrom([n, n], (values) => {
            if (scale === 1) values.set(matrix);
            else lapack.scaledCopy(n * n, scale, matrix, values);
          });
          giveBackScratch(matrix);
          return gradient;
        });
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (...inputs: tf.Tensor2D[]) => tf.Scalar;
  return op(...matrices);
}

/** Returns the error for the gradient of a singular matrix, naming it by index when there are several. */
function singularGradientError(caller: string, count: number, index: number, n: number): Error {
  const matrix = count === 1 ? `the ${n}×${n} matrix W` : `matrix ${index}, of size ${n}×${n},`;
  return new Error(`${caller}: the gradient W⁻ᵀ does not exist because ${matrix} is singular.`);
}

/**
 * X = W⁻¹·B through LAPACK: sgetrf on the row-major values of W (which column-major are Wᵀ),
 * then sgetrs with the transpose flag, so (Wᵀ)ᵀ·X = B. B and X travel column-major, that is
 * transposed, between the wasm heap and scratch arrays. No other copy is made.
 */
function nativeSolve(lapack: NativeBlas, w: tf.Tensor2D, b: tf.Tensor2D, n: number, columns: number): tf.Tensor2D {
  const factor = takeScratch(n * n);
  const rightHandSides = takeScratch(n * columns);
  try {
    factor.set(wasmFloat32View(w));
    const pivots = new Int32Array(n);
    const info = lapack.factorLu(n, factor, pivots);
    if (info > 0) throw singularMatrixError('solve', n, info);
    const rows = b.dtype === 'float32' ? b : tf.cast(b, 'float32');
    lapack.transposeCopy(n, columns, 1, wasmFloat32View(rows), rightHandSides);
    if (rows !== b) rows.dispose();
    lapack.sgetrs(true, n, columns, factor, pivots, rightHandSides);
    return wasmTensorFrom([n, columns], (values) => lapack.transposeCopy(columns, n, 1, rightHandSides, values)) as tf.Tensor2D;
  } finally {
    giveBackScratch(factor);
    giveBackScratch(rightHandSides);
  }
}

/** Returns the error for a singular matrix, worded like `checkNonsingular`'s; `info` is LAPACK's 1-based zero pivot. */
function singularMatrixError(caller: string, n: number, info: number): Error {
  return new Error(
    `${caller}: the ${n}×${n} matrix is singular (pivot ${info - 1} is exactly 0), so it has no inverse; ` +
      'check the weights for a zero or duplicated row.',
  );
}
