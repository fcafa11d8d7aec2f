import assert from 'node:assert/strict';
import { before, describe, test, type TestContext } from 'node:test';

import { selectBackend } from '../../src/backend/select.js';
import { RandomStream } from '../../src/random/stream.js';
import { bindLuKernels, nativeBlas, RECURSIVE_INVERSE_THREADS, RECURSIVE_LU_MIN_SIZE, type KoffiLibrary, type NativeBlas } from '../../src/tensor/native-blas.js';
import { factorLu, INVERSE_CHUNK_COLUMNS, invertLu, inverseWorkspaceLength, PANEL_COLUMNS, type LuKernels } from '../../src/tensor/recursive-lu.js';

const REQUIRED = process.env.EBFLOW_REQUIRE_BLAS === '1';

/** Returns the index of element (row, col) in a column-major block view with leading dimension ld. */
const index = (ld: number, row: number, col: number): number => col * ld + row;

/**
 * The kernels as plain column-major loops in float32 storage, so the recursion is tested on
 * any machine. `panelLu` is unblocked partial pivoting, which also serves as the reference.
 */
const loopKernels: LuKernels = {
  panelLu(m, k, a, lda, pivots) {
    let info = 0;
    for (let j = 0; j < k; j++) {
      let pivot = j;
      for (let i = j + 1; i < m; i++) if (Math.abs(a[index(lda, i, j)]) > Math.abs(a[index(lda, pivot, j)])) pivot = i;
      pivots[j] = pivot + 1;
      if (pivot !== j) {
        for (let c = 0; c < k; c++) {
          const kept = a[index(lda, j, c)];
          a[index(lda, j, c)] = a[index(lda, pivot, c)];
          a[index(lda, pivot, c)] = kept;
        }
      }
      const diagonal = a[index(lda, j, j)];
      if (diagonal === 0) {
        if (info === 0) info = j + 1;
        continue;
      }
      for (let i = j + 1; i < m; i++) a[index(lda, i, j)] /= diagonal;
      for (let c = j + 1; c < k; c++) {
        const factor = a[index(lda, j, c)];
        for (let i = j + 1; i < m; i++) a[index(lda, i, c)] -= a[index(lda, i, j)] * factor;
      }
    }
    return info;
  },
  swapRows(cols, a, lda, from, to, pivots) {
    for (let i = from; i < to; i++) {
      const other = pivots[i] - 1;
      if (other === i) continue;
      for (let c = 0; c < cols; c++) {
        const kept = a[index(lda, i, c)];
        a[index(lda, i, c)] = a[index(lda, other, c)];
        a[index(lda, other, c)] = kept;
      }
    }
  },
  subtractProduct(m, n, k, a, lda, b, ldb, c, ldc) {
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < m; i++) {
        let sum = 0;
        for (let p = 0; p < k; p++) sum += a[index(lda, i, p)] * b[index(ldb, p, j)];
        c[index(ldc, i, j)] -= sum;
      }
    }
  },
  solveUnitLower(m, n, l, ldl, b, ldb) {
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < m; i++) {
        let value = b[index(ldb, i, j)];
        for (let p = 0; p < i; p++) value -= l[index(ldl, i, p)] * b[index(ldb, p, j)];
        b[index(ldb, i, j)] = value;
      }
    }
  },
  solveUnitLowerFromRight(m, n, l, ldl, b, ldb) {
    // X·L = B, solved for the columns of X from the last one.
    for (let j = n - 1; j >= 0; j--) {
      for (let p = j + 1; p < n; p++) {
        const factor = l[index(ldl, p, j)];
        for (let i = 0; i < m; i++) b[index(ldb, i, j)] -= b[index(ldb, i, p)] * factor;
      }
    }
  },
  multiplyUpperNegated(m, n, u, ldu, b, ldb) {
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < m; i++) {
        let sum = 0;
        for (let p = i; p < m; p++) sum += u[index(ldu, i, p)] * b[index(ldb, p, j)];
        b[index(ldb, i, j)] = -sum;
      }
    }
  },
  solveUpperFromRight(m, n, u, ldu, b, ldb) {
    // X·U = B, solved for the columns of X from the first one.
    for (let j = 0; j < n; j++) {
      const diagonal = u[index(ldu, j, j)];
      for (let i = 0; i < m; i++) {
        let value = b[index(ldb, i, j)];
        for (let p = 0; p < j; p++) value -= b[index(ldb, i, p)] * u[index(ldu, p, j)];
        b[index(ldb, i, j)] = value / diagonal;
      }
    }
  },
  invertUpper(k, u, ldu) {
    // Column by column: X(0..j, j) = −X(0..j, 0..j)·U(0..j, j) / U(j, j), with X(j, j) = 1/U(j, j).
    for (let j = 0; j < k; j++) {
      const inverseDiagonal = 1 / u[index(ldu, j, j)];
      u[index(ldu, j, j)] = inverseDiagonal;
      const column = Array.from({ length: j }, (_, i) => u[index(ldu, i, j)]);
      for (let i = 0; i < j; i++) {
        let sum = 0;
        for (let p = i; p < j; p++) sum += u[index(ldu, i, p)] * column[p];
        u[index(ldu, i, j)] = -sum * inverseDiagonal;
      }
    }
  },
};

