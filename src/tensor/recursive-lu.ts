/**
 * LU factorisation with partial pivoting and the inverse from it, for column-major float32
 * matrices, written as recursions whose bulk is level-3 BLAS (sgemm, strmm and strsm).
 *
 * Both give LAPACK's results: `factorLu` leaves what sgetrf leaves (L and U in place, 1-based
 * pivot rows), and `invertFromLu` leaves A⁻¹ as sgetri does, so either can replace its LAPACK
 * counterpart. Only the kernels and the rounding differ. On a 2-vCPU Intel Xeon (family 6,
 * model 207, AVX-512) with Debian's OpenBLAS 0.3.21, OpenBLAS ran [784×784]·[784×784] at
 * 270–330 GFLOP/s on two threads and strmm at about 270, while its own sgetrf reached 70–110
 * and strtri 80. The LU with the inverse took 0.87–0.92 times as long as sgetrf with sgetri at
 * n = 256 (one thread), but 0.92–1.08 times at n = 784 for Gaussian entries of variance 1/n and
 * 1.10–1.16 times for −I plus Gaussian noise of 0.01 (two threads). These are ratios of medians
 * of 35 interleaved rounds, from five runs at n = 256 and six at n = 784 on a machine shared
 * with other jobs (2026-12-05).
 *
 * - `factorLu` splits the columns in two, factors the left half recursively, applies its row
 *   interchanges to the right half, solves U₁₂ = L₁₁⁻¹·A₁₂ (recursively, by halves and sgemm),
 *   updates A₂₂ ← A₂₂ − L₂₁·U₁₂ (sgemm), factors A₂₂ recursively and applies its interchanges
 *   to the left half. Panels of at most `PANEL_COLUMNS` columns go to the library's sgetrf.
 *   2n³/3 operations in all.
 * - `invertFromLu` inverts U and the unit lower L in place, each by halves:
 *   [T₁₁ T₁₂; 0 T₂₂]⁻¹ has T₁₁⁻¹ and T₂₂⁻¹ on its diagonal and −T₁₁⁻¹·T₁₂·T₂₂⁻¹ off it (one
 *   strmm and one strsm), then forms A⁻¹ = U⁻¹·L⁻¹·P with one strmm and a permutation of
 *   columns. n³/3 for each triangle and n³ for the product: 5n³/3 operations, against sgetri's
 *   4n³/3.
 *
 * Everything is column-major with leading dimension n; a block is passed as a subarray view
 * starting at its first element.
 */

/**
 * The column-major kernels the recursions call: LAPACK's and the BLAS's routines, with no
 * transposes. `native-blas.ts` binds them to OpenBLAS; tests bind them to plain loops.
 */
export interface LuKernels {
  /**
   * LAPACK sgetrf on the m×k block `a` (leading dimension lda, m ≥ k): L and U in place,
   * 1-based pivot rows relative to the block in `pivots[0..k)`. Returns 0, or i > 0 when U(i, i)
   * is exactly zero.
   */
  panelLu(m: number, k: number, a: Float32Array, lda: number, pivots: Int32Array): number;
  /**
   * LAPACK slaswp: for i = from … to − 1 in turn, swaps row i with row pivots[i] − 1 in each of
   * the `cols` columns of `a` (row indices 0-based, pivot values 1-based).
   */
  swapRows(cols: number, a: Float32Array, lda: number, from: number, to: number, pivots: Int32Array): void;
  /** C ← C − A·B for the m×k block A, the k×n block B and the m×n block C (cblas_sgemm). */
  subtractProduct(m: number, n: number, k: number, a: Float32Array, lda: number, b: Float32Array, ldb: number, c: Float32Array, ldc: number): void;
  /**
   * B ← α·T⁻¹·B (side 'left', T m×m) or α·B·T⁻¹ (side 'right', T n×n) for the triangle T of `t`:
   * upper or lower, with a unit diagonal when `unit` (cblas_strsm). B is m×n.
   */
  triangularSolve(side: 'left' | 'right', upper: boolean, unit: boolean, m: number, n: number, alpha: number, t: Float32Array, ldt: number, b: Float32Array, ldb: number): void;
  /**
   * B ← α·T·B (side 'left', T m×m) or α·B·T (side 'right', T n×n) for the triangle T of `t`:
   * upper or lower, with a unit diagonal when `unit` (cblas_strmm). B is m×n.
   */
  triangularProduct(side: 'left' | 'right', upper: boolean, unit: boolean, m: number, n: number, alpha: number, t: Float32Array, ldt: number, b: Float32Array, ldb: number): void;
  /** LAPACK strtri: the triangle of the n×n block `a` replaced by its inverse. Returns 0, or i > 0 when T(i, i) is zero. */
  triangularInverse(upper: boolean, unit: boolean, n: number, a: Float32Array, lda: number): number;
}

