import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { RandomStream } from '../../src/random/stream.js';
import { inverse, logAbsDet, logAbsDetFloat64, luFactor, solve, type LinalgOptions } from '../../src/tensor/linalg.js';
import { firstMismatch, forEachBackend, maxRelativeError, normRelativeError } from '../helpers/backends.js';
import { directionalDerivative } from '../helpers/finite-difference.js';

/** Textbook float64 LU with partial pivoting, kept independent of src/tensor/lu.ts. */
function referenceLogAbsDet(values: ArrayLike<number>, n: number): number {
  const a = Float64Array.from(values);
  let logAbsDet = 0;
  for (let j = 0; j < n; j++) {
    let pivotRow = j;
    for (let i = j + 1; i < n; i++) {
      if (Math.abs(a[i * n + j]) > Math.abs(a[pivotRow * n + j])) pivotRow = i;
    }
    for (let c = 0; c < n; c++) {
      const value = a[j * n + c];
      a[j * n + c] = a[pivotRow * n + c];
      a[pivotRow * n + c] = value;
    }
    const pivot = a[j * n + j];
    logAbsDet += Math.log(Math.abs(pivot));
    for (let i = j + 1; i < n; i++) {
      const factor = a[i * n + j] / pivot;
      for (let c = j + 1; c < n; c++) a[i * n + c] -= factor * a[j * n + c];
    }
  }
  return logAbsDet;
}

/** Float64 inverse by Gauss–Jordan elimination with partial pivoting, independent of src/. */
function referenceInverse(values: ArrayLike<number>, n: number): Float64Array {
  const a = Float64Array.from(values);
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let j = 0; j < n; j++) {
    let pivotRow = j;
    for (let i = j + 1; i < n; i++) {
      if (Math.abs(a[i * n + j]) > Math.abs(a[pivotRow * n + j])) pivotRow = i;
    }
    for (const m of [a, inv]) {
      for (let c = 0; c < n; c++) {
        const value = m[j * n + c];
        m[j * n + c] = m[pivotRow * n + c];
        m[pivotRow * n + c] = value;
      }
    }
    const pivot = a[j * n + j];
    for (let c = 0; c < n; c++) {
      a[j * n + c] /= pivot;
      inv[j * n + c] /= pivot;
    }
    for (let i = 0; i < n; i++) {
      const factor = a[i * n + j];
      if (i === j || factor === 0) continue;
      for (let c = 0; c < n; c++) {
        a[i * n + c] -= factor * a[j * n + c];
        inv[i * n + c] -= factor * inv[j * n + c];
      }
    }
  }
  return inv;
}

function transpose(values: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[j * n + i] = values[i * n + j];
  return out;
}

function gaussian(random: RandomStream, n: number, scale = 1 / Math.sqrt(n)): Float32Array {
  return random.normalArray(n * n).map((value) => value * scale);
}

/** −I plus a small Gaussian perturbation: the dense layers' weights early in training. */
function nearMinusIdentity(random: RandomStream, n: number, size: number): Float32Array {
  const values = gaussian(random, n, size / Math.sqrt(n));
  for (let i = 0; i < n; i++) values[i * n + i] -= 1;
  return values;
}

/** Q·diag(s)·Qᵀ-like matrix with singular values from 1 down to 1/condition, built from Householder reflections. */
function illConditioned(random: RandomStream, n: number, condition: number): Float32Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) a[i * n + i] = Math.pow(condition, -i / (n - 1));
  // Apply H = I − 2vvᵀ on the left and another on the right (orthogonal, so singular values stay).
  for (const side of ['left', 'right']) {
    const v = Float64Array.from(random.normalArray(n));
    const norm = Math.hypot(...v);
    for (let i = 0; i < n; i++) v[i] /= norm;
    if (side === 'left') {
      for (let c = 0; c < n; c++) {
        let dot = 0;
        for (let r = 0; r < n; r++) dot += v[r] * a[r * n + c];
        for (let r = 0; r < n; r++) a[r * n + c] -= 2 * v[r] * dot;
      }
    } else {
      for (let r = 0; r < n; r++) {
        let dot = 0;
        for (let c = 0; c < n; c++) dot += a[r * n + c] * v[c];
        for (let c = 0; c < n; c++) a[r * n + c] -= 2 * dot * v[c];
      }
    }
  }
  return Float32Array.from(a);
}

/** Returns log|det W| and ∇ log|det W| from the tensor implementation. */
function valueAndGradient(values: Float32Array, n: number, options?: LinalgOptions): { value: number; grad: Float32Array } {
  const w = tf.tensor2d(values, [n, n]);
  const { value, grad } = tf.tidy(() => {
    const result = tf.valueAndGrad((matrix: tf.Tensor) => logAbsDet(matrix as tf.Tensor2D, options))(w);
    return { value: result.value.dataSync()[0], grad: result.grad.dataSync() as Float32Array };
  });
  w.dispose();
  return { value, grad };
}

