/**
 * Matrix blocks in float64 JavaScript arrays and the engines that multiply them.
 *
 * The dense factorisations in `lu.ts` keep their matrix in a row-major Float64Array and spend
 * almost all their work in products of blocks. A product runs either on the tfjs backend (in
 * float32: about 25 GFLOP/s on wasm for large blocks, measured on the 2-core project machine)
 * or in plain JavaScript (in float64: about 2.4 GFLOP/s). `ProductPolicy` picks one per
 * product, so small products skip the cost of moving data to the backend.
 */
import * as tf from '@tensorflow/tfjs-core';

/** A rectangular block of a row-major Float64Array; writes through it change the array. */
export interface Block {
  data: Float64Array;
  /** Index of the block's first element in `data`. */
  offset: number;
  /** Distance in `data` between vertically adjacent elements (the full matrix's column count). */
  stride: number;
  rows: number;
  cols: number;
}

/**
 * The part of a block's stored values that a product reads. 'unit-lower' reads the part
 * strictly below the diagonal, with ones on the diagonal and zeros above. 'upper' reads the
 * diagonal and above, with zeros below. Both let a factorisation keep L and U in one array.
 */
export type BlockStructure = 'general' | 'unit-lower' | 'upper';

/** Returns the block of the whole row-major matrix `data` with `cols` columns. */
export function wholeMatrix(data: Float64Array, rows: number, cols: number): Block {
  return { data, offset: 0, stride: cols, rows, cols };
}

/** Returns the sub-block starting at (row, col) of `block`, sharing its storage. */
export function subBlock(block: Block, row: number, col: number, rows: number, cols: number): Block {
  return { data: block.data, offset: block.offset + row * block.stride + col, stride: block.stride, rows, cols };
}

/**
 * Copies a block into the contiguous row-major array `packed` (rows·cols long, zero-filled),
 * applying `structure`. O(rows·cols).
 */
export function packBlock(block: Block, structure: BlockStructure, packed: Float32Array | Float64Array): void {
  const { data, offset, stride, rows, cols } = block;
  for (let i = 0; i < rows; i++) {
    const source = offset + i * stride;
    const target = i * cols;
    let first = 0;
    let end = cols;
    if (structure === 'unit-lower') {
      end = Math.min(i, cols);
      if (i < cols) packed[target + i] = 1;
    } else if (structure === 'upper') {
      first = i;
    }
    for (let j = first; j < end; j++) packed[target + j] = data[source + j];
  }
}

/**
 * Copies the transpose of a block into the contiguous row-major array `packed` (cols·rows long,
 * zero-filled), applying `structure` to the block before transposing. O(rows·cols).
 */
export function packBlockTransposed(block: Block, structure: BlockStructure, packed: Float32Array | Float64Array): void {
  const { data, offset, stride, rows, cols } = block;
  for (let i = 0; i < rows; i++) {
    const source = offset + i * stride;
    let first = 0;
    let end = cols;
    if (structure === 'unit-lower') {
      end = Math.min(i, cols);
      if (i < cols) packed[i * rows + i] = 1;
    } else if (structure === 'upper') {
      first = i;
    }
    for (let j = first; j < end; j++) packed[j * rows + i] = data[source + j];
  }
}