/** Columns of the panels handed to the library's sgetrf whole. */
export const PANEL_COLUMNS = 64;
/** Rows of the triangular solves and inverses handed to the library whole. */
const SOLVE_ROWS = 64;
const INVERSE_ROWS = 32;

/** Splits k into a first part that is a multiple of 16, about half of k. */
function firstHalf(k: number): number {
  return Math.min(k - 1, ((k >> 1) + 15) & ~15);
}

/**
 * Factors the column-major n×n matrix `a` in place as P·A = L·U with partial pivoting, writing
 * the 1-based pivot rows to `pivots` (LAPACK sgetrf's layout). Returns 0, or i > 0 when U(i, i)
 * is exactly zero (the factorisation is still completed). 2n³/3 operations, most in sgemm;
 * O(n² log n) row interchanges.
 */
export function factorLu(kernels: LuKernels, n: number, a: Float32Array, pivots: Int32Array): number {
  checkSquare('factorLu', n, a, pivots);
  if (n === 0) return 0;
  return factorColumns(kernels, n, a, pivots, 0, n);
}

/** Factors the (n − j0)×k block at (j0, j0); writes pivots[j0..j0 + k) as absolute rows. */
function factorColumns(kernels: LuKernels, n: number, a: Float32Array, pivots: Int32Array, j0: number, k: number): number {
  const rows = n - j0;
  if (k <= PANEL_COLUMNS) {
    const panelPivots = pivots.subarray(j0, j0 + k);
    const info = kernels.panelLu(rows, k, block(a, n, j0, j0), n, panelPivots);
    for (let i = 0; i < k; i++) panelPivots[i] += j0;
    return info > 0 ? info + j0 : 0;
  }
  const k1 = firstHalf(k);
  const k2 = k - k1;
  const leftInfo = factorColumns(kernels, n, a, pivots, j0, k1);
  // The left half's interchanges, on the right half's columns (every row, so earlier rows too).
  kernels.swapRows(k2, block(a, n, 0, j0 + k1), n, j0, j0 + k1, pivots);
  solveUnitLowerByHalves(kernels, n, a, j0, k1, j0 + k1, k2);
  kernels.subtractProduct(rows - k1, k2, k1, block(a, n, j0 + k1, j0), n, block(a, n, j0, j0 + k1), n, block(a, n, j0 + k1, j0 + k1), n);
  const rightInfo = factorColumns(kernels, n, a, pivots, j0 + k1, k2);
  kernels.swapRows(k1, block(a, n, 0, j0), n, j0 + k1, j0 + k, pivots);
  return leftInfo > 0 ? leftInfo : rightInfo;
}

/** B ← L⁻¹·B for the unit lower k×k block L at (r0, r0) and the k×cols block B at (r0, c0). */
function solveUnitLowerByHalves(kernels: LuKernels, n: number, a: Float32Array, r0: number, k: number, c0: number, cols: number): void {
  if (k <= SOLVE_ROWS) {
    kernels.triangularSolve('left', false, true, k, cols, 1, block(a, n, r0, r0), n, block(a, n, r0, c0), n);
    return;
  }
  const k1 = firstHalf(k);
  solveUnitLowerByHalves(kernels, n, a, r0, k1, c0, cols);
  kernels.subtractProduct(k - k1, cols, k1, block(a, n, r0 + k1, r0), n, block(a, n, r0, c0), n, block(a, n, r0 + k1, c0), n);
  solveUnitLowerByHalves(kernels, n, a, r0 + k1, k - k1, c0, cols);
}

/**
 * Replaces the factorisation left by `factorLu` (or sgetrf) in the column-major n×n `a` with
 * A⁻¹, as sgetri does. `workspace` must have room for n² floats. Returns 0, or i > 0 when U(i, i) is
 * zero, in which case `a` is left unchanged. 5n³/3 operations, most in strmm and strsm.
 */
