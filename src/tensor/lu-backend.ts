/**
 * Inverse and linear solves from an LU factorisation, computed with tensors on the current
 * tfjs backend.
 *
 * With P·A = L·U, the functions here work with transposes: A⁻ᵀ = Pᵀ·L⁻ᵀ·U⁻ᵀ and
 * (A⁻¹·B)ᵀ = (P·B)ᵀ·L⁻ᵀ·U⁻ᵀ. The right factors are triangular, so each product is computed one
 * column block of `blockSize` columns at a time, as plain `tf.matMul` calls (float32) whose
 * right operand is a thin block of the factorisation. That orientation matters on the wasm
 * backend of tfjs 4.22, because XNNPACK repacks the right operand of every product whose right
 * tensor it has not multiplied before. The repacking costs about 2–7 ns per element (measured
 * on the 2-core project machine), more than the arithmetic if the wide, freshly computed
 * operand were on the right.
 *
 * Nothing is sliced on the backend either, because the wasm `tf.slice` copies its whole input
 * out of wasm memory first and `tf.gather` manages about 35 M elements/s. Instead the blocks of
 * L and U are packed and uploaded from the factorisation in JavaScript, with the float64
 * inverses of the diagonal blocks, and the partial results are joined with `tf.concat`.
 */
import * as tf from '@tensorflow/tfjs-core';

import { checkNonsingular, diagonalBlockKey, invertUnitLowerSmall, invertUpperSmall, permutationFromPivots, type LuFactorization } from './lu.js';
import type { Block } from './matrix-products.js';

/** Index range [start, end) of one block. */
interface BlockRange {
  start: number;
  end: number;
}

/**
 * Holds one factorisation P·A = L·U and solves with it on the backend. `dispose()` frees every
 * uploaded block.
 */
export class BackendLuSolver {
  private readonly ranges: BlockRange[] = [];
  private readonly uploads = new Map<string, tf.Tensor2D>();

  constructor(
    private readonly factorization: LuFactorization,
    blockSize: number,
  ) {
    for (let start = 0; start < factorization.n; start += blockSize) {
      this.ranges.push({ start, end: Math.min(factorization.n, start + blockSize) });
    }
  }

  /**
   * Returns A⁻ᵀ as a new float32 tensor (the gradient of log|det A|). About 5n³/3 operations
   * on the backend (2n³/3 for L⁻ᵀ, n³ for the product with U⁻ᵀ) and O(n²) in JavaScript for
   * the row permutation. Throws when A is singular.
   */
  inverseTransposed(): tf.Tensor2D {
    const { n } = this.factorization;
    checkNonsingular(this.factorization, 'inverse');

    // 1. V = L⁻ᵀ·U⁻ᵀ in column blocks, then A⁻ᵀ = Pᵀ·V.
    const lowerInverse = this.lowerInverseTransposedColumns();
    const columns = this.multiplyByUpperInverseTransposed(lowerInverse);
    tf.dispose(lowerInverse);

    // 2. Row r of V is row permutation[r] of A⁻ᵀ.
    const permutation = permutationFromPivots(this.factorization.pivots);
    const result = new Float32Array(n * n);
    for (let b = 0; b < this.ranges.length; b++) {
      const { start, end } = this.ranges[b];
      const width = end - start;
      const values = columns[b].dataSync();
      columns[b].dispose();
      for (let row = 0; row < n; row++) {
        result.set(values.subarray(row * width, (row + 1) * width), permutation[row] * n + start);
      }
    }
    return tf.tensor2d(result, [n, n]);
  }

