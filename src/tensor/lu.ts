/**
 * Recursive LU factorisation with partial pivoting, triangular solves and inversion, on
 * row-major Float64Array matrices.
 *
 * The algorithms split each matrix in halves until a block has at most `blockSize` rows
 * (Toledo's recursive LU, and the matching recursive triangular solve and inverse), so nearly all
 * arithmetic happens in a few large block products. `ProductPolicy` sends those products to the
 * tfjs backend (float32) or to float64 JavaScript. The small blocks at the bottom of the
 * recursion are solved in float64 JavaScript. Flop counts below are for n×n matrices.
 */
import { multiplyInto, subBlock, wholeMatrix, type Block, type ProductPolicy } from './matrix-products.js';

/** The recursion's parameters. */
export interface FactorSettings {
  /** Rows of the largest triangular block solved without recursion; LU panels stop splitting at min(blockSize, 8) columns. */
  blockSize: number;
  policy: ProductPolicy;
  /**
   * Cache of inverted diagonal blocks of the unit lower triangle that the solves read, keyed by
   * `diagonalBlockKey` of the block's offset in its array. Only valid while those blocks do not change.
   */
  lowerBlockInverses?: Map<string, Float64Array>;
}

/** P·A = L·U, with L unit lower triangular and U upper triangular. */
export interface LuFactorization {
  n: number;
  /** L strictly below the diagonal and U on and above it, row-major n×n. */
  lu: Float64Array;
  /** Row j was swapped with row pivots[j] (≥ j) at step j, in order (LAPACK's ipiv, 0-based). */
  pivots: Int32Array;
  /** Σ ln|u_jj| in nats; −Infinity when a pivot is zero. */
  logAbsDet: number;
  /** The sign of det A: −1, 1, or 0 when a pivot is zero. */
  sign: -1 | 0 | 1;
  /**
   * Inverses of diagonal blocks of L computed during the factorisation, keyed by
   * `diagonalBlockKey`; later solves reuse them.
   */
  lowerBlockInverses: Map<string, Float64Array>;
}

/** Returns the cache key of the size×size diagonal block of L starting at row and column `start`. */
export function diagonalBlockKey(start: number, size: number): string {
  return `${start}:${size}`;
}

// LU panels narrower than this are factored column by column; wider ones split in halves.
const MAX_PANEL_LEAF_WIDTH = 8;

/** Reused column-major copy of the panel being factored (grows to the largest panel seen). */
let panelScratch = new Float64Array(0);

/**
 * Factors the n×n row-major matrix `matrix` in place into P·A = L·U with partial pivoting.
 *
 * A zero pivot does not stop the factorisation: the column is left as it is, `sign` becomes 0
 * and `logAbsDet` −Infinity, as LAPACK's getrf does. 2n³/3 operations, almost all in products
 * of blocks with at least n/2 … blockSize rows.
 */
export function luFactorInPlace(matrix: Float64Array, n: number, settings: FactorSettings): LuFactorization {
  if (matrix.length !== n * n) {
    throw new Error(`luFactorInPlace: expected ${n}×${n} = ${n * n} values, received ${matrix.length}.`);
  }
  const pivots = new Int32Array(n);
  const lowerBlockInverses = new Map<string, Float64Array>();
  factorPanel(matrix, n, pivots, 0, n, { ...settings, lowerBlockInverses });

  // det A = det(P)⁻¹·Π u_jj, and det P = (−1)^(number of swaps).
  let logAbsDet = 0;
  let signChanges = 0;
  let singular = false;
  for (let j = 0; j < n; j++) {
    const pivot = matrix[j * n + j];
    if (pivots[j] !== j) signChanges++;
    if (pivot < 0) signChanges++;
    if (pivot === 0) singular = true;
    logAbsDet += Math.log(Math.abs(pivot));
  }
  let sign: 0 | 1 | -1 = signChanges % 2 === 0 ? 1 : -1;
  if (singular) sign = 0;
  return { n, lu: matrix, pivots, logAbsDet, sign, lowerBlockInverses };
}