/** Returns a column-major n×n matrix with Gaussian entries of variance 1/n plus the identity (well conditioned). */
function conditioned(n: number, seed: number): Float32Array {
  const random = new RandomStream(seed);
  const values = new Float32Array(n * n);
  for (let i = 0; i < n * n; i++) values[i] = random.normal() / Math.sqrt(n);
  for (let i = 0; i < n; i++) values[i * n + i] += 1;
  return values;
}

/**
 * Returns a column-major n×n permuted identity, scaled by row, plus small noise: each column's
 * pivot is a row far below it, so the interchanges cross panels.
 */
function farPivots(n: number): Float32Array {
  const values = new Float32Array(n * n);
  for (let j = 0; j < n; j++) values[j * n + ((j * 37 + 11) % n)] = 1 + j / n;
  for (let i = 0; i < n * n; i++) values[i] += 1e-3 * Math.sin(i);
  return values;
}

/** Returns max |P·A − L·U| in float64, from the factorisation and pivots in LAPACK's layout. */
function reconstructionError(original: Float32Array, lu: Float32Array, pivots: Int32Array, n: number): number {
  const permuted = Float64Array.from(original);
  for (let i = 0; i < n; i++) {
    const other = pivots[i] - 1;
    for (let c = 0; c < n; c++) {
      const kept = permuted[c * n + i];
      permuted[c * n + i] = permuted[c * n + other];
      permuted[c * n + other] = kept;
    }
  }
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p <= Math.min(i, j); p++) sum += (p === i ? 1 : lu[p * n + i]) * lu[j * n + p];
      worst = Math.max(worst, Math.abs(sum - permuted[j * n + i]));
    }
  }
  return worst;
}

/** Returns max |A·X − I| in float64 for column-major A and X. */
function inverseResidual(a: Float32Array, x: Float32Array, n: number): number {
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < n; p++) sum += a[p * n + i] * x[j * n + p];
      worst = Math.max(worst, Math.abs(sum - (i === j ? 1 : 0)));
    }
  }
  return worst;
}

/**
 * Returns the column-major n×n matrix Q₁·diag(σ)·Q₂ᵀ with random orthogonal Q₁, Q₂ (Gram–Schmidt,
 * twice, on Gaussian matrices, in float64) and σᵢ = 10^(−i/(n−1)), so its condition number is 10.
 */
function withOrthogonalFactors(n: number, seed: number): Float32Array {
  const random = new RandomStream(seed);
  const orthogonal = (): Float64Array => {
    const q = Float64Array.from({ length: n * n }, () => random.normal());
    for (let pass = 0; pass < 2; pass++) {
      for (let j = 0; j < n; j++) {
        for (let k = 0; k < j; k++) {
          let dot = 0;
          for (let i = 0; i < n; i++) dot += q[k * n + i] * q[j * n + i];
          for (let i = 0; i < n; i++) q[j * n + i] -= dot * q[k * n + i];
        }
        let norm = 0;
        for (let i = 0; i < n; i++) norm += q[j * n + i] ** 2;
        norm = Math.sqrt(norm);
        for (let i = 0; i < n; i++) q[j * n + i] /= norm;
      }
    }
    return q;
  };
  const left = orthogonal();
  const right = orthogonal();
  const singularValues = Float64Array.from({ length: n }, (_, p) => 10 ** (-p / (n - 1)));
  const values = new Float32Array(n * n);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let p = 0; p < n; p++) sum += left[p * n + i] * singularValues[p] * right[p * n + j];
      values[j * n + i] = sum;
    }
  }
  return values;
}

