/**
 * LU factorisation with partial pivoting and the inverse from it, for column-major float32
 * matrices, written as recursions whose bulk is matrix products (sgemm).
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
 * `invertLu` turns those factors into A⁻¹ = U⁻¹·L⁻¹·P with the steps of LAPACK's strtri and
 * sgetri: U⁻¹ in place, each off-diagonal block by a triangular product with the inverted block
 * and a solve with the block not yet inverted; then X·L = U⁻¹ solved for X from the right; then
 * the column interchanges. 4n³/3 operations.
 *
 * Every triangular solve, in both functions, goes by halves with sgemm down to triangles of at
 * most 32 or 64 rows, which the kernels apply (`bindLuKernels` inverts each such triangle and
 * multiplies by it with strmm). On one OpenBLAS thread, as the LAPACK worker thread runs them, the
 * library's own strtri and strsm are slow: strtri took 6.4 ms of about 20 for LU and inverse at
 * n = 784. On one thread of the same Xeon, LU and inverse took 17.8 ms against 24.3 ms with sgetrf
 * and sgetri at n = 784, 1.6 against 2.1 ms at 256 (where the LU is sgetrf's, see
 * `RECURSIVE_LU_MIN_SIZE`), 97 against 126 ms at 1536 and 562 against 594 ms at 3072 (medians of 7
 * interleaved rounds, 2026-12-06, a slow spell; 9.8 against 13.9 ms at 784 in a faster one).
 * Max |X·A − I| stayed within twice sgetri's in the tests. Against sgetrf with sgetri, on one
 * matrix per size from 32 to 784 (block edges included), it was 0.6 to 1.8 times theirs on
 * Gaussian matrices and on condition 10³ and 10⁶. It was 1.5 to 2.8 times theirs on −I plus
 * Gaussian noise of 0.01 (the FC flow's weights), and up to 3.0 times with pivots from far below
 * (2026-12-06). A version that multiplied by both inverted halves at every level of U⁻¹ was faster
 * still, but left max |X·A − I| 30 times larger.
 *
 * NOTE: the explicit inverses of the small triangles cost accuracy when L is badly conditioned.
 * On matrices whose L has entries near ±1 (A = L·U with such an L, so A is numerically singular
 * in float32), max |X·A − I| was up to 100 times sgetri's, against up to 2.3 times when the
 * small triangles were solved with strsm.
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
  /** B ← L⁻¹·B for the unit lower triangle L of the m×m block `l` and the m×n block B; m ≤ 64 here. */
  solveUnitLower(m: number, n: number, l: Float32Array, ldl: number, b: Float32Array, ldb: number): void;
  /** B ← B·L⁻¹ for the unit lower triangle L of the n×n block `l` and the m×n block B; n ≤ 32 here. */
  solveUnitLowerFromRight(m: number, n: number, l: Float32Array, ldl: number, b: Float32Array, ldb: number): void;
  /** B ← −U·B for the upper triangle U (with its diagonal) of the m×m block `u` and the m×n block B (cblas_strmm). */
  multiplyUpperNegated(m: number, n: number, u: Float32Array, ldu: number, b: Float32Array, ldb: number): void;
  /** B ← B·U⁻¹ for the upper triangle U (with its diagonal) of the n×n block `u` and the m×n block B; n ≤ 32 here. */
  solveUpperFromRight(m: number, n: number, u: Float32Array, ldu: number, b: Float32Array, ldb: number): void;
  /** Replaces the upper triangle of the k×k block `u` by its inverse (LAPACK strtri). The strict lower part is left unchanged. */
  invertUpper(k: number, u: Float32Array, ldu: number): void;
}

/** Columns of the panels handed to the library's sgetrf whole. */
export const PANEL_COLUMNS = 64;
/** Rows of the triangular solves handed to the library whole. */
const SOLVE_ROWS = 64;
/** Columns of the triangular inverses and right-hand solves of `invertLu` handed to the library whole. */
const INVERSE_BLOCK = 32;
/**
 * Columns of L copied out at a time by `invertLu`, so its workspace is n × 256 values rather than
 * n × n. At n = 3072 the whole copy was 3% faster; at n = 784 they were equal.
 */
export const INVERSE_CHUNK_COLUMNS = 256;

/** Returns the values of workspace `invertLu` needs for an n×n matrix: n·min(n, 256). */
export function inverseWorkspaceLength(n: number): number {
  return n * Math.min(n, INVERSE_CHUNK_COLUMNS);
}

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

/**
 * Replaces the factors that `factorLu` or sgetrf left in the column-major n×n matrix `a` by A⁻¹
 * (what LAPACK sgetri leaves), using `workspace` (at least `inverseWorkspaceLength(n)` values)
 * for L. Returns 0, or i > 0 when U(i, i) is exactly zero, in which case `a` is left as it was.
 * Throws a RangeError, before `a` changes, for a short array or a pivot outside 1 to n.
 * 4n³/3 operations, most in sgemm and triangular products; O(n²) column interchanges.
 */