/**
 * Factors the panel of columns [k, k + width) over rows [k, n), whose values are already
 * updated by every earlier column. Row swaps are applied to whole rows, which also applies them
 * to the factored columns on the left and the not-yet-updated columns on the right.
 *
 * Panels wider than blockSize split at multiples of blockSize, so the diagonal blocks that the
 * triangular solves invert lie on one grid and each is inverted once. A diagonal block of L is
 * final once its columns are factored, because later swaps only move rows below it.
 */
function factorPanel(a: Float64Array, n: number, pivots: Int32Array, k: number, width: number, settings: FactorSettings): void {
  const leafWidth = Math.min(settings.blockSize, MAX_PANEL_LEAF_WIDTH);
  if (width <= leafWidth) {
    factorPanelByColumns(a, n, pivots, k, width);
    return;
  }
  const left = splitSize(width, width > settings.blockSize ? settings.blockSize : leafWidth);
  const right = width - left;
  const below = n - k - left;
  const whole = wholeMatrix(a, n, n);

  // 1. Factor the left half of the panel.
  factorPanel(a, n, pivots, k, left, settings);

  // 2. U12 = L11⁻¹·A12.
  const a12 = subBlock(whole, k, k + left, left, right);
  solveUnitLowerInPlace(subBlock(whole, k, k, left, left), a12, settings);

  // 3. A22 ← A22 − L21·U12.
  multiplyInto(settings.policy, subBlock(whole, k + left, k + left, below, right), -1, subBlock(whole, k + left, k, below, left), 'general', a12, 'general', 1);

  // 4. Factor the updated right half.
  factorPanel(a, n, pivots, k + left, right, settings);
}

/**
 * Unblocked right-looking LU of the panel of columns [k, k + width), rows [k, n). The panel is
 * copied to a column-major array first, so the inner loops run down contiguous columns.
 * About n·width² operations.
 */
function factorPanelByColumns(a: Float64Array, n: number, pivots: Int32Array, k: number, width: number): void {
  const m = n - k;
  if (panelScratch.length < m * width) panelScratch = new Float64Array(m * width);
  const panel = panelScratch;
  for (let i = 0; i < m; i++) {
    const rowStart = (k + i) * n + k;
    for (let c = 0; c < width; c++) panel[c * m + i] = a[rowStart + c];
  }

  for (let j = 0; j < width; j++) {
    const column = j * m;
    let pivotRow = j;
    let largest = Math.abs(panel[column + j]);
    for (let i = j + 1; i < m; i++) {
      const magnitude = Math.abs(panel[column + i]);
      if (magnitude > largest) {
        largest = magnitude;
        pivotRow = i;
      }
    }
    pivots[k + j] = k + pivotRow;
    if (pivotRow !== j) {
      for (let c = 0; c < width; c++) {
        const value = panel[c * m + j];
        panel[c * m + j] = panel[c * m + pivotRow];
        panel[c * m + pivotRow] = value;
      }
    }
    const pivot = panel[column + j];
    // A zero pivot means the whole column below is zero: nothing to eliminate.
    if (pivot === 0) continue;

    for (let i = j + 1; i < m; i++) panel[column + i] /= pivot;
    for (let c = j + 1; c < width; c++) {
      const target = c * m;
      const factor = panel[target + j];
      if (factor === 0) continue;
      for (let i = j + 1; i < m; i++) panel[target + i] -= panel[column + i] * factor;
    }
  }

  for (let i = 0; i < m; i++) {
    const rowStart = (k + i) * n + k;
    for (let c = 0; c < width; c++) a[rowStart + c] = panel[c * m + i];
  }
  // The panel's swaps, in order, on the columns outside it.
  for (let j = k; j < k + width; j++) {
    if (pivots[j] !== j) swapRowsOutside(a, n, j, pivots[j], k, k + width);
  }
}

