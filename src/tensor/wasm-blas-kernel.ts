/**
 * Replaces the wasm backend's BatchMatMul kernel with one that calls OpenBLAS's sgemm on the
 * tensors' memory inside the WebAssembly heap, without copying them.
 *
 * Products smaller than `MINIMUM_MULTIPLY_ADDS`, non-float32 operands and batch shapes other
 * than equal or single batches go to the original XNNPACK kernel, so every result is the same
 * product up to float32 rounding. The transpose flags cost nothing here, so `tf.matMul(a, b,
 * true, false)` runs as fast as the plain product.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { NativeBlas } from './native-blas.js';
import { offsetOf, replaceWasmKernel, restoreWasmKernel, type WasmBackendInternals } from './wasm-memory.js';

/**
 * Smallest product, in multiply-adds, sent to OpenBLAS. An estimate: below it the call overhead
 * is a larger share, and XNNPACK needs no call across the wasm boundary. At 100×784×784
 * OpenBLAS was 2–3 times faster on one core of the project machine.
 */
const MINIMUM_MULTIPLY_ADDS = 32 * 32 * 32;

let originalKernel: tf.KernelConfig | null = null;
/** The library behind the installed kernel, for `sumOfProducts`. */
let blasForKernel: NativeBlas | null = null;
/** Floating-point operations of the products `sumOfProducts` ran, which `tf.profile` does not list. */
let sumOfProductsOperations = 0;

/** Returns the floating-point operations (2mkn per product) of every `sumOfProducts` call so far. */
export function sumOfProductsOperationCount(): number {
  return sumOfProductsOperations;
}

/** Returns whether BatchMatMul on wasm currently runs through OpenBLAS. */
export function wasmBlasKernelInstalled(): boolean {
  return originalKernel !== null;
}

/** Routes the wasm backend's BatchMatMul through `blas` until `uninstallWasmBlasKernel`. */
export function installWasmBlasKernel(blas: NativeBlas): void {
  if (originalKernel !== null) return;
  blasForKernel = blas;
  originalKernel = replaceWasmKernel(
    tf.BatchMatMul,
    (original) => (args) => blasBatchMatMul(blas, args) ?? original.kernelFunc(args),
    'installWasmBlasKernel',
  );
}

/** Restores the XNNPACK kernel; tests use it to compare both paths. */
export function uninstallWasmBlasKernel(): void {
  if (originalKernel === null) return;
  restoreWasmKernel(originalKernel);
  originalKernel = null;
  blasForKernel = null;
}

/**
 * Computes the product with sgemm, one call per batch entry, or returns null when the
 * original kernel should take it. Cost: 2·batch·m·k·n operations on OpenBLAS's threads.
 */
