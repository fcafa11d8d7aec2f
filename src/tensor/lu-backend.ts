/**
 * Triangular solves and inverses from an LU factorisation, computed with tensors on the
 * current tfjs backend.
 *
 * The recursions match those of `lu.ts` (split in halves down to `blockSize` rows), but the
 * matrices stay on the backend: only the factorisation (once) and the inverses of the small
 * diagonal blocks (computed in float64 JavaScript) are uploaded, and sub-blocks are taken with
 * `tf.slice` and joined with `tf.concat`. That avoids moving every intermediate product between
 * the backend and JavaScript. Products are plain untransposed `tf.matMul` calls (float32).
 */
import * as tf from '@tensorflow/tfjs-core';

import {
  checkNonsingular,
  invertUnitLowerSmall,
  invertUpperSmall,
  permutationFromPivots,
  splitSize,
  type FactorSettings,
  type LuFactorization,
} from './lu.js';
import { packBlock, subBlock, wholeMatrix, type Block } from './matrix-products.js';

/**
 * Holds one factorisation on the backend and solves with it. `dispose()` frees the uploaded
 * factors and the cached inverses of diagonal blocks.
 */
export class BackendLuSolver {
  /** Uploaded tensors, each made once: off-diagonal blocks of L and U, inverses of diagonal blocks. */
  private readonly uploads = new Map<string, tf.Tensor2D>();

  constructor(
    private readonly factorization: LuFactorization,
    private readonly settings: FactorSettings,
  ) {}

  /**
   * Returns A⁻¹ = U⁻¹·L⁻¹·P as a new tensor. About 3n³/2 operations on the backend
   * (n³/2 for L⁻¹, n³ for the solve with U). Throws when A is singular.
   */
  inverse(): tf.Tensor2D {
    const { n } = this.factorization;
    checkNonsingular(this.factorization, 'inverse');
    const permutation = permutationFromPivots(this.factorization.pivots);
    // Column i of U⁻¹·L⁻¹ is column permutation[i] of A⁻¹, so A⁻¹ gathers columns by the inverse permutation.
    const inversePermutation = new Int32Array(n);
    for (let i = 0; i < n; i++) inversePermutation[permutation[i]] = i;
    return tf.tidy(() => {
      const product = this.solveUpper(0, n, this.invertUnitLower(0, n));
      return tf.gather(product, tf.tensor1d(inversePermutation, 'int32'), 1);
    });
  }

  /** Returns X = A⁻¹·B for B of shape [n, c] as a new tensor. 2n²c operations. Throws when A is singular. */
  solve(b: tf.Tensor2D): tf.Tensor2D {
    const { n } = this.factorization;
    checkNonsingular(this.factorization, 'solve');
    const permutation = permutationFromPivots(this.factorization.pivots);
    return tf.tidy(() => {
      // L·U·X = P·B: row i of P·B is row permutation[i] of B.
      const permuted = tf.gather(b, tf.tensor1d(permutation, 'int32'), 0);
      return this.solveUpper(0, n, this.solveUnitLower(0, n, permuted));
    });
  }

  dispose(): void {
    for (const tensor of this.uploads.values()) tensor.dispose();
    this.uploads.clear();
  }

  /** Returns the inverse of the unit lower triangle of the diagonal block at (offset, offset), size×size. */
  private invertUnitLower(offset: number, size: number): tf.Tensor2D {
    if (size <= this.settings.blockSize) {
      return tf.clone(this.lowerBlockInverse(offset, size));
    }
    const first = splitSize(size, this.settings.blockSize);
    const second = size - first;
    return tf.tidy(() => {
      // [L11 0; L21 L22]⁻¹ = [L11⁻¹ 0; −L22⁻¹·L21·L11⁻¹ L22⁻¹].
      const x11 = this.invertUnitLower(offset, first);
      const l21 = this.offDiagonalBlock(offset + first, offset, second, first);
      const x21 = tf.neg(this.solveUnitLower(offset + first, second, tf.matMul(l21, x11))) as tf.Tensor2D;
      const x22 = this.invertUnitLower(offset + first, second);
      const top = tf.concat([x11, tf.zeros([first, second])], 1);
      return tf.concat([top, tf.concat([x21, x22], 1)], 0) as tf.Tensor2D;
    });
  }