/** Returns max |X·A − I| in float64 for column-major A and X. */
function leftInverseResidual(a: Float32Array, x: Float32Array, n: number): number {
  return inverseResidual(x, a, n);
}

describe('recursive LU on loop kernels', () => {
  // Sizes below, at and above one panel, and odd sizes that split unevenly.
  for (const n of [1, 7, PANEL_COLUMNS, PANEL_COLUMNS + 1, 97, 150]) {
    test(`n = ${n}: matches unblocked LU`, () => {
      const original = conditioned(n, 100 + n);
      const recursive = original.slice();
      const pivots = new Int32Array(n);
      assert.equal(factorLu(loopKernels, n, recursive, pivots), 0);

      const unblocked = original.slice();
      const unblockedPivots = new Int32Array(n);
      loopKernels.panelLu(n, n, unblocked, n, unblockedPivots);
      assert.deepEqual(Array.from(pivots), Array.from(unblockedPivots));
      let worst = 0;
      for (let i = 0; i < n * n; i++) worst = Math.max(worst, Math.abs(recursive[i] - unblocked[i]));
      assert.ok(worst < 1e-4, `max difference from unblocked LU ${worst}`);
      assert.ok(reconstructionError(original, recursive, pivots, n) < 1e-4);
    });
  }

  test('pivots that move rows across panels', () => {
    const n = 140;
    const original = farPivots(n);
    const lu = original.slice();
    const pivots = new Int32Array(n);
    assert.equal(factorLu(loopKernels, n, lu, pivots), 0);
    assert.ok(pivots.some((pivot, i) => pivot - 1 >= i + PANEL_COLUMNS), 'some pivot should come from another panel');
    assert.ok(reconstructionError(original, lu, pivots, n) < 1e-4);
  });

  test('zero column: info and factors', () => {
    const n = 100;
    const original = conditioned(n, 7);
    original.fill(0, 80 * n, 81 * n);
    const lu = original.slice();
    const pivots = new Int32Array(n);
    assert.equal(factorLu(loopKernels, n, lu, pivots), 81);
    assert.ok(reconstructionError(original, lu, pivots, n) < 1e-4);
  });

  // Sizes below and above one block of the recursion, past one chunk of L, and odd sizes.
  for (const n of [1, 2, 31, 33, 97, INVERSE_CHUNK_COLUMNS + 45]) {
    test(`n = ${n}: invertLu gives the inverse`, () => {
      const original = conditioned(n, 300 + n);
      const lu = original.slice();
      const pivots = new Int32Array(n);
      assert.equal(factorLu(loopKernels, n, lu, pivots), 0);
      assert.equal(invertLu(loopKernels, n, lu, pivots, new Float32Array(inverseWorkspaceLength(n))), 0);
      assert.ok(inverseResidual(original, lu, n) < 1e-4, `max |A·X − I| = ${inverseResidual(original, lu, n)}`);
      assert.ok(leftInverseResidual(original, lu, n) < 1e-4, `max |X·A − I| = ${leftInverseResidual(original, lu, n)}`);
    });
  }

  test('invertLu undoes pivots from far below', () => {
    const n = 140;
    const original = farPivots(n);
    const lu = original.slice();
    const pivots = new Int32Array(n);
    assert.equal(factorLu(loopKernels, n, lu, pivots), 0);
    assert.ok(pivots.some((pivot, i) => pivot - 1 >= i + 64), 'some pivot should come from far below');
    assert.equal(invertLu(loopKernels, n, lu, pivots, new Float32Array(inverseWorkspaceLength(n))), 0);
    assert.ok(inverseResidual(original, lu, n) < 1e-4);
  });

  test('invertLu: zero pivot keeps factors', () => {
    const n = 70;
    const lu = conditioned(n, 9);
    const pivots = new Int32Array(n);
    assert.equal(factorLu(loopKernels, n, lu, pivots), 0);
    lu[40 * n + 40] = 0;
    const before = lu.slice();
    assert.equal(invertLu(loopKernels, n, lu, pivots, new Float32Array(inverseWorkspaceLength(n))), 41);
    assert.deepEqual(lu, before);
  });

  test('invertLu: pivot out of range rejected', () => {
    const n = 40;
    const factors = conditioned(n, 17);
    const pivots = new Int32Array(n);
    assert.equal(factorLu(loopKernels, n, factors, pivots), 0);
    // A matrix array longer than n·n, so a pivot past n could write past the matrix without an error.
    const lu = new Float32Array(n * n + n);
    lu.set(factors);
    for (const bad of [0, -3, n + 1]) {
      const badPivots = pivots.slice();
      badPivots[7] = bad;
      const before = lu.slice();
      assert.throws(
        () => invertLu(loopKernels, n, lu, badPivots, new Float32Array(inverseWorkspaceLength(n))),
        new RegExp(`pivot 8 is ${bad}, outside 1 to ${n}`),
      );
      assert.deepEqual(lu, before, `pivot ${bad}: the matrix should be left as it was`);
    }
  });

  test('invertLu: short workspace rejected', () => {
    const n = 300;
    assert.equal(inverseWorkspaceLength(n), n * INVERSE_CHUNK_COLUMNS);
    assert.equal(inverseWorkspaceLength(5), 25);
    assert.throws(
      () => invertLu(loopKernels, n, new Float32Array(n * n), new Int32Array(n), new Float32Array(n * 10)),
      new RegExp(`workspace of ${n * INVERSE_CHUNK_COLUMNS} values, received ${n * 10}`),
    );
  });

  test('bad sizes name the values', () => {
    assert.throws(() => factorLu(loopKernels, 3, new Float32Array(8), new Int32Array(3)), /3×3 matrix needs 9 values, received 8/);
    assert.throws(() => factorLu(loopKernels, 3, new Float32Array(9), new Int32Array(2)), /3 pivots do not fit in an array of 2/);
    assert.throws(() => factorLu(loopKernels, -1, new Float32Array(9), new Int32Array(3)), /n must be a non-negative integer, received -1/);
  });
});

