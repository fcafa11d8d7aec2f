import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { RandomStream } from '../../src/random/stream.js';
import { addBias, matMul } from '../../src/tensor/matmul.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';
import { gradient, hessianVectorProduct } from '../helpers/finite-difference.js';

/** Shapes of one case: op(A) is [m, k] and op(B) is [k, n], and A and B are stored transposed when the flags are set. */
interface Layout {
  m: number;
  k: number;
  n: number;
  transposeA: boolean;
  transposeB: boolean;
  shapeA: [number, number];
  shapeB: [number, number];
}

// matMul computes some layouts of 3×4·4×5 as (op(B)ᵀ·op(A)ᵀ)ᵀ and every layout of 6×2·2×6
// directly, so the two sizes cover both paths.
const LAYOUTS: Layout[] = [
  [3, 4, 5],
  [6, 2, 6],
].flatMap(([m, k, n]) =>
  [false, true].flatMap((transposeA) =>
    [false, true].map((transposeB) => ({
      m,
      k,
      n,
      transposeA,
      transposeB,
      shapeA: (transposeA ? [k, m] : [m, k]) as [number, number],
      shapeB: (transposeB ? [n, k] : [k, n]) as [number, number],
    })),
  ),
);

/** Float64 op(A)·op(B), with A and B row-major in the stored (possibly transposed) layout. */
function product64(a: ArrayLike<number>, b: ArrayLike<number>, layout: Layout): Float64Array {
  const { m: M, k: K, n: N } = layout;
  const at = (i: number, k: number): number => (layout.transposeA ? a[k * M + i] : a[i * K + k]);
  const bt = (k: number, j: number): number => (layout.transposeB ? b[j * K + k] : b[k * N + j]);
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += at(i, k) * bt(k, j);
      c[i * N + j] = sum;
    }
  }
  return c;
}

/** The scalar test function F(A, B) = Σ wᵢⱼ·(op(A)·op(B))ᵢⱼ², float64, on the packed vector [A; B]. */
function objective64(packed: Float64Array, weights: Float64Array, layout: Layout): number {
  const c = product64(packed.subarray(0, layout.m * layout.k), packed.subarray(layout.m * layout.k), layout);
  let sum = 0;
  for (let i = 0; i < c.length; i++) sum += weights[i] * c[i] * c[i];
  return sum;
}

function objective(a: tf.Tensor, b: tf.Tensor, weights: tf.Tensor, layout: Layout): tf.Scalar {
  return tf.sum(tf.mul(weights, tf.square(matMul(a, b, layout.transposeA, layout.transposeB))));
}

function concat(...parts: ArrayLike<number>[]): Float64Array {
  return Float64Array.from(parts.flatMap((part) => Array.from(part)));
}

/** Runs `compute` in a tidy scope and returns the concatenated values of the tensors it returns. */
function readAll(compute: () => tf.Tensor[]): Float64Array {
  const tensors = tf.tidy(compute);
  const values = concat(...tensors.map((t) => t.dataSync()));
  tf.dispose(tensors);
  return values;
}