/** Swaps two rows of the n×n matrix in every column outside [skipStart, skipEnd). */
function swapRowsOutside(a: Float64Array, n: number, first: number, second: number, skipStart: number, skipEnd: number): void {
  const firstStart = first * n;
  const secondStart = second * n;
  for (let c = 0; c < skipStart; c++) {
    const value = a[firstStart + c];
    a[firstStart + c] = a[secondStart + c];
    a[secondStart + c] = value;
  }
  for (let c = skipEnd; c < n; c++) {
    const value = a[firstStart + c];
    a[firstStart + c] = a[secondStart + c];
    a[secondStart + c] = value;
  }
}

/** Splits `size` in two, the first part a multiple of `unit` when possible, both parts non-empty. */
export function splitSize(size: number, unit: number): number {
  const half = unit * Math.ceil(size / (2 * unit));
  return half < size ? half : Math.ceil(size / 2);
}

/**
 * Overwrites B (s×c) with L⁻¹·B, where L is the unit lower triangle of the s×s block `l`
 * (its diagonal and upper part are not read). s²·c operations.
 */
export function solveUnitLowerInPlace(l: Block, b: Block, settings: FactorSettings): void {
  const s = l.rows;
  if (s <= settings.blockSize) {
    if (settings.policy.engineFor(s, s, b.cols).precision === 'float64') {
      forwardSubstituteUnitLower(l, b);
    } else {
      // Multiplying by the explicit inverse of a small diagonal block turns the solve into one
      // product on the backend; with partial pivoting |l_ij| ≤ 1, which keeps that inverse tame.
      const inverse = cachedUnitLowerInverse(l, settings.lowerBlockInverses);
      multiplyInto(settings.policy, b, 1, wholeMatrix(inverse, s, s), 'general', b, 'general', 0);
    }
    return;
  }
  const first = splitSize(s, settings.blockSize);
  const second = s - first;
  const b1 = subBlock(b, 0, 0, first, b.cols);
  const b2 = subBlock(b, first, 0, second, b.cols);
  solveUnitLowerInPlace(subBlock(l, 0, 0, first, first), b1, settings);
  multiplyInto(settings.policy, b2, -1, subBlock(l, first, 0, second, first), 'general', b1, 'general', 1);
  solveUnitLowerInPlace(subBlock(l, first, first, second, second), b2, settings);
}

/**
 * Overwrites B (s×c) with U⁻¹·B, where U is the upper triangle of the s×s block `u` (its part
 * below the diagonal is not read). s²·c operations.
 */
export function solveUpperInPlace(u: Block, b: Block, settings: FactorSettings): void {
  const s = u.rows;
  if (s <= settings.blockSize) {
    if (settings.policy.engineFor(s, s, b.cols).precision === 'float64') {
      backSubstituteUpper(u, b);
    } else {
      const inverse = invertUpperSmall(u);
      multiplyInto(settings.policy, b, 1, wholeMatrix(inverse, s, s), 'general', b, 'general', 0);
    }
    return;
  }
  const first = splitSize(s, settings.blockSize);
  const second = s - first;
  const b1 = subBlock(b, 0, 0, first, b.cols);
  const b2 = subBlock(b, first, 0, second, b.cols);
  solveUpperInPlace(subBlock(u, first, first, second, second), b2, settings);
  multiplyInto(settings.policy, b1, -1, subBlock(u, 0, first, first, second), 'general', b2, 'general', 1);
  solveUpperInPlace(subBlock(u, 0, 0, first, first), b1, settings);
}

/**
 * Overwrites the strictly lower triangle of the s×s block `t` with that of L⁻¹, where L is the
 * unit lower triangle of `t`. The diagonal and upper part are not touched. About s³/2
 * operations:
 *   [L11 0; L21 L22]⁻¹ = [L11⁻¹ 0; −L22⁻¹·L21·L11⁻¹ L22⁻¹].
 */