/** Returns a library whose `func` throws, as koffi does for a missing symbol, for the named routine only. */
function libraryWithout(routine: string): KoffiLibrary {
  return {
    func(signature) {
      if (signature.includes(` ${routine}(`)) throw new Error(`${routine}: symbol not found`);
      return () => undefined;
    },
  };
}

describe('bindLuKernels', () => {
  const unused = (): undefined => undefined;

  test('binds without cblas_strsm', () => {
    assert.notEqual(bindLuKernels(libraryWithout('cblas_strsm'), unused, unused), null);
  });

  test('null without a routine it calls', () => {
    for (const routine of ['slaswp_', 'cblas_strmm', 'strtri_']) {
      assert.equal(bindLuKernels(libraryWithout(routine), unused, unused), null, routine);
    }
  });
});

/** Returns the loaded OpenBLAS, or null after skipping the test (failing it when EBFLOW_REQUIRE_BLAS=1). */
function loadedBlas(t: TestContext): NativeBlas | null {
  const blas = nativeBlas();
  if (blas !== null) return blas;
  if (REQUIRED) assert.fail('EBFLOW_REQUIRE_BLAS=1 but OpenBLAS did not load');
  t.skip('OpenBLAS not loaded');
  return null;
}

/**
 * Factors copies of the column-major `original` with `factorLu` and with sgetrf, and returns
 * both factorisations with their pivots.
 */
function factorBothWays(blas: NativeBlas, original: Float32Array, n: number) {
  const ours = { lu: original.slice(), pivots: new Int32Array(n) };
  const lapack = { lu: original.slice(), pivots: new Int32Array(n) };
  assert.equal(blas.factorLu(n, ours.lu, ours.pivots), 0);
  assert.equal(blas.sgetrf(n, lapack.lu, lapack.pivots), 0);
  return { ours, lapack };
}