  /**
   * Returns X = A⁻¹·B for B of shape [n, c] as a new float32 tensor. 2n²c operations on the
   * backend, after B is downloaded and permuted in JavaScript. Throws when A is singular.
   */
  solve(b: tf.Tensor2D): tf.Tensor2D {
    checkNonsingular(this.factorization, 'solve');
    const count = b.shape[1];
    const values = b.dataSync();
    const permutation = permutationFromPivots(this.factorization.pivots);

    // 1. Column blocks of (P·B)ᵀ: row i of P·B is row permutation[i] of B.
    const rightHandSide = this.ranges.map(({ start, end }) => {
      const block = new Float32Array(count * (end - start));
      for (let i = start; i < end; i++) {
        const source = permutation[i] * count;
        for (let j = 0; j < count; j++) block[j * (end - start) + (i - start)] = values[source + j];
      }
      return tf.tensor2d(block, [count, end - start]);
    });

    // 2. Xᵀ = (P·B)ᵀ·L⁻ᵀ·U⁻ᵀ.
    const lowerSolved = this.multiplyByLowerInverseTransposed(rightHandSide);
    tf.dispose(rightHandSide);
    const solved = this.multiplyByUpperInverseTransposed(lowerSolved);
    tf.dispose(lowerSolved);
    const x = tf.tidy(() => tf.transpose(tf.concat(solved, 1)) as tf.Tensor2D);
    tf.dispose(solved);
    return x;
  }

  dispose(): void {
    for (const tensor of this.uploads.values()) tensor.dispose();
    this.uploads.clear();
  }

  /**
   * Returns L⁻ᵀ in column blocks, each [n, width]. L⁻ᵀ is upper triangular, and column block i
   * stacks −(L⁻ᵀ)_<i,<i·(L_i,<i)ᵀ·L_ii⁻ᵀ, L_ii⁻ᵀ and zeros. So each step multiplies the leading
   * square found so far by a thin uploaded block. About 2n³/3 operations.
   */
  private lowerInverseTransposedColumns(): tf.Tensor2D[] {
    const { n } = this.factorization;
    const columns: tf.Tensor2D[] = [];
    // The leading square (L⁻ᵀ)_<i,<i, grown by one block row and column per step.
    let leading: tf.Tensor2D | null = null;
    for (let b = 0; b < this.ranges.length; b++) {
      const { start, end } = this.ranges[b];
      const width = end - start;
      const diagonal = this.lowerDiagonalInverseTransposed(b);
      const above: tf.Tensor2D | null =
        leading === null ? null : tf.tidy(() => tf.neg(tf.matMul(tf.matMul(leading as tf.Tensor2D, this.lowerRowTransposed(b)), diagonal)) as tf.Tensor2D);

      columns.push(
        tf.tidy(() => {
          const parts = [above, diagonal, end < n ? tf.zeros([n - end, width]) : null].filter((part): part is tf.Tensor2D => part !== null);
          return tf.concat(parts, 0) as tf.Tensor2D;
        }),
      );

      if (end < n) {
        const previous: tf.Tensor2D | null = leading;
        leading = tf.tidy((): tf.Tensor2D => {
          if (previous === null || above === null) return tf.clone(diagonal);
          const top: tf.Tensor2D = tf.concat([previous, above], 1);
          const bottom: tf.Tensor2D = tf.concat([tf.zeros([width, start]), diagonal], 1);
          return tf.concat([top, bottom], 0);
        });
        previous?.dispose();
      }
      above?.dispose();
    }
    (leading as tf.Tensor2D | null)?.dispose();
    return columns;
  }

  /**
   * Returns the column blocks of Y = C·L⁻ᵀ for C given in column blocks, from
   * Y_i = (C_i − Y_<i·(L_i,<i)ᵀ)·L_ii⁻ᵀ. 2·rows·n² operations.
   */
  private multiplyByLowerInverseTransposed(c: tf.Tensor2D[]): tf.Tensor2D[] {
    const solved: tf.Tensor2D[] = [];
    let prefix: tf.Tensor2D | null = null;
    for (let b = 0; b < this.ranges.length; b++) {
      const known: tf.Tensor2D | null = prefix;
      const y: tf.Tensor2D = tf.tidy(() => {
        const rest: tf.Tensor2D = known === null ? c[b] : tf.sub(c[b], tf.matMul(known, this.lowerRowTransposed(b)));
        return tf.matMul(rest, this.lowerDiagonalInverseTransposed(b));
      });
      solved.push(y);
      if (b + 1 < this.ranges.length) {
        prefix = known === null ? tf.clone(y) : (tf.concat([known, y], 1) as tf.Tensor2D);
        known?.dispose();
      }
    }
    (prefix as tf.Tensor2D | null)?.dispose();
    return solved;
  }