test('logAbsDetFloat64 matches the textbook LU', () => {
  const random = new RandomStream(11);
  for (const n of [1, 2, 7, 65, 200]) {
    const values = gaussian(random, n);
    const expected = referenceLogAbsDet(values, n);
    const actual = logAbsDetFloat64(values, n);
    assert.ok(Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)), `n=${n}: ${actual} vs ${expected}`);
  }
});

test('luFactor returns sign and swaps', () => {
  // det [[0, 2], [3, 4]] = −6: one swap, pivots 3 and 2.
  const factorization = luFactor([0, 2, 3, 4], 2);
  assert.equal(factorization.sign, -1);
  assert.deepEqual(Array.from(factorization.pivots), [1, 1]);
  assert.ok(Math.abs(factorization.logAbsDet - Math.log(6)) < 1e-15);
  assert.deepEqual(Array.from(factorization.lu), [3, 4, 0, 2]);
});

test('luFactor of a singular matrix', () => {
  const factorization = luFactor([1, 2, 3, 2, 4, 6, 1, 0, 1], 3);
  assert.equal(factorization.sign, 0);
  assert.equal(factorization.logAbsDet, Number.NEGATIVE_INFINITY);
});

test('luFactor rejects a wrong length', () => {
  assert.throws(() => luFactor([1, 2, 3], 2), /expected n×n = 2×2 values, received 3/);
});

/** Memoises a float64 reference, which several backends and options share. */
function memoize<T>(compute: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= compute());
}

interface FiniteDifferenceCase {
  values: Float32Array;
  logAbsDet: number;
  /** Indices of the checked gradient entries (all of them for small n). */
  entries: number[];
  /** Central-difference derivatives of the float64 log|det| at those entries. */
  derivatives: number[];
}

// A 50×50 finite-difference gradient costs 4 LUs per entry, so it checks 300 random entries.
const FINITE_DIFFERENCE_ENTRIES = 300;

const finiteDifferenceCases = new Map<number, () => FiniteDifferenceCase>(
  [6, 50].map((n) => [
    n,
    memoize(() => {
      const random = new RandomStream(n);
      const values = gaussian(random, n, n < 10 ? 1 : 1 / Math.sqrt(n));
      const entries =
        n * n <= FINITE_DIFFERENCE_ENTRIES
          ? Array.from({ length: n * n }, (_, i) => i)
          : Array.from(random.permutation(n * n).subarray(0, FINITE_DIFFERENCE_ENTRIES));
      const point = Float64Array.from(values);
      const derivatives = entries.map((entry) => {
        const unit = new Float64Array(n * n);
        unit[entry] = 1;
        return directionalDerivative((x) => referenceLogAbsDet(x, n), point, unit, 1, 1e-4);
      });
      return { values, logAbsDet: referenceLogAbsDet(values, n), entries, derivatives };
    }),
  ]),
);

function finiteDifferenceCase(n: number): FiniteDifferenceCase {
  return finiteDifferenceCases.get(n)!();
}

const blockedCases = memoize(() => {
  const n = 300;
  const random = new RandomStream(5);
  return [
    { label: 'gaussian', values: gaussian(random, n) },
    { label: 'near −I', values: nearMinusIdentity(random, n, 0.1) },
  ].map(({ label, values }) => ({
    label,
    values,
    logAbsDet: referenceLogAbsDet(values, n),
    inverseTransposed: transpose(referenceInverse(values, n), n),
  }));
});