describe('recursive LU on OpenBLAS', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  test('factorLu and invertLu match sgetrf and sgetri', (t) => {
    const blas = loadedBlas(t);
    if (blas === null) return;
    if ((process.env.EBFLOW_LU ?? '').trim().toLowerCase() === 'lapack') return t.skip('EBFLOW_LU=lapack keeps sgetrf and sgetri');
    assert.equal(blas.status.lu, 'recursive');
    // Above RECURSIVE_LU_MIN_SIZE, so factorLu takes the recursion.
    const n = RECURSIVE_LU_MIN_SIZE + 88;
    const original = conditioned(n, 31);
    const { ours, lapack } = factorBothWays(blas, original, n);
    assert.deepEqual(Array.from(ours.pivots), Array.from(lapack.pivots));
    assert.ok(reconstructionError(original, ours.lu, ours.pivots, n) < 1e-4);

    // On one OpenBLAS thread, invertLu runs the recursion (RECURSIVE_INVERSE_THREADS).
    assert.equal(blas.onOneThread(() => blas.invertLu(n, ours.lu, ours.pivots)), 0);
    assert.equal(blas.sgetri(n, lapack.lu, lapack.pivots), 0);
    assert.ok(ours.lu.some((value, i) => value !== lapack.lu[i]), 'the recursion should round differently from sgetri');
    let worst = 0;
    for (let i = 0; i < n * n; i++) worst = Math.max(worst, Math.abs(ours.lu[i] - lapack.lu[i]));
    assert.ok(worst < 1e-4, `max difference from sgetri ${worst}`);
    assert.ok(inverseResidual(original, ours.lu, n) < 1e-4);
  });

  test('inverse residuals like sgetrf', (t) => {
    const blas = loadedBlas(t);
    if (blas === null) return;
    const n = RECURSIVE_LU_MIN_SIZE + 8;
    const original = withOrthogonalFactors(n, 11);
    // The same sgetri on both factorisations, so the residuals compare the factorisations.
    const { ours, lapack } = factorBothWays(blas, original, n);
    assert.equal(blas.sgetri(n, ours.lu, ours.pivots), 0);
    assert.equal(blas.sgetri(n, lapack.lu, lapack.pivots), 0);
    const right = [inverseResidual(original, ours.lu, n), inverseResidual(original, lapack.lu, n)];
    const left = [leftInverseResidual(original, ours.lu, n), leftInverseResidual(original, lapack.lu, n)];
    assert.ok(right[0] < 2 * right[1], `max |A·X − I| = ${right[0]}, with sgetrf ${right[1]}`);
    assert.ok(left[0] < 2 * left[1], `max |X·A − I| = ${left[0]}, with sgetrf ${left[1]}`);
  });

  test('invertLu: residuals like sgetri on the same factors', (t) => {
    const blas = loadedBlas(t);
    if (blas === null) return;
    const n = RECURSIVE_LU_MIN_SIZE + 8;
    const original = withOrthogonalFactors(n, 12);
    const ours = original.slice();
    const pivots = new Int32Array(n);
    assert.equal(blas.factorLu(n, ours, pivots), 0);
    const lapack = ours.slice();
    assert.equal(blas.onOneThread(() => blas.invertLu(n, ours, pivots)), 0);
    assert.equal(blas.sgetri(n, lapack, pivots), 0);
    const right = [inverseResidual(original, ours, n), inverseResidual(original, lapack, n)];
    const left = [leftInverseResidual(original, ours, n), leftInverseResidual(original, lapack, n)];
    assert.ok(right[0] < 2 * right[1], `max |A·X − I| = ${right[0]}, with sgetri ${right[1]}`);
    assert.ok(left[0] < 2 * left[1], `max |X·A − I| = ${left[0]}, with sgetri ${left[1]}`);
  });

  test('invertLu on several threads is sgetri', (t) => {
    const blas = loadedBlas(t);
    if (blas === null) return;
    // 4n³/3 ≥ SINGLE_THREAD_BELOW_OPERATIONS, so the call gets every OpenBLAS thread.
    const n = 320;
    if (blas.threadsFor((4 * n ** 3) / 3) <= RECURSIVE_INVERSE_THREADS) return t.skip('OpenBLAS runs on one thread');
    const lu = conditioned(n, 41);
    const pivots = new Int32Array(n);
    assert.equal(blas.factorLu(n, lu, pivots), 0);
    const lapack = lu.slice();
    assert.equal(blas.invertLu(n, lu, pivots), 0);
    assert.equal(blas.sgetri(n, lapack, pivots), 0);
    assert.ok(lu.every((value, i) => Object.is(value, lapack[i])), 'invertLu should have called sgetri');
  });

  test('singular matrix: info returned', (t) => {
    const blas = loadedBlas(t);
    if (blas === null) return;
    const n = RECURSIVE_LU_MIN_SIZE + 8;
    const original = conditioned(n, 5);
    original.fill(0, 100 * n, 101 * n);
    const pivots = new Int32Array(n);
    assert.equal(blas.factorLu(n, original, pivots), 101);
    assert.equal(blas.sgetri(n, original.slice(), pivots), 101);
    assert.equal(blas.onOneThread(() => blas.invertLu(n, original, pivots)), 101);
  });
});