  /**
   * Returns the column blocks of Y = C·U⁻ᵀ for C given in column blocks, from the last block:
   * Y_i = (C_i − Y_>i·(U_i,>i)ᵀ)·U_ii⁻ᵀ. 2·rows·n² operations.
   */
  private multiplyByUpperInverseTransposed(c: tf.Tensor2D[]): tf.Tensor2D[] {
    const solved: tf.Tensor2D[] = new Array(this.ranges.length);
    let suffix: tf.Tensor2D | null = null;
    for (let b = this.ranges.length - 1; b >= 0; b--) {
      const known: tf.Tensor2D | null = suffix;
      const y: tf.Tensor2D = tf.tidy(() => {
        const rest: tf.Tensor2D = known === null ? c[b] : tf.sub(c[b], tf.matMul(known, this.upperRowTransposed(b)));
        return tf.matMul(rest, this.upperDiagonalInverseTransposed(b));
      });
      solved[b] = y;
      if (b > 0) {
        suffix = known === null ? tf.clone(y) : (tf.concat([y, known], 1) as tf.Tensor2D);
        known?.dispose();
      }
    }
    (suffix as tf.Tensor2D | null)?.dispose();
    return solved;
  }

  /** (L_i,<i)ᵀ: block row i of L left of the diagonal, transposed to [start, width]. */
  private lowerRowTransposed(b: number): tf.Tensor2D {
    const { start, end } = this.ranges[b];
    return this.upload(`lower ${b}`, () => this.packTransposed(start, 0, end - start, start), start, end - start);
  }

  /** (U_i,>i)ᵀ: block row i of U right of the diagonal, transposed to [n − end, width]. */
  private upperRowTransposed(b: number): tf.Tensor2D {
    const { start, end } = this.ranges[b];
    const n = this.factorization.n;
    return this.upload(`upper ${b}`, () => this.packTransposed(start, end, end - start, n - end), n - end, end - start);
  }

  private lowerDiagonalInverseTransposed(b: number): tf.Tensor2D {
    const { start, end } = this.ranges[b];
    const width = end - start;
    return this.upload(
      `lower inverse ${b}`,
      () => {
        const cached = this.factorization.lowerBlockInverses.get(diagonalBlockKey(start, width));
        return transposeSquare(cached ?? invertUnitLowerSmall(this.diagonalBlock(start, width)), width);
      },
      width,
      width,
    );
  }

  private upperDiagonalInverseTransposed(b: number): tf.Tensor2D {
    const { start, end } = this.ranges[b];
    const width = end - start;
    return this.upload(`upper inverse ${b}`, () => transposeSquare(invertUpperSmall(this.diagonalBlock(start, width)), width), width, width);
  }

  private diagonalBlock(start: number, width: number): Block {
    const { n, lu } = this.factorization;
    return { data: lu, offset: start * n + start, stride: n, rows: width, cols: width };
  }

  /** Returns the transpose of the rows×cols block of the factorisation at (row, col), row-major [cols, rows]. */
  private packTransposed(row: number, col: number, rows: number, cols: number): Float32Array {
    const { n, lu } = this.factorization;
    const packed = new Float32Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      const source = (row + i) * n + col;
      for (let j = 0; j < cols; j++) packed[j * rows + i] = lu[source + j];
    }
    return packed;
  }

  /** Computes a matrix in JavaScript and uploads it, once per key; the tensor lives until `dispose`. */
  private upload(key: string, compute: () => Float32Array, rows: number, cols: number): tf.Tensor2D {
    let tensor = this.uploads.get(key);
    if (tensor === undefined) {
      tensor = tf.keep(tf.tensor2d(compute(), [rows, cols]));
      this.uploads.set(key, tensor);
    }
    return tensor;
  }
}

/** Returns the transpose of a row-major size×size float64 matrix, as float32. */
function transposeSquare(values: Float64Array, size: number): Float32Array {
  const result = new Float32Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) result[j * size + i] = values[i * size + j];
  }
  return result;
}