  /** Returns L⁻¹·B for the unit lower triangle of the diagonal block at (offset, offset), size×size. */
  private solveUnitLower(offset: number, size: number, b: tf.Tensor2D): tf.Tensor2D {
    if (size <= this.settings.blockSize) {
      return tf.matMul(this.lowerBlockInverse(offset, size), b);
    }
    const first = splitSize(size, this.settings.blockSize);
    const second = size - first;
    return tf.tidy(() => {
      const x1 = this.solveUnitLower(offset, first, rowRange(b, 0, first));
      const l21 = this.offDiagonalBlock(offset + first, offset, second, first);
      const rest = tf.sub(rowRange(b, first, second), tf.matMul(l21, x1)) as tf.Tensor2D;
      const x2 = this.solveUnitLower(offset + first, second, rest);
      return tf.concat([x1, x2], 0);
    });
  }

  /** Returns U⁻¹·B for the upper triangle of the diagonal block at (offset, offset), size×size. */
  private solveUpper(offset: number, size: number, b: tf.Tensor2D): tf.Tensor2D {
    if (size <= this.settings.blockSize) {
      return tf.matMul(this.upperBlockInverse(offset, size), b);
    }
    const first = splitSize(size, this.settings.blockSize);
    const second = size - first;
    return tf.tidy(() => {
      const x2 = this.solveUpper(offset + first, second, rowRange(b, first, second));
      const u12 = this.offDiagonalBlock(offset, offset + first, first, second);
      const rest = tf.sub(rowRange(b, 0, first), tf.matMul(u12, x2)) as tf.Tensor2D;
      const x1 = this.solveUpper(offset, first, rest);
      return tf.concat([x1, x2], 0);
    });
  }

  private lowerBlockInverse(offset: number, size: number): tf.Tensor2D {
    return this.upload(`lower-inverse ${offset} ${size}`, () => invertUnitLowerSmall(this.block(offset, offset, size, size)), size, size);
  }

  private upperBlockInverse(offset: number, size: number): tf.Tensor2D {
    return this.upload(`upper-inverse ${offset} ${size}`, () => invertUpperSmall(this.block(offset, offset, size, size)), size, size);
  }

  /** Returns the block of the factorisation at (row, col); it must not touch the diagonal. */
  private offDiagonalBlock(row: number, col: number, rows: number, cols: number): tf.Tensor2D {
    return this.upload(
      `block ${row} ${col} ${rows} ${cols}`,
      () => {
        const packed = new Float64Array(rows * cols);
        packBlock(this.block(row, col, rows, cols), 'general', packed);
        return packed;
      },
      rows,
      cols,
    );
  }

  private block(row: number, col: number, rows: number, cols: number): Block {
    const { n, lu } = this.factorization;
    return subBlock(wholeMatrix(lu, n, n), row, col, rows, cols);
  }

  /** Computes a matrix in JavaScript and uploads it, once per key; the tensor lives until `dispose`. */
  private upload(key: string, compute: () => Float64Array, rows: number, cols: number): tf.Tensor2D {
    let tensor = this.uploads.get(key);
    if (tensor === undefined) {
      tensor = tf.keep(tf.tensor2d(new Float32Array(compute()), [rows, cols]));
      this.uploads.set(key, tensor);
    }
    return tensor;
  }
}

/**
 * Returns rows [start, start + count) of a 2-D tensor. Uses `tf.gather`, because the wasm
 * backend's `tf.slice` (tfjs 4.22) first copies the whole input tensor out of wasm memory.
 */
function rowRange(x: tf.Tensor2D, start: number, count: number): tf.Tensor2D {
  return tf.tidy(() => tf.gather(x, tf.range(start, start + count, 1, 'int32'), 0));
}