export function invertUnitLowerInPlace(t: Block, settings: FactorSettings): void {
  const s = t.rows;
  if (s <= settings.blockSize) {
    const inverse = invertUnitLowerSmall(t);
    for (let i = 0; i < s; i++) {
      const row = t.offset + i * t.stride;
      for (let j = 0; j < i; j++) t.data[row + j] = inverse[i * s + j];
    }
    return;
  }
  const first = splitSize(s, settings.blockSize);
  const second = s - first;
  const t11 = subBlock(t, 0, 0, first, first);
  const t21 = subBlock(t, first, 0, second, first);
  const t22 = subBlock(t, first, first, second, second);

  // The order matters: the solve with L22 needs L22 before it is inverted.
  invertUnitLowerInPlace(t11, settings);
  multiplyInto(settings.policy, t21, -1, t21, 'general', t11, 'unit-lower', 0);
  solveUnitLowerInPlace(t22, t21, settings);
  invertUnitLowerInPlace(t22, settings);
}

/** Returns the inverse of the unit lower triangle of a diagonal block, from `cache` when it has it. */
function cachedUnitLowerInverse(l: Block, cache: Map<string, Float64Array> | undefined): Float64Array {
  if (cache === undefined) return invertUnitLowerSmall(l);
  // For a diagonal block of an n×n array, offset = start·(n + 1) identifies the start.
  const key = diagonalBlockKey(l.offset / (l.stride + 1), l.rows);
  let inverse = cache.get(key);
  if (inverse === undefined) {
    inverse = invertUnitLowerSmall(l);
    cache.set(key, inverse);
  }
  return inverse;
}

/** Returns the inverse of the unit lower triangle of a small block as a dense s×s array. s³/3 operations. */
export function invertUnitLowerSmall(l: Block): Float64Array {
  const s = l.rows;
  const inverse = new Float64Array(s * s);
  for (let i = 0; i < s; i++) {
    const row = i * s;
    inverse[row + i] = 1;
    const lRow = l.offset + i * l.stride;
    // Row i of L⁻¹ is e_i − Σ_{p<i} l_ip · (row p of L⁻¹), and row p is zero beyond column p.
    for (let p = 0; p < i; p++) {
      const factor = l.data[lRow + p];
      if (factor === 0) continue;
      const source = p * s;
      for (let j = 0; j <= p; j++) inverse[row + j] -= factor * inverse[source + j];
    }
  }
  return inverse;
}

/** Returns the inverse of the upper triangle of a small block as a dense s×s array. s³/3 operations. */
export function invertUpperSmall(u: Block): Float64Array {
  const s = u.rows;
  const inverse = new Float64Array(s * s);
  for (let i = s - 1; i >= 0; i--) {
    const row = i * s;
    const uRow = u.offset + i * u.stride;
    inverse[row + i] = 1;
    // Row i of U⁻¹ is (e_i − Σ_{p>i} u_ip · row p of U⁻¹) / u_ii, and row p is zero before column p.
    for (let p = i + 1; p < s; p++) {
      const factor = u.data[uRow + p];
      if (factor === 0) continue;
      const source = p * s;
      for (let j = p; j < s; j++) inverse[row + j] -= factor * inverse[source + j];
    }
    const diagonal = u.data[uRow + i];
    for (let j = i; j < s; j++) inverse[row + j] /= diagonal;
  }
  return inverse;
}

function forwardSubstituteUnitLower(l: Block, b: Block): void {
  const { data, offset, stride, cols } = b;
  for (let i = 0; i < l.rows; i++) {
    const target = offset + i * stride;
    const lRow = l.offset + i * l.stride;
    for (let p = 0; p < i; p++) {
      const factor = l.data[lRow + p];
      if (factor === 0) continue;
      const source = offset + p * stride;
      for (let j = 0; j < cols; j++) data[target + j] -= factor * data[source + j];
    }
  }
}

function backSubstituteUpper(u: Block, b: Block): void {
  const { data, offset, stride, cols } = b;
  for (let i = u.rows - 1; i >= 0; i--) {
    const target = offset + i * stride;
    const uRow = u.offset + i * u.stride;
    for (let p = i + 1; p < u.rows; p++) {
      const factor = u.data[uRow + p];
      if (factor === 0) continue;
      const source = offset + p * stride;
      for (let j = 0; j < cols; j++) data[target + j] -= factor * data[source + j];
    }
    const diagonal = u.data[uRow + i];
    for (let j = 0; j < cols; j++) data[target + j] /= diagonal;
  }
}