/** Multiplies contiguous row-major matrices: returns a·b for a [m×k] and b [k×n]. */
export type ProductEngine =
  | { readonly name: string; readonly precision: 'float32'; multiply(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array }
  | { readonly name: string; readonly precision: 'float64'; multiply(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array };

// Tile sizes of the JavaScript product: a [128 × 256] float64 tile of b is 256 KiB.
const JS_TILE_DEPTH = 128;
const JS_TILE_WIDTH = 256;

/**
 * Returns a·b in float64, computed in JavaScript with four rows of a per pass over a tile of b
 * (about 2.4 GFLOP/s on one core of the project machine). 2mkn operations.
 */
export function multiplyFloat64(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let p0 = 0; p0 < k; p0 += JS_TILE_DEPTH) {
    const p1 = Math.min(k, p0 + JS_TILE_DEPTH);
    for (let j0 = 0; j0 < n; j0 += JS_TILE_WIDTH) {
      const j1 = Math.min(n, j0 + JS_TILE_WIDTH);
      let i = 0;
      for (; i + 3 < m; i += 4) {
        const c0 = i * n;
        const c1 = c0 + n;
        const c2 = c1 + n;
        const c3 = c2 + n;
        const a0 = i * k;
        for (let p = p0; p < p1; p++) {
          const v0 = a[a0 + p];
          const v1 = a[a0 + k + p];
          const v2 = a[a0 + 2 * k + p];
          const v3 = a[a0 + 3 * k + p];
          const bRow = p * n;
          for (let j = j0; j < j1; j++) {
            const bv = b[bRow + j];
            c[c0 + j] += v0 * bv;
            c[c1 + j] += v1 * bv;
            c[c2 + j] += v2 * bv;
            c[c3 + j] += v3 * bv;
          }
        }
      }
      for (; i < m; i++) {
        const cRow = i * n;
        for (let p = p0; p < p1; p++) {
          const v = a[i * k + p];
          const bRow = p * n;
          for (let j = j0; j < j1; j++) c[cRow + j] += v * b[bRow + j];
        }
      }
    }
  }
  return c;
}

/** The float64 JavaScript engine. */
export const FLOAT64_ENGINE: ProductEngine = {
  name: 'float64',
  precision: 'float64',
  multiply: multiplyFloat64,
};

/**
 * The engine that multiplies with `tf.matMul` (untransposed) on the current tfjs backend, in
 * float32. Each call uploads both operands and downloads the product.
 */
export const BACKEND_ENGINE: ProductEngine = {
  name: 'backend',
  precision: 'float32',
  multiply(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
    const product = tf.tidy(() => tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])));
    const values = product.dataSync() as Float32Array;
    product.dispose();
    return values;
  },
};

/** The rule that picks the engine for each product. */
export interface ProductPolicy {
  /** Returns the engine for a product of [m×k] by [k×n]. */
  engineFor(m: number, k: number, n: number): ProductEngine;
}

/** Returns a policy that sends every product to one engine. */
export function singleEnginePolicy(engine: ProductEngine): ProductPolicy {
  return { engineFor: () => engine };
}

/**
 * Returns a policy that sends products of at least `minimumWork` multiply-adds (m·k·n), with
 * every dimension at least `minimumDimension`, to the backend, and the rest to float64
 * JavaScript.
 */
export function sizeBasedPolicy(minimumWork: number, minimumDimension: number): ProductPolicy {
  return {
    engineFor(m, k, n) {
      const large = m * k * n >= minimumWork && Math.min(m, k, n) >= minimumDimension;
      return large ? BACKEND_ENGINE : FLOAT64_ENGINE;
    },
  };
}

/**
 * Computes C ← β·C + α·op(A)·op(B), where op reads each operand with its structure and β is 0
 * or 1. Both operands are packed before C is written, so C may overlap them. 2·m·k·n
 * operations on the chosen engine plus O(mk + kn + mn) to pack and unpack.
 */