forEachBackend((backend) => {
  for (const layout of LAYOUTS) {
    const { m: M, k: K, n: N } = layout;
    const label = `${M}×${K}·${K}×${N} transposeA=${layout.transposeA} transposeB=${layout.transposeB}`;

    test(`matMul ${label} matches float64 to second order`, () => {
      const random = new RandomStream(7);
      const aValues = random.normalArray(M * K);
      const bValues = random.normalArray(K * N);
      const weights = random.normalArray(M * N);
      const direction = concat(random.normalArray(M * K), random.normalArray(K * N));
      const packed = concat(aValues, bValues);
      const weights64 = Float64Array.from(weights);

      const a = tf.tensor2d(aValues, layout.shapeA);
      const b = tf.tensor2d(bValues, layout.shapeB);
      const w = tf.tensor2d(weights, [M, N]);
      const va = tf.tensor2d(Float32Array.from(direction.subarray(0, M * K)), layout.shapeA);
      const vb = tf.tensor2d(Float32Array.from(direction.subarray(M * K)), layout.shapeB);

      const value = tf.tidy(() => matMul(a, b, layout.transposeA, layout.transposeB).dataSync());
      const firstOrder = readAll(() => tf.grads((x: tf.Tensor, y: tf.Tensor) => objective(x, y, w, layout))([a, b]));
      const secondOrder = readAll(() => {
        // ∇(⟨∇F, v⟩) = ∇²F·v.
        const directional = (x: tf.Tensor, y: tf.Tensor): tf.Scalar => {
          const [gx, gy] = tf.grads((p: tf.Tensor, q: tf.Tensor) => objective(p, q, w, layout))([x, y]);
          return tf.add(tf.sum(tf.mul(gx, va)), tf.sum(tf.mul(gy, vb)));
        };
        return tf.grads(directional)([a, b]);
      });
      tf.dispose([a, b, w, va, vb]);

      const f64 = (x: Float64Array): number => objective64(x, weights64, layout);
      assert.equal(firstMismatch(value, product64(aValues, bValues, layout), backend.accumulated, 'product'), null);
      assert.equal(firstMismatch(firstOrder, gradient(f64, packed), backend.accumulated, 'gradient'), null);
      assert.equal(firstMismatch(secondOrder, hessianVectorProduct(f64, packed, direction), backend.accumulated, 'hvp'), null);
    });
  }

  test('matMul rejects mismatched inner dimensions', () => {
    const a = tf.zeros([3, 4]);
    const b = tf.zeros([5, 4]);
    assert.throws(() => matMul(a, b), /inner dimensions differ: a is \[3,4\] with transposeA=false and b is \[5,4\]/);
    assert.doesNotThrow(() => tf.dispose(matMul(a, b, false, true)));
    const cube = tf.zeros([2, 2, 2]);
    assert.throws(() => matMul(cube, b), /must be 2-D, received shapes \[2,2,2\]/);
    tf.dispose([a, b, cube]);
  });

  test('addBias value and gradients match tf.add', () => {
    const random = new RandomStream(21);
    const x = tf.tensor4d(random.normalArray(3 * 4 * 5 * 6), [3, 4, 5, 6]);
    const bias = tf.tensor1d(random.normalArray(6));
    const upstream = tf.tensor4d(random.normalArray(3 * 4 * 5 * 6), [3, 4, 5, 6]);
    const lossOf = (sum: (a: tf.Tensor, b: tf.Tensor1D) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(sum(a, b as tf.Tensor1D), upstream)) as tf.Scalar;
    const ours = tf.grads(lossOf(addBias))([x, bias]);
    const reference = tf.grads(lossOf((a, b) => tf.add(a, b)))([x, bias]);
    const values = tf.tidy(() => [addBias(x, bias).dataSync(), tf.add(x, bias).dataSync()]);
    assert.equal(firstMismatch(values[0], values[1], backend.elementwise, 'x + b'), null);
    assert.equal(firstMismatch(ours[0].dataSync(), reference[0].dataSync(), backend.elementwise, '∂/∂x'), null);
    assert.equal(firstMismatch(ours[1].dataSync(), reference[1].dataSync(), backend.accumulated, '∂/∂b'), null);
    const wrongBias = tf.zeros([5]) as tf.Tensor1D;
    assert.throws(() => addBias(x, wrongBias), /last axis of x \[3,4,5,6\] must have the bias's 5 entries/);
    tf.dispose([x, bias, upstream, wrongBias, ...ours, ...reference]);
  });

  test('addBias bias gradient is zero without rows', () => {
    const x = tf.zeros([0, 3]);
    const bias = tf.tensor1d([1, 2, 3]);
    const [inputGradient, biasGradient] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(addBias(a, b as tf.Tensor1D)) as tf.Scalar)([x, bias]);
    assert.deepEqual(inputGradient.shape, [0, 3]);
    assert.deepEqual(Array.from(biasGradient.dataSync()), [0, 0, 0]);
    tf.dispose([x, bias, inputGradient, biasGradient]);
  });

  // On wasm with OpenBLAS, C > 1 runs the bias kernel, and seven rows leave a partial period of
  // the tiled bias whenever C is not a multiple of 4. Elsewhere addBias is tf.add itself.
  for (const channels of [1, 3, 4, 5, 12]) {
    test(`addBias equals tf.add, ${channels} channels`, () => {
      const random = new RandomStream(22 + channels);
      const x = tf.tensor2d(random.normalArray(7 * channels), [7, channels]);
      const bias = tf.tensor1d(random.normalArray(channels));
      const [ours, reference] = tf.tidy(() => [addBias(x, bias).dataSync(), tf.add(x, bias).dataSync()]);
      assert.deepEqual(Array.from(ours), Array.from(reference));
      tf.dispose([x, bias]);
    });
  }
});