forEachBackend((backend) => {
  for (const n of [6, 50]) {
    test(`logAbsDet ${n}×${n} value and gradient match finite differences`, () => {
      const { values, logAbsDet: reference, entries, derivatives } = finiteDifferenceCase(n);
      const { value, grad } = valueAndGradient(values, n);
      assert.equal(firstMismatch([value], [reference], backend.accumulated, 'log|det|'), null);
      const error = normRelativeError(
        entries.map((entry) => grad[entry]),
        derivatives,
      );
      // A float32 inverse is accurate to about ε·cond(W) ≈ 1.2e-7 × 100 for these Gaussian
      // matrices; LAPACK's came to 1.04e-5 at n = 50 with the current draw.
      assert.ok(error < 3e-5, `relative gradient error ${error} over ${entries.length} entries`);
    });
  }

  test('logAbsDet 300×300 blocked path matches float64', () => {
    const n = 300;
    for (const { label, values, logAbsDet: reference, inverseTransposed } of blockedCases()) {
      for (const options of [{ blockSize: 16, products: 'backend' }, { blockSize: 8, products: 'float64' }, {}] as LinalgOptions[]) {
        const { value, grad } = valueAndGradient(values, n, options);
        const where = `${label} ${JSON.stringify(options)}`;
        assert.ok(Math.abs(value - reference) <= 1e-4 * Math.max(1, Math.abs(reference)), `${where}: ${value} vs ${reference}`);
        const error = normRelativeError(grad, inverseTransposed);
        if (process.env.EBFLOW_PRINT_ERRORS) console.log(`${where}: log|det| error ${Math.abs(value - reference)}, gradient error ${error}`);
        assert.ok(error < 1e-4, `${where}: relative gradient error ${error}`);
      }
    }
  });

  test('logAbsDet of an ill-conditioned matrix', () => {
    const n = 120;
    const values = illConditioned(new RandomStream(6), n, 1e5);
    const reference = referenceLogAbsDet(values, n);
    const { value } = valueAndGradient(values, n, { blockSize: 16, products: 'backend' });
    assert.ok(Math.abs(value - reference) <= 1e-4 * Math.abs(reference), `${value} vs ${reference}`);
  });

  test('logAbsDet gradient flows through a product', () => {
    // d/da log|det(a·W)| = n/a for a scalar a.
    const n = 20;
    const w = tf.tensor2d(gaussian(new RandomStream(8), n), [n, n]);
    const scale = tf.scalar(1.7);
    const derivative = tf.tidy(() => tf.grad((a: tf.Tensor) => logAbsDet(tf.mul(a, w) as tf.Tensor2D))(scale).dataSync()[0]);
    tf.dispose([w, scale]);
    assert.ok(Math.abs(derivative - n / 1.7) < 1e-3, `${derivative} vs ${n / 1.7}`);
  });

  test('repeated solves reuse scratch without stale values', () => {
    const random = new RandomStream(19);
    const n = 40;
    for (let round = 0; round < 3; round++) {
      const w = tf.tensor2d(gaussian(random, n), [n, n]);
      const b = tf.tensor2d(random.normalArray(n * (round + 1)), [n, round + 1]);
      const residual = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.matMul(w, solve(w, b)), b))).dataSync()[0]);
      tf.dispose([w, b]);
      assert.ok(residual < 1e-6 * n * n, `round ${round}: ‖W·X − B‖max = ${residual}`);
    }
  });

  test('inverse and solve leave small residuals', () => {
    const random = new RandomStream(9);
    for (const n of [5, 64, 300]) {
      for (const options of [{}, { blockSize: 16, products: 'backend' }] as LinalgOptions[]) {
        const values = gaussian(random, n);
        const w = tf.tensor2d(values, [n, n]);
        const b = tf.tensor2d(random.normalArray(n * 3), [n, 3]);
        const residuals = tf.tidy(() => {
          const inverseResidual = tf.sub(tf.matMul(w, inverse(w, options)), tf.eye(n));
          const solveResidual = tf.sub(tf.matMul(w, solve(w, b, options)), b);
          return [tf.max(tf.abs(inverseResidual)).dataSync()[0], tf.max(tf.abs(solveResidual)).dataSync()[0]];
        });
        tf.dispose([w, b]);
        // Gaussian n×n matrices scaled by 1/√n have condition numbers of order n.
        const bound = 1e-6 * n * n;
        assert.ok(residuals[0] < bound, `n=${n} ${JSON.stringify(options)}: ‖W·W⁻¹ − I‖max = ${residuals[0]}`);
        assert.ok(residuals[1] < bound, `n=${n} ${JSON.stringify(options)}: ‖W·X − B‖max = ${residuals[1]}`);
      }
    }
  });

  test('inverse matches the float64 inverse', () => {
    const n = 100;
    const values = nearMinusIdentity(new RandomStream(10), n, 0.5);
    const w = tf.tensor2d(values, [n, n]);
    const actual = tf.tidy(() => inverse(w, { blockSize: 16, products: 'backend' }).dataSync());
    w.dispose();
    const error = maxRelativeError(actual, referenceInverse(values, n), 0.1);
    assert.ok(error < 1e-5, `inverse error ${error}`);
  });

  test('singular matrices are reported', () => {
    const w = tf.tensor2d([1, 2, 2, 4], [2, 2]);
    const value = tf.tidy(() => logAbsDet(w).dataSync()[0]);
    assert.equal(value, Number.NEGATIVE_INFINITY);
    assert.throws(() => tf.tidy(() => inverse(w)), /matrix is singular \(pivot 1 is exactly 0\)/);
    w.dispose();
  });

  test('shape errors name the shape', () => {
    const w = tf.zeros([2, 3]) as tf.Tensor2D;
    const square = tf.zeros([2, 2]) as tf.Tensor2D;
    const b = tf.zeros([3, 1]) as tf.Tensor2D;
    assert.throws(() => logAbsDet(w), /logAbsDet: expected a square 2-D matrix, received shape \[2,3\]/);
    assert.throws(() => solve(square, b), /must have shape \[2, c\] to match W \[2, 2\], received \[3,1\]/);
    assert.throws(() => inverse(square, { blockSize: 1 }), /blockSize must be an integer ≥ 2, received 1/);
    tf.dispose([w, square, b]);
  });
});
