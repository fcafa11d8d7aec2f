/**
 * Runs one spec on every backend under test, with that backend's tolerances.
 *
 * The backends under test are wasm and cpu, plus "wasm-openblas" (wasm with OpenBLAS computing
 * the matrix products and LU) when EBFLOW_REQUIRE_BLAS=1, unless the environment variable
 * EBFLOW_TEST_BACKENDS lists others, comma-separated (for example "tensorflow,wasm" on a machine
 * with `@tensorflow/tfjs-node`).
 */
import { after, before, describe } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { useBackend, type BackendName } from '../../src/backend/select.js';
import { loadNativeBlas, nativeBlas } from '../../src/tensor/native-blas.js';
import { installWasmBlasKernel, uninstallWasmBlasKernel } from '../../src/tensor/wasm-blas-kernel.js';
import { installSharedIdentityKernel } from '../../src/tensor/wasm-identity.js';
import { installInPlaceSliceKernels } from '../../src/tensor/wasm-slice.js';
import { installRowSumKernel } from '../../src/tensor/wasm-sum.js';

/** A backend label of `selectBackend`, or "wasm-openblas" for wasm with OpenBLAS products. */
export type TestBackendName = BackendName | 'wasm-openblas';

/** How closely a float32 backend's result must match a float64 reference. */
export interface Tolerance {
  /** Allowed |actual − expected| / |expected| for values of magnitude above `absolute`/`relative`. */
  relative: number;
  /** Allowed |actual − expected| near zero. */
  absolute: number;
}

export interface BackendUnderTest {
  name: TestBackendName;
  /** Tolerance for a value computed by a few float32 operations (an element-wise function and its derivatives). */
  elementwise: Tolerance;
  /** Tolerance for sums of many float32 products (matrix products, log-determinants). */
  accumulated: Tolerance;
}

/**
 * Tolerances per backend. All four backends compute in float32 (machine epsilon 1.2e-7); the
 * bounds leave room for a few dozen rounding steps and for summation order.
 */
const TOLERANCES: Record<TestBackendName, Omit<BackendUnderTest, 'name'>> = {
  cpu: { elementwise: { relative: 2e-5, absolute: 1e-6 }, accumulated: { relative: 1e-4, absolute: 1e-5 } },
  wasm: { elementwise: { relative: 2e-5, absolute: 1e-6 }, accumulated: { relative: 1e-4, absolute: 1e-5 } },
  'wasm-openblas': { elementwise: { relative: 2e-5, absolute: 1e-6 }, accumulated: { relative: 1e-4, absolute: 1e-5 } },
  tensorflow: { elementwise: { relative: 2e-5, absolute: 1e-6 }, accumulated: { relative: 1e-4, absolute: 1e-5 } },
  'tensorflow-gpu': { elementwise: { relative: 1e-4, absolute: 1e-5 }, accumulated: { relative: 1e-3, absolute: 1e-4 } },
};

/** Returns the backends this test run covers, with their tolerances. */
export function backendsUnderTest(): BackendUnderTest[] {
  const listed = process.env.EBFLOW_TEST_BACKENDS?.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const defaults = process.env.EBFLOW_REQUIRE_BLAS === '1' ? ['wasm', 'cpu', 'wasm-openblas'] : ['wasm', 'cpu'];
  const names = listed === undefined || listed.length === 0 ? defaults : listed;
  return names.map((name) => {
    if (!(name in TOLERANCES)) {
      const allowed = Object.keys(TOLERANCES).join(', ');
      throw new Error(`EBFLOW_TEST_BACKENDS: unknown backend '${name}'; expected a comma-separated list of ${allowed}.`);
    }
    return { name: name as TestBackendName, ...TOLERANCES[name as TestBackendName] };
  });
}

/**
 * Defines one `describe` block per backend under test; `define` registers the tests of that
 * block and receives the backend with its tolerances. The block switches backends before its
 * first test and checks that its tests left no tensors behind.
 */
export function forEachBackend(define: (backend: BackendUnderTest) => void): void {
  for (const backend of backendsUnderTest()) {
    describe(`on ${backend.name}`, () => {
      let tensorsBefore = 0;
      before(async () => {
        if (backend.name === 'wasm' || backend.name === 'wasm-openblas') {
          // The kernels that backend selection installs on wasm for training, so tests run them too.
          await useBackend('wasm');
          installSharedIdentityKernel();
          installInPlaceSliceKernels();
          installRowSumKernel();
        }
        if (backend.name === 'wasm-openblas') {
          await useBackend('wasm');
          const status = await loadNativeBlas();
          const blas = nativeBlas();
          if (blas === null) throw new Error(`wasm-openblas: OpenBLAS did not load: ${status.state === 'off' ? status.reason : ''}`);
          installWasmBlasKernel(blas);
        } else {
          uninstallWasmBlasKernel();
          await useBackend(backend.name);
        }
        tensorsBefore = tf.memory().numTensors;
      });
      after(() => {
        if (backend.name === 'wasm-openblas') uninstallWasmBlasKernel();
        const leaked = tf.memory().numTensors - tensorsBefore;
        if (leaked !== 0) {
          throw new Error(`tests on ${backend.name} leaked ${leaked} tensors`);
        }
      });
      define(backend);
    });
  }
}

/** Returns |actual − expected| ≤ absolute + relative·|expected|. */
export function isClose(actual: number, expected: number, tolerance: Tolerance): boolean {
  return Math.abs(actual - expected) <= tolerance.absolute + tolerance.relative * Math.abs(expected);
}

/**
 * Returns a description of the first element of `actual` that is not close to `expected`, or
 * null when every element is close. Use it as `assert.equal(firstMismatch(...), null)`.
 */
export function firstMismatch(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: Tolerance,
  label = 'value',
): string | null {
  if (actual.length !== expected.length) {
    return `${label}: length ${actual.length}, expected ${expected.length}`;
  }
  for (let i = 0; i < actual.length; i++) {
    if (!isClose(actual[i], expected[i], tolerance)) {
      return `${label}[${i}] = ${actual[i]}, expected ${expected[i]} (difference ${Math.abs(actual[i] - expected[i]).toExponential(2)})`;
    }
  }
  return null;
}

/** Returns ‖actual − expected‖₂ / ‖expected‖₂ (the Frobenius norm for matrices). */
export function normRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let difference = 0;
  let reference = 0;
  for (let i = 0; i < actual.length; i++) {
    difference += (actual[i] - expected[i]) ** 2;
    reference += expected[i] ** 2;
  }
  return Math.sqrt(difference / reference);
}

/** Returns the largest |actual − expected| / (|expected| + floor) over the elements. */
export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>, floor = 0): number {
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const error = Math.abs(actual[i] - expected[i]) / (Math.abs(expected[i]) + floor);
    if (error > worst) worst = error;
  }
  return worst;
}