export function invertLu(kernels: LuKernels, n: number, a: Float32Array, pivots: Int32Array, workspace: Float32Array): number {
  checkSquare('invertLu', n, a, pivots);
  if (workspace.length < inverseWorkspaceLength(n)) {
    throw new RangeError(
      `invertLu: an ${n}×${n} inverse needs a workspace of ${inverseWorkspaceLength(n)} values, received ${workspace.length}; allocate it with inverseWorkspaceLength(n)`,
    );
  }
  checkPivots('invertLu', n, pivots);
  for (let i = 0; i < n; i++) if (a[i * n + i] === 0) return i + 1;
  if (n === 0) return 0;

  invertUpperByHalves(kernels, n, a, 0, n);

  // X·L = U⁻¹ from the last columns to the first: each chunk's L goes to the workspace, then the
  // chunk takes the product with the columns already solved and is solved by halves.
  const width = Math.min(n, INVERSE_CHUNK_COLUMNS);
  for (let c0 = Math.floor((n - 1) / width) * width; c0 >= 0; c0 -= width) {
    const columns = Math.min(width, n - c0);
    for (let c = 0; c < columns; c++) {
      const below = c0 + c + 1;
      const column = a.subarray((c0 + c) * n, (c0 + c + 1) * n);
      workspace.set(column.subarray(below), c * n + below);
      column.fill(0, below);
    }
    if (c0 + columns < n) {
      kernels.subtractProduct(n, columns, n - c0 - columns, block(a, n, 0, c0 + columns), n, workspace.subarray(c0 + columns), n, block(a, n, 0, c0), n);
    }
    solveUnitLowerFromRightByHalves(kernels, n, a, workspace, c0, 0, columns);
  }

  // A⁻¹ = U⁻¹·L⁻¹·P: the interchanges of the rows of A become interchanges of the columns of X, last first.
  const swapped = workspace.subarray(0, n);
  for (let i = n - 1; i >= 0; i--) {
    const other = pivots[i] - 1;
    if (other === i) continue;
    swapped.set(a.subarray(i * n, (i + 1) * n));
    a.copyWithin(i * n, other * n, (other + 1) * n);
    a.set(swapped, other * n);
  }
  return 0;
}

/**
 * Replaces the upper triangle of the k×k block at (j0, j0) by its inverse. With U₁₁ inverted
 * first, the off-diagonal block becomes −U₁₁⁻¹·U₁₂·U₂₂⁻¹: a product with the inverted block, then
 * a solve with U₂₂ by halves, which is inverted last.
 */
function invertUpperByHalves(kernels: LuKernels, n: number, a: Float32Array, j0: number, k: number): void {
  if (k <= INVERSE_BLOCK) {
    kernels.invertUpper(k, block(a, n, j0, j0), n);
    return;
  }
  const k1 = firstHalf(k);
  const k2 = k - k1;
  invertUpperByHalves(kernels, n, a, j0, k1);
  kernels.multiplyUpperNegated(k1, k2, block(a, n, j0, j0), n, block(a, n, j0, j0 + k1), n);
  solveUpperFromRightByHalves(kernels, n, a, j0, k1, j0 + k1, k2);
  invertUpperByHalves(kernels, n, a, j0 + k1, k2);
}

/**
 * B ← B·U⁻¹ for the m×k block B at (r0, j0) and the upper triangle U of the k×k block at
 * (j0, j0): the first columns of B, then the others less their product with U's off-diagonal block.
 */
function solveUpperFromRightByHalves(kernels: LuKernels, n: number, a: Float32Array, r0: number, m: number, j0: number, k: number): void {
  if (k <= INVERSE_BLOCK) {
    kernels.solveUpperFromRight(m, k, block(a, n, j0, j0), n, block(a, n, r0, j0), n);
    return;
  }
  const k1 = firstHalf(k);
  solveUpperFromRightByHalves(kernels, n, a, r0, m, j0, k1);
  kernels.subtractProduct(m, k - k1, k1, block(a, n, r0, j0), n, block(a, n, j0, j0 + k1), n, block(a, n, r0, j0 + k1), n);
  solveUpperFromRightByHalves(kernels, n, a, r0, m, j0 + k1, k - k1);
}

/**
 * X ← X·L⁻¹ for the n×k columns X of `a` from column c0 + j0 and the unit lower k×k block L of
 * the workspace at (c0 + j0, j0) (the workspace holds the columns of L from c0 on).
 */
function solveUnitLowerFromRightByHalves(kernels: LuKernels, n: number, a: Float32Array, workspace: Float32Array, c0: number, j0: number, k: number): void {
  if (k <= INVERSE_BLOCK) {
    kernels.solveUnitLowerFromRight(n, k, block(workspace, n, c0 + j0, j0), n, block(a, n, 0, c0 + j0), n);
    return;
  }
  const k1 = firstHalf(k);
  const k2 = k - k1;
  solveUnitLowerFromRightByHalves(kernels, n, a, workspace, c0, j0 + k1, k2);
  kernels.subtractProduct(n, k1, k2, block(a, n, 0, c0 + j0 + k1), n, block(workspace, n, c0 + j0 + k1, j0), n, block(a, n, 0, c0 + j0), n);
  solveUnitLowerFromRightByHalves(kernels, n, a, workspace, c0, j0, k1);
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

/**
 * Throws a RangeError when a pivot is outside 1 to n. `invertLu` checks before `a` changes,
 * because its column interchanges would otherwise fail halfway or, in an array longer than n·n,
 * overwrite the values after the matrix.
 */
function checkPivots(caller: string, n: number, pivots: Int32Array): void {
  for (let i = 0; i < n; i++) {
    if (pivots[i] < 1 || pivots[i] > n) {
      throw new RangeError(`${caller}: pivot ${i + 1} is ${pivots[i]}, outside 1 to ${n}; pass the pivots that factorLu or sgetrf wrote`);
    }
  }
}