export function multiplyInto(
  policy: ProductPolicy,
  c: Block,
  alpha: number,
  a: Block,
  aStructure: BlockStructure,
  b: Block,
  bStructure: BlockStructure,
  beta: 0 | 1,
): void {
  const m = a.rows;
  const k = a.cols;
  const n = b.cols;
  if (b.rows !== k || c.rows !== m || c.cols !== n) {
    throw new Error(`multiplyInto: shapes differ: C [${c.rows}×${c.cols}] = A [${m}×${k}] · B [${b.rows}×${n}].`);
  }
  if (m === 0 || n === 0) return;
  const engine = policy.engineFor(m, k, n);
  if (k === 0) {
    if (beta === 0) accumulate(c, new Float64Array(m * n), 0, 0);
    return;
  }
  // Operands are packed in the engine's precision: float32 for the backend, float64 in JavaScript.
  if (engine.precision === 'float32') {
    if (n > m) {
      // XNNPACK repacks the right operand of each product (k·n elements); Cᵀ = Bᵀ·Aᵀ repacks k·m.
      const packedB = float32Scratch.take(0, n * k, bStructure !== 'general');
      const packedA = float32Scratch.take(1, k * m, aStructure !== 'general');
      packBlockTransposed(b, bStructure, packedB);
      packBlockTransposed(a, aStructure, packedA);
      accumulateTransposed(c, engine.multiply(packedB, packedA, n, k, m), alpha, beta);
      return;
    }
    const packedA = float32Scratch.take(0, m * k, aStructure !== 'general');
    const packedB = float32Scratch.take(1, k * n, bStructure !== 'general');
    packBlock(a, aStructure, packedA);
    packBlock(b, bStructure, packedB);
    accumulate(c, engine.multiply(packedA, packedB, m, k, n), alpha, beta);
  } else {
    const packedA = float64Scratch.take(0, m * k, aStructure !== 'general');
    const packedB = float64Scratch.take(1, k * n, bStructure !== 'general');
    packBlock(a, aStructure, packedA);
    packBlock(b, bStructure, packedB);
    accumulate(c, engine.multiply(packedA, packedB, m, k, n), alpha, beta);
  }
}

/**
 * Two reusable packing buffers per precision, so products do not allocate their operands.
 * Reuse is safe because every engine is done with its operands when `multiply` returns: the
 * backend engine disposes the tensors it made from them before returning.
 */
class ScratchBuffers<T extends Float32Array | Float64Array> {
  private readonly buffers: [T, T];

  constructor(private readonly create: (length: number) => T) {
    this.buffers = [create(0), create(0)];
  }

  /** Returns a view of `length` elements of buffer `slot`, zero-filled when `clear`. */
  take(slot: 0 | 1, length: number, clear: boolean): T {
    if (this.buffers[slot].length < length) {
      // Grow geometrically so a sequence of slightly larger products allocates rarely.
      this.buffers[slot] = this.create(Math.max(length, Math.floor(this.buffers[slot].length * 1.5)));
      return this.buffers[slot].subarray(0, length) as T;
    }
    const view = this.buffers[slot].subarray(0, length) as T;
    if (clear) view.fill(0);
    return view;
  }
}

const float32Scratch = new ScratchBuffers((length) => new Float32Array(length));
const float64Scratch = new ScratchBuffers((length) => new Float64Array(length));

/** C ← β·C + α·productᵀ, for a contiguous row-major product of the transposed shape of C. */
function accumulateTransposed(c: Block, product: Float32Array, alpha: number, beta: 0 | 1): void {
  const { data, offset, stride, rows, cols } = c;
  for (let i = 0; i < rows; i++) {
    const row = offset + i * stride;
    if (beta === 0) {
      for (let j = 0; j < cols; j++) data[row + j] = alpha * product[j * rows + i];
    } else {
      for (let j = 0; j < cols; j++) data[row + j] += alpha * product[j * rows + i];
    }
  }
}

/** C ← β·C + α·product, for a contiguous row-major product of C's shape. */
function accumulate(c: Block, product: Float32Array | Float64Array, alpha: number, beta: 0 | 1): void {
  const { data, offset, stride, rows, cols } = c;
  for (let i = 0; i < rows; i++) {
    const row = offset + i * stride;
    const source = i * cols;
    if (beta === 0) {
      for (let j = 0; j < cols; j++) data[row + j] = alpha * product[source + j];
    } else {
      for (let j = 0; j < cols; j++) data[row + j] += alpha * product[source + j];
    }
  }
}
