import assert from 'node:assert/strict';
import { before, describe, test, type TestContext } from 'node:test';

import { selectBackend } from '../../src/backend/select.js';
import { RandomStream } from '../../src/random/stream.js';
import { nativeBlas, RECURSIVE_LU_MIN_SIZE, type NativeBlas } from '../../src/tensor/native-blas.js';
import { factorLu, PANEL_COLUMNS, type LuKernels } from '../../src/tensor/recursive-lu.js';

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
};

/** Returns a column-major n×n matrix with Gaussian entries of variance 1/n plus the identity (well conditioned). */
function conditioned(n: number, seed: number): Float32Array {
  const random = new RandomStream(seed);
  const values = new Float32Array(n * n);
  for (let i = 0; i < n * n; i++) values[i] = random.normal() / Math.sqrt(n);
  for (let i = 0; i < n; i++) values[i * n + i] += 1;
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
    // A permuted identity scaled by row: every pivot is a row far below its column.
    const n = 140;
    const original = new Float32Array(n * n);
    for (let j = 0; j < n; j++) original[j * n + ((j * 37 + 11) % n)] = 1 + j / n;
    for (let i = 0; i < n * n; i++) original[i] += 1e-3 * Math.sin(i);
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

  test('bad sizes name the values', () => {
    assert.throws(() => factorLu(loopKernels, 3, new Float32Array(8), new Int32Array(3)), /3×3 matrix needs 9 values, received 8/);
    assert.throws(() => factorLu(loopKernels, 3, new Float32Array(9), new Int32Array(2)), /3 pivots do not fit in an array of 2/);
    assert.throws(() => factorLu(loopKernels, -1, new Float32Array(9), new Int32Array(3)), /n must be a non-negative integer, received -1/);
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

  test('matches sgetrf and sgetri', (t) => {
    const blas = loadedBlas(t);
    if (blas === null) return;
    assert.equal(blas.status.lu, 'recursive');
    // Above RECURSIVE_LU_MIN_SIZE, so factorLu takes the recursion.
    const n = RECURSIVE_LU_MIN_SIZE + 88;
    const original = conditioned(n, 31);
    const { ours, lapack } = factorBothWays(blas, original, n);
    assert.deepEqual(Array.from(ours.pivots), Array.from(lapack.pivots));
    assert.ok(reconstructionError(original, ours.lu, ours.pivots, n) < 1e-4);

    assert.equal(blas.sgetri(n, ours.lu, ours.pivots), 0);
    assert.equal(blas.sgetri(n, lapack.lu, lapack.pivots), 0);
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

  test('singular matrix: info returned', (t) => {
    const blas = loadedBlas(t);
    if (blas === null) return;
    const n = RECURSIVE_LU_MIN_SIZE + 8;
    const original = conditioned(n, 5);
    original.fill(0, 100 * n, 101 * n);
    const pivots = new Int32Array(n);
    assert.equal(blas.factorLu(n, original, pivots), 101);
    assert.equal(blas.sgetri(n, original, pivots), 101);
  });
});