/** Returns the row permutation of P·A: row i of P·A is row permutation[i] of A. */
export function permutationFromPivots(pivots: Int32Array): Int32Array {
  const permutation = new Int32Array(pivots.length);
  for (let i = 0; i < permutation.length; i++) permutation[i] = i;
  for (let j = 0; j < pivots.length; j++) {
    const other = pivots[j];
    const value = permutation[j];
    permutation[j] = permutation[other];
    permutation[other] = value;
  }
  return permutation;
}

/**
 * Returns A⁻¹ (or A⁻ᵀ when `transposed`) row-major from the factorisation of A, as
 * A⁻¹ = U⁻¹·L⁻¹·P. About 3n³/2 operations: n³/2 for L⁻¹ and n³ for the solve with U.
 * Throws when A is singular.
 */
export function inverseFromLu(factorization: LuFactorization, settings: FactorSettings, transposed = false): Float64Array {
  const { n, lu } = factorization;
  checkNonsingular(factorization, 'inverseFromLu');

  // 1. R = L, with explicit ones on the diagonal and zeros above it.
  const r = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) r[i * n + j] = lu[i * n + j];
    r[i * n + i] = 1;
  }

  // 2. R = L⁻¹, then R = U⁻¹·L⁻¹.
  const whole = wholeMatrix(r, n, n);
  invertUnitLowerInPlace(whole, settings);
  solveUpperInPlace(wholeMatrix(lu, n, n), whole, settings);

  // 3. A⁻¹ = R·P: column i of R becomes column permutation[i] of A⁻¹.
  const permutation = permutationFromPivots(factorization.pivots);
  const inverse = new Float64Array(n * n);
  for (let row = 0; row < n; row++) {
    for (let i = 0; i < n; i++) {
      const value = r[row * n + i];
      if (transposed) inverse[permutation[i] * n + row] = value;
      else inverse[row * n + permutation[i]] = value;
    }
  }
  return inverse;
}

/**
 * Returns X = A⁻¹·B row-major for B of shape n×c (row-major), from the factorisation of A.
 * 2n²·c operations. Throws when A is singular.
 */
export function solveFromLu(factorization: LuFactorization, b: ArrayLike<number>, columns: number, settings: FactorSettings): Float64Array {
  const { n, lu } = factorization;
  checkNonsingular(factorization, 'solveFromLu');
  if (b.length !== n * columns) {
    throw new Error(`solveFromLu: the right-hand side must have ${n}×${columns} = ${n * columns} values, received ${b.length}.`);
  }
  // L·U·X = P·B.
  const permutation = permutationFromPivots(factorization.pivots);
  const x = new Float64Array(n * columns);
  for (let i = 0; i < n; i++) {
    const source = permutation[i] * columns;
    for (let j = 0; j < columns; j++) x[i * columns + j] = b[source + j];
  }
  const whole = wholeMatrix(lu, n, n);
  const rightHandSide = wholeMatrix(x, n, columns);
  solveUnitLowerInPlace(whole, rightHandSide, settings);
  solveUpperInPlace(whole, rightHandSide, settings);
  return x;
}

/** Throws an error naming the caller and the zero pivot when the factorisation is singular. */
export function checkNonsingular(factorization: LuFactorization, caller: string): void {
  if (factorization.sign === 0) {
    const zeroPivot = Array.from({ length: factorization.n }, (_, j) => j).find((j) => factorization.lu[j * factorization.n + j] === 0);
    throw new Error(
      `${caller}: the ${factorization.n}×${factorization.n} matrix is singular (pivot ${zeroPivot} is exactly 0), ` +
        'so it has no inverse; check the weights for a zero or duplicated row.',
    );
  }
}
