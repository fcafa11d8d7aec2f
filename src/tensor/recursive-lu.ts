/**
 * LU factorisation with partial pivoting for column-major float32 matrices, written as a
 * recursion whose bulk is matrix products (sgemm).
 *
 * `factorLu` leaves what LAPACK's sgetrf leaves (L and U in place, 1-based pivot rows), so
 * sgetri and sgetrs take its output. Only the kernels and the rounding differ. It splits the
 * columns in two, factors the left half recursively, applies its row interchanges to the right
 * half, solves U₁₂ = L₁₁⁻¹·A₁₂ (by halves and sgemm), updates A₂₂ ← A₂₂ − L₂₁·U₁₂ (sgemm),
 * factors A₂₂ recursively and applies its interchanges to the left half. Panels of at most
 * `PANEL_COLUMNS` columns go to the library's sgetrf. 2n³/3 operations in all.
 *
 * On a 2-vCPU Intel Xeon (family 6, model 207, AVX-512) with Debian's OpenBLAS 0.3.21 on two
 * threads, it took 3.5–4.6 ms at n = 784 against 4.3–5.6 ms for sgetrf on Gaussian matrices
 * (entries of variance 1/n, many row interchanges), and as long as sgetrf (3.1–3.6 ms) on −I plus
 * Gaussian noise of 0.01, which needs none. At n = 1536 it took 23.2 against 23.9 ms and 16.0
 * against 16.0 ms (medians of 35 interleaved rounds in three runs at n = 784 and one at 1536,
 * 2026-12-05, on a machine shared with other jobs).
 *
 * A recursive inverse from the factorisation was tried too, and sgetri kept. Written for speed
 * (each triangle inverted with two strmm per level), it left max |X·A − I| at 1.3·10⁻⁴ against
 * sgetri's 4.8·10⁻⁶ (n = 784, condition number 10). Written as strtri orders the work (strmm, then
 * a solve), it was as accurate as sgetri but no faster on the FC flow's weights.
 *
 * Everything is column-major with leading dimension n; a block is passed as a subarray view
 * starting at its first element.
 */

/**
 * The column-major kernels the recursion calls: LAPACK's and the BLAS's routines, with no
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
  /** B ← L⁻¹·B for the unit lower triangle L of the m×m block `l` and the m×n block B (cblas_strsm). */
  solveUnitLower(m: number, n: number, l: Float32Array, ldl: number, b: Float32Array, ldb: number): void;
}

/** Columns of the panels handed to the library's sgetrf whole. */
export const PANEL_COLUMNS = 64;
/** Rows of the triangular solves handed to the library whole. */
const SOLVE_ROWS = 64;

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

/** Factors the (n − j0)×k block at (j0, j0) and writes pivots[j0..j0 + k) as absolute rows. */
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
    kernels.solveUnitLower(k, cols, block(a, n, r0, r0), n, block(a, n, r0, c0), n);
    return;
  }
  const k1 = firstHalf(k);
  solveUnitLowerByHalves(kernels, n, a, r0, k1, c0, cols);
  kernels.subtractProduct(k - k1, cols, k1, block(a, n, r0 + k1, r0), n, block(a, n, r0, c0), n, block(a, n, r0 + k1, c0), n);
  solveUnitLowerByHalves(kernels, n, a, r0 + k1, k - k1, c0, cols);
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
