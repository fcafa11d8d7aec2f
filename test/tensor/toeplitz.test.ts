import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../../src/backend/select.js';
import { RandomStream } from '../../src/random/stream.js';
import { conv2dSame, conv2dSameTranspose } from '../../src/tensor/conv.js';
import { SameConvolution, transposedToeplitz } from '../../src/tensor/toeplitz.js';
import { wasmBlasKernelInstalled } from '../../src/tensor/wasm-blas-kernel.js';
import { normRelativeError } from '../helpers/backends.js';

const SHAPES: Array<[number, number, number]> = [
  [6, 5, 1],
  [4, 4, 3],
];

function gaussian(random: RandomStream, shape: number[]): tf.Tensor {
  const size = shape.reduce((p, d) => p * d, 1);
  return tf.tensor(random.normalArray(size), shape);
}

describe('Toeplitz convolution', () => {
  let tensorsBefore = 0;

  before(async () => {
    await selectBackend('wasm');
    tensorsBefore = tf.memory().numTensors;
  });

  after(() => {
    assert.equal(tf.memory().numTensors - tensorsBefore, 0, 'the Toeplitz specs leaked tensors');
  });

  for (const shape of SHAPES) {
    const label = `[${shape.join(', ')}]`;

    test(`Tᵀ rows are convolved basis images, ${label}`, () => {
      const dimension = shape[0] * shape[1] * shape[2];
      const random = new RandomStream(21);
      const [actual, expected] = tf.tidy(() => {
        const filter = gaussian(random, [3, 3, shape[2], shape[2]]) as tf.Tensor4D;
        const basis = tf.reshape(tf.eye(dimension), [dimension, ...shape]) as tf.Tensor4D;
        return [transposedToeplitz(filter, shape).dataSync(), conv2dSame(basis, filter).dataSync()];
      });
      assert.ok(normRelativeError(actual, expected) < 1e-6);
    });

    test(`filter gradient equals the convolution's, ${label}`, () => {
      const random = new RandomStream(22);
      const [dense, direct] = tf.tidy(() => {
        const filter = gaussian(random, [3, 3, shape[2], shape[2]]) as tf.Tensor4D;
        const x = gaussian(random, [5, ...shape]) as tf.Tensor4D;
        const weights = gaussian(random, [5, ...shape]);
        const viaToeplitz = tf.grad((f: tf.Tensor) => {
          const rows = tf.reshape(x, [5, -1]);
          const y = tf.matMul(rows, transposedToeplitz(f as tf.Tensor4D, shape));
          return tf.sum(tf.mul(tf.reshape(y, weights.shape), weights));
        })(filter);
        const viaConvolution = tf.grad((f: tf.Tensor) => tf.sum(tf.mul(conv2dSame(x, f as tf.Tensor4D), weights)))(filter);
        return [viaToeplitz.dataSync(), viaConvolution.dataSync()];
      });
      assert.ok(normRelativeError(dense, direct) < 1e-5);
    });

    test(`SameConvolution equals conv2dSame and its adjoint, ${label}`, () => {
      const random = new RandomStream(23);
      const results = tf.tidy(() => {
        const filter = gaussian(random, [3, 3, shape[2], shape[2]]) as tf.Tensor4D;
        const x = gaussian(random, [4, ...shape]) as tf.Tensor4D;
        const convolution = new SameConvolution(filter, shape);
        return [
          convolution.apply(x).dataSync(),
          conv2dSame(x, filter).dataSync(),
          convolution.applyTranspose(x).dataSync(),
          conv2dSameTranspose(x, filter).dataSync(),
        ];
      });
      assert.ok(normRelativeError(results[0], results[1]) < 1e-5, 'apply');
      assert.ok(normRelativeError(results[2], results[3]) < 1e-5, 'applyTranspose');
    });
  }

  /** Returns Tᵀ and the filter gradient for a fixed upstream gradient, on the active backend. */
  function toeplitzAndGradient(filterValues: Float32Array, upstreamValues: Float32Array, shape: [number, number, number], kernel: number) {
    return tf.tidy(() => {
      const filter = tf.tensor4d(filterValues, [kernel, kernel, shape[2], shape[2]]);
      const dimension = shape[0] * shape[1] * shape[2];
      const upstream = tf.tensor2d(upstreamValues, [dimension, dimension]);
      const { value, grads } = tf.valueAndGrads((f: tf.Tensor) => tf.sum(tf.mul(transposedToeplitz(f as tf.Tensor4D, shape), upstream)))([filter]);
      value.dispose();
      return { operator: transposedToeplitz(filter, shape).dataSync(), gradient: grads[0]!.dataSync() };
    });
  }

  for (const [shape, kernel] of [[[6, 5, 1], 3], [[4, 4, 4], 3], [[5, 3, 8], 5], [[7, 7, 16], 7], [[3, 4, 3], 5]] as Array<[[number, number, number], number]>) {
    test(`wasm kernels equal the entry list, [${shape.join(', ')}] K = ${kernel}`, async () => {
      const random = new RandomStream(24);
      const dimension = shape[0] * shape[1] * shape[2];
      const filterValues = random.normalArray(kernel * kernel * shape[2] * shape[2]);
      const upstreamValues = random.normalArray(dimension * dimension);
      const onWasm = toeplitzAndGradient(filterValues, upstreamValues, shape, kernel);
      await selectBackend('cpu');
      try {
        const fromList = toeplitzAndGradient(filterValues, upstreamValues, shape, kernel);
        assert.deepEqual(onWasm.operator, fromList.operator);
        assert.deepEqual(onWasm.gradient, fromList.gradient);
      } finally {
        await selectBackend('wasm');
      }
    });
  }

  test('dense second derivative in x', (t) => {
    if (!wasmBlasKernelInstalled()) return t.skip('OpenBLAS not loaded');
    const random = new RandomStream(24);
    // A second derivative in x through the dense form: d/dx of <∇ₓ Σ w⊙conv(x)², x>.
    const [dense, direct] = tf.tidy(() => {
      const shape: [number, number, number] = [5, 5, 2];
      const filter = gaussian(random, [3, 3, 2, 2]) as tf.Tensor4D;
      const x = gaussian(random, [3, ...shape]) as tf.Tensor4D;
      const weights = gaussian(random, [3, ...shape]);
      const convolution = new SameConvolution(filter, shape);
      assert.ok(convolution.dense);
      const energy = (apply: (input: tf.Tensor4D) => tf.Tensor4D) => (input: tf.Tensor) =>
        tf.sum(tf.mul(tf.square(apply(input as tf.Tensor4D)), weights));
      const second = (apply: (input: tf.Tensor4D) => tf.Tensor4D) =>
        tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.grad(energy(apply))(input), x)))(x);
      return [second((input) => convolution.apply(input)).dataSync(), second((input) => conv2dSame(input, filter)).dataSync()];
    });
    assert.ok(normRelativeError(dense, direct) < 1e-5);
  });

  test('paired filter gradients match autodiff', (t) => {
    if (!wasmBlasKernelInstalled()) return t.skip('OpenBLAS not loaded');
    const shape: [number, number, number] = [4, 4, 2];
    const random = new RandomStream(31);
    const [paired, pairedConstant, plain] = tf.tidy(() => {
      const filter = tf.variable(gaussian(random, [3, 3, 2, 2])) as tf.Variable<tf.Rank.R4>;
      const x = gaussian(random, [3, ...shape]) as tf.Tensor4D;
      const v = gaussian(random, [3, ...shape]) as tf.Tensor4D;
      const weights = gaussian(random, [3, ...shape]);
      // The products an energy's derivatives with a direction use: one forward product of [x; v],
      // v constant in the filter. Then two adjoint products of rows that depend on the filter.
      const loss = (pairGradients: boolean, constantInput = false) => () => {
        const convolution = new SameConvolution(filter as unknown as tf.Tensor4D, shape, { pairGradients });
        const [y, tangent] = tf.split(convolution.apply(tf.concat([x, v], 0) as tf.Tensor4D, { constantInput }), 2, 0);
        const back = convolution.applyTranspose(tf.concat([tf.tanh(y), tf.mul(y, tangent)], 0) as tf.Tensor4D);
        const again = convolution.applyTranspose(tf.mul(back, tf.concat([weights, weights], 0)) as tf.Tensor4D);
        return tf.sum(tf.square(again)) as tf.Scalar;
      };
      const gradientOf = (pairGradients: boolean, constantInput = false) =>
        tf.variableGrads(loss(pairGradients, constantInput), [filter]).grads[filter.name].dataSync();
      const result = [gradientOf(true), gradientOf(true, true), gradientOf(false)];
      filter.dispose();
      return result;
    });
    assert.ok(normRelativeError(paired, plain) < 1e-5, `relative error ${normRelativeError(paired, plain)}`);
    assert.ok(normRelativeError(pairedConstant, plain) < 1e-5, `relative error ${normRelativeError(pairedConstant, plain)}`);
  });

  test('transposedToeplitz rejects even kernels and empty images', () => {
    const even = tf.zeros([4, 4, 1, 1]) as tf.Tensor4D;
    const odd = tf.zeros([3, 3, 1, 1]) as tf.Tensor4D;
    assert.throws(() => transposedToeplitz(even, [6, 6, 1]), /needs an odd kernel size, received 4; use K = 5/);
    assert.throws(() => transposedToeplitz(odd, [0, 6, 1]), /image sizes must be positive integers, received \[0, 6, 1\]/);
    tf.dispose([even, odd]);
  });

  test('transposedToeplitz rejects a mismatched filter', () => {
    const filter = tf.zeros([3, 3, 2, 2]) as tf.Tensor4D;
    try {
      assert.throws(() => transposedToeplitz(filter, [4, 4, 3]), /expected a filter \[K, K, 3, 3\] for images \[4, 4, 3\], received \[3, 3, 2, 2\]/);
    } finally {
      filter.dispose();
    }
  });
});