function blasBatchMatMul(blas: NativeBlas, args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo | null {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const transposeA = Boolean(args.attrs?.transposeA);
  const transposeB = Boolean(args.attrs?.transposeB);
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const rankA = a.shape.length;
  const rankB = b.shape.length;
  if (rankA < 2 || rankB < 2) return null;

  const [rowsA, colsA] = a.shape.slice(-2);
  const [rowsB, colsB] = b.shape.slice(-2);
  const m = transposeA ? colsA : rowsA;
  const k = transposeA ? rowsA : colsA;
  const n = transposeB ? rowsB : colsB;
  if ((transposeB ? colsB : rowsB) !== k) return null;
  if (m * n * k < MINIMUM_MULTIPLY_ADDS) return null;

  const batchShapeA = a.shape.slice(0, -2);
  const batchShapeB = b.shape.slice(0, -2);
  const batchA = batchShapeA.reduce((p, d) => p * d, 1);
  const batchB = batchShapeB.reduce((p, d) => p * d, 1);
  let batchShape: number[];
  if (batchA === batchB && sameShape(batchShapeA, batchShapeB)) batchShape = batchShapeA;
  else if (batchB === 1 && batchShapeB.every((d) => d === 1) && batchShapeA.length >= batchShapeB.length) batchShape = batchShapeA;
  else if (batchA === 1 && batchShapeA.every((d) => d === 1) && batchShapeB.length >= batchShapeA.length) batchShape = batchShapeB;
  else return null;
  const batch = Math.max(batchA, batchB);

  const backend = args.backend as WasmBackendInternals;
  const out = backend.makeOutput([...batchShape, m, n], 'float32');
  const offsetA = offsetOf(backend, a, 'BatchMatMul');
  const offsetB = offsetOf(backend, b, 'BatchMatMul');
  const offsetC = offsetOf(backend, out, 'BatchMatMul');
  // The heap is read last: makeOutput, and fetching an input held by another backend, allocate and
  // may grow (and so replace) its buffer.
  const heap = backend.wasm.HEAPU8.buffer;
  const sizeA = rowsA * colsA;
  const sizeB = rowsB * colsB;
  for (let i = 0; i < batch; i++) {
    const viewA = new Float32Array(heap, offsetA + 4 * sizeA * (batchA === 1 ? 0 : i), sizeA);
    const viewB = new Float32Array(heap, offsetB + 4 * sizeB * (batchB === 1 ? 0 : i), sizeB);
    const viewC = new Float32Array(heap, offsetC + 4 * m * n * i, m * n);
    blas.sgemm(transposeA, transposeB, m, n, k, viewA, colsA, viewB, colsB, viewC, n);
  }
  return out;
}

function sameShape(left: number[], right: number[]): boolean {
  return left.length === right.length && left.every((d, i) => d === right[i]);
}

/**
 * Returns Σ_i op(a_i)·op(b_i) for 2-D float32 tensors whose products have one shape, as one
 * tensor written by OpenBLAS, the first product with β = 0 and each further one added with β = 1.
 * That needs neither the sum's additions nor stacking the operands into one product. Returns null
 * when OpenBLAS does not compute the wasm backend's products or an operand is not float32.
 * Not differentiable. 2mkn operations per term.
 */
export function sumOfProducts(terms: ReadonlyArray<{ a: tf.Tensor2D; b: tf.Tensor2D; transposeA: boolean; transposeB: boolean }>): tf.Tensor2D | null {
  if (blasForKernel === null || tf.getBackend() !== 'wasm' || terms.length === 0) return null;
  if (terms.some(({ a, b }) => a.dtype !== 'float32' || b.dtype !== 'float32')) return null;
  const wrongRank = terms.find(({ a, b }) => a.rank !== 2 || b.rank !== 2);
  if (wrongRank !== undefined) {
    throw new Error(`sumOfProducts: operands must be 2-D, received shapes [${wrongRank.a.shape}] and [${wrongRank.b.shape}]; reshape them first`);
  }
  const sizes = terms.map(({ a, b, transposeA, transposeB }) => {
    const [m, k] = transposeA ? [a.shape[1], a.shape[0]] : a.shape;
    const [innerB, n] = transposeB ? [b.shape[1], b.shape[0]] : b.shape;
    if (innerB !== k) {
      throw new Error(`sumOfProducts: inner sizes differ, ${k} and ${innerB} for operands [${a.shape}] and [${b.shape}]; pass operands whose products are defined`);
    }
    return { m, n, k };
  });
  const [{ m, n }] = sizes;
  if (sizes.some((size) => size.m !== m || size.n !== n)) {
    throw new Error(`sumOfProducts: products of shapes ${sizes.map((size) => `[${size.m}, ${size.n}]`).join(', ')} cannot be added; pass terms of one shape`);
  }
  const backend = tf.backend() as unknown as WasmBackendInternals;
  const blas = blasForKernel;
  // Offsets first (looking up an operand held by another backend moves it here), then the output,
  // then the heap: allocating can grow, and so replace, its buffer.
  const offsets = terms.map(({ a, b }) => [offsetOf(backend, a, 'sumOfProducts'), offsetOf(backend, b, 'sumOfProducts')]);
  const out = backend.makeOutput([m, n], 'float32');
  const heap = backend.wasm.HEAPU8.buffer;
  const c = new Float32Array(heap, offsetOf(backend, out, 'sumOfProducts'), m * n);
  terms.forEach(({ a, b, transposeA, transposeB }, i) => {
    const [offsetA, offsetB] = offsets[i]!;
    const viewA = new Float32Array(heap, offsetA, a.size);
    const viewB = new Float32Array(heap, offsetB, b.size);
    blas.sgemm(transposeA, transposeB, m, n, sizes[i]!.k, viewA, a.shape[1], viewB, b.shape[1], c, n, i === 0 ? 0 : 1);
    sumOfProductsOperations += 2 * m * n * sizes[i]!.k;
  });
  return tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor2D;
}