export function invertFromLu(kernels: LuKernels, n: number, a: Float32Array, pivots: Int32Array, workspace: Float32Array): number {
  checkSquare('invertFromLu', n, a, pivots);
  if (workspace.length < n * n) throw new RangeError(`invertFromLu: the workspace needs ${n * n} floats for n = ${n}, received ${workspace.length}`);
  for (let i = 0; i < n; i++) if (a[i * n + i] === 0) return i + 1;
  if (n === 0) return 0;
  invertTriangle(kernels, n, a, 0, n, true);
  invertTriangle(kernels, n, a, 0, n, false);

  // workspace ← L⁻¹ as a full matrix (unit diagonal, zeros above), then U⁻¹·L⁻¹.
  for (let j = 0; j < n; j++) {
    const column = j * n;
    workspace.fill(0, column, column + j);
    workspace[column + j] = 1;
    workspace.set(a.subarray(column + j + 1, column + n), column + j + 1);
  }
  kernels.triangularProduct('left', true, false, n, n, 1, a, n, workspace, n);

  // A⁻¹ = (U⁻¹·L⁻¹)·P: sgetri swaps columns j and pivots[j] − 1 for j from n − 1 down to 0.
  const source = new Int32Array(n);
  for (let j = 0; j < n; j++) source[j] = j;
  for (let j = n - 1; j >= 0; j--) {
    const other = pivots[j] - 1;
    const kept = source[j];
    source[j] = source[other];
    source[other] = kept;
  }
  for (let j = 0; j < n; j++) a.set(workspace.subarray(source[j] * n, source[j] * n + n), j * n);
  return 0;
}

/**
 * Inverts in place the k×k triangle at (j0, j0): upper with its diagonal, or unit lower. As in
 * LAPACK's strtri, the off-diagonal block is multiplied by the inverse of the first diagonal
 * block (strmm) and then solved against the second block before that one is inverted (strsm).
 * Multiplying by both computed inverses (two strmm) took the LU with the inverse 0.79–0.93 times
 * as long, but it compounds their rounding errors at every level. For n = 784 and Q₁·diag(σ)·Q₂ᵀ
 * with condition number 10, that U⁻¹ was 7× less accurate than strtri's, and max |A·A⁻¹ − I|
 * was 7× sgetri's.
 */
function invertTriangle(kernels: LuKernels, n: number, a: Float32Array, j0: number, k: number, upper: boolean): void {
  if (k <= INVERSE_ROWS) {
    kernels.triangularInverse(upper, !upper, k, block(a, n, j0, j0), n);
    return;
  }
  const k1 = firstHalf(k);
  const k2 = k - k1;
  const first = block(a, n, j0, j0);
  const second = block(a, n, j0 + k1, j0 + k1);
  invertTriangle(kernels, n, a, j0, k1, upper);
  if (upper) {
    // T₁₂ ← −T₁₁⁻¹·T₁₂·T₂₂⁻¹, T₁₂ being k1×k2 at (j0, j0 + k1), with T₂₂ not yet inverted.
    const offDiagonal = block(a, n, j0, j0 + k1);
    kernels.triangularProduct('left', true, false, k1, k2, 1, first, n, offDiagonal, n);
    kernels.triangularSolve('right', true, false, k1, k2, -1, second, n, offDiagonal, n);
  } else {
    // T₂₁ ← −T₂₂⁻¹·T₂₁·T₁₁⁻¹, T₂₁ being k2×k1 at (j0 + k1, j0), with T₂₂ not yet inverted.
    const offDiagonal = block(a, n, j0 + k1, j0);
    kernels.triangularProduct('right', false, true, k2, k1, 1, first, n, offDiagonal, n);
    kernels.triangularSolve('left', false, true, k2, k1, -1, second, n, offDiagonal, n);
  }
  invertTriangle(kernels, n, a, j0 + k1, k2, upper);
}

/** Returns the view of the column-major matrix `a` (leading dimension n) that starts at (row, col). */
function block(a: Float32Array, n: number, row: number, col: number): Float32Array {
  return a.subarray(col * n + row);
}

function checkSquare(caller: string, n: number, a: Float32Array, pivots: Int32Array): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${caller}: n must be a non-negative integer, received ${n}`);
  if (a.length < n * n) throw new RangeError(`${caller}: an ${n}×${n} matrix needs ${n * n} values, received ${a.length}`);
  if (pivots.length < n) throw new RangeError(`${caller}: ${n} pivots do not fit in an array of ${pivots.length}`);
}
