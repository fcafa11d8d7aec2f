import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { RandomStream } from '../../src/random/stream.js';
import { conv2dPadded, conv2dSame, conv2dSameTranspose } from '../../src/tensor/conv.js';
import { firstMismatch, forEachBackend, maxRelativeError } from '../helpers/backends.js';
import { gradient } from '../helpers/finite-difference.js';

/** The shapes of one "same" convolution: x [B, H, W, Cin], filter [K, K, Cin, Cout]. */
interface ConvCase {
  name: string;
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  kernel: number;
}

const CASES: ConvCase[] = [
  { name: '5×5, 2→3 channels, K=3', batch: 2, height: 5, width: 5, inChannels: 2, outChannels: 3, kernel: 3 },
  { name: '6×4, 1→2 channels, K=3', batch: 2, height: 6, width: 4, inChannels: 1, outChannels: 2, kernel: 3 },
  { name: '3×3, kernel larger than image, K=5', batch: 1, height: 3, width: 3, inChannels: 2, outChannels: 2, kernel: 5 },
  // Padding 3 exceeds the 3×3 output kernel of the filter gradient, so its own gradient crops.
  { name: '3×3, padding larger than image, K=7', batch: 2, height: 3, width: 3, inChannels: 1, outChannels: 2, kernel: 7 },
  { name: '7×7, 2→3 channels, K=7', batch: 2, height: 7, width: 7, inChannels: 2, outChannels: 3, kernel: 7 },
];

const inputSize = (c: ConvCase): number => c.batch * c.height * c.width * c.inChannels;
const outputSize = (c: ConvCase): number => c.batch * c.height * c.width * c.outChannels;
const filterSize = (c: ConvCase): number => c.kernel * c.kernel * c.inChannels * c.outChannels;

// Float64 references, written as loops over the definition
//   y[b, p, q, o] = Σ_{i, j, c} F[i, j, c, o] · x[b, p + i − pad, q + j − pad, c]
// with zeros outside the image. Indices are NHWC and [K, K, Cin, Cout], row-major.

/** Visits every (sample, output pixel, tap, in channel, out channel) whose input pixel lies inside the image. */
function forEachTap(
  c: ConvCase,
  visit: (inputIndex: number, filterIndex: number, outputIndex: number) => void,
): void {
  const pad = (c.kernel - 1) / 2;
  for (let b = 0; b < c.batch; b++) {
    for (let p = 0; p < c.height; p++) {
      for (let q = 0; q < c.width; q++) {
        for (let i = 0; i < c.kernel; i++) {
          const row = p + i - pad;
          if (row < 0 || row >= c.height) continue;
          for (let j = 0; j < c.kernel; j++) {
            const column = q + j - pad;
            if (column < 0 || column >= c.width) continue;
            for (let ci = 0; ci < c.inChannels; ci++) {
              for (let o = 0; o < c.outChannels; o++) {
                visit(
                  ((b * c.height + row) * c.width + column) * c.inChannels + ci,
                  ((i * c.kernel + j) * c.inChannels + ci) * c.outChannels + o,
                  ((b * c.height + p) * c.width + q) * c.outChannels + o,
                );
              }
            }
          }
        }
      }
    }
  }
}

function convolve64(c: ConvCase, x: ArrayLike<number>, filter: ArrayLike<number>): Float64Array {
  const y = new Float64Array(outputSize(c));
  forEachTap(c, (xi, fi, yi) => {
    y[yi] += filter[fi] * x[xi];
  });
  return y;
}

/** Applies the adjoint, written as a scatter: dx[input] += F · dy[output]. */
function convolveAdjoint64(c: ConvCase, dy: ArrayLike<number>, filter: ArrayLike<number>): Float64Array {
  const dx = new Float64Array(inputSize(c));
  forEachTap(c, (xi, fi, yi) => {
    dx[xi] += filter[fi] * dy[yi];
  });
  return dx;
}

function filterGradient64(c: ConvCase, x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  const df = new Float64Array(filterSize(c));
  forEachTap(c, (xi, fi, yi) => {
    df[fi] += x[xi] * dy[yi];
  });
  return df;
}

/**
 * Returns an SSM-type loss with the energy E(x) = Σ φ(conv(x, F)), φ(y) = y²/2 + y⁴/12:
 *   L(F) = (1/B)·Σ_b [½‖∇ₓE‖² + vᵀ(∇²ₓE)v],
 * with ∇ₓE = convᵀ(φ′(y)) and vᵀ(∇²ₓE)v = Σ φ″(y)·conv(v)². Its F-gradient is a third derivative.
 */
function ssmLoss64(c: ConvCase, x: ArrayLike<number>, v: ArrayLike<number>, filter: ArrayLike<number>): number {
  const y = convolve64(c, x, filter);
  const convolvedDirection = convolve64(c, v, filter);
  const firstDerivative = y.map((value) => value + (value * value * value) / 3);
  const scoreOfEnergy = convolveAdjoint64(c, firstDerivative, filter);
  let total = 0;
  for (const value of scoreOfEnergy) total += 0.5 * value * value;
  for (let k = 0; k < y.length; k++) total += (1 + y[k] * y[k]) * convolvedDirection[k] * convolvedDirection[k];
  return total / c.batch;
}

/**
 * Returns Q(x) = ½‖∂E/∂F‖² for E = Σ φ(conv(x, F)). Its x-gradient differentiates the filter
 * gradient with respect to its input, the one path the SSM loss above does not take.
 */
function filterGradientNorm64(c: ConvCase, x: ArrayLike<number>, filter: ArrayLike<number>): number {
  const y = convolve64(c, x, filter);
  const firstDerivative = y.map((value) => value + (value * value * value) / 3);
  let total = 0;
  for (const value of filterGradient64(c, x, firstDerivative)) total += 0.5 * value * value;
  return total;
}

function filterGradientNorm(x: tf.Tensor4D, filter: tf.Tensor4D): tf.Scalar {
  const energy = (kernel: tf.Tensor): tf.Scalar => {
    const y = conv2dSame(x, kernel as tf.Tensor4D);
    return tf.sum(tf.add(tf.mul(tf.square(y), 0.5), tf.div(tf.square(tf.square(y)), 12)));
  };
  return tf.mul(tf.sum(tf.square(tf.grad(energy)(filter))), 0.5);
}

function ssmLoss(x: tf.Tensor4D, v: tf.Tensor4D, filter: tf.Tensor4D): tf.Scalar {
  const energy = (input: tf.Tensor4D): tf.Scalar => {
    const y = conv2dSame(input, filter);
    return tf.sum(tf.add(tf.mul(tf.square(y), 0.5), tf.div(tf.square(tf.square(y)), 12)));
  };
  const energyGradient = (input: tf.Tensor): tf.Tensor => tf.grad((u) => energy(u as tf.Tensor4D))(input);
  const scoreOfEnergy = energyGradient(x);
  const hessianVector = tf.grad((input) => tf.sum(tf.mul(energyGradient(input), v)))(x);
  const total = tf.add(tf.mul(tf.sum(tf.square(scoreOfEnergy)), 0.5), tf.sum(tf.mul(v, hessianVector)));
  return tf.div(total, x.shape[0]);
}

interface CaseData {
  x: Float32Array;
  filter: Float32Array;
  /** A weight on the output (the upstream gradient dy). */
  weight: Float32Array;
  direction: Float32Array;
}

function drawCase(c: ConvCase, seed: number): CaseData {
  const random = new RandomStream(seed);
  const filter = random.normalArray(filterSize(c));
  // Scale the filter so outputs stay of order 1 for every kernel size.
  const scale = 1 / Math.sqrt(c.kernel * c.kernel * c.inChannels);
  for (let k = 0; k < filter.length; k++) filter[k] *= scale;
  return {
    x: random.normalArray(inputSize(c)),
    filter,
    weight: random.normalArray(outputSize(c)),
    direction: random.rademacherArray(inputSize(c)),
  };
}

function tensors(c: ConvCase, data: CaseData): { x: tf.Tensor4D; filter: tf.Tensor4D; weight: tf.Tensor4D; direction: tf.Tensor4D } {
  return {
    x: tf.tensor4d(data.x, [c.batch, c.height, c.width, c.inChannels]),
    filter: tf.tensor4d(data.filter, [c.kernel, c.kernel, c.inChannels, c.outChannels]),
    weight: tf.tensor4d(data.weight, [c.batch, c.height, c.width, c.outChannels]),
    direction: tf.tensor4d(data.direction, [c.batch, c.height, c.width, c.inChannels]),
  };
}

forEachBackend((backend) => {
  CASES.forEach((c, index) => {
    const data = drawCase(c, 100 + index);

    test(`conv2dSame value matches float64, ${c.name}`, () => {
      const actual = tf.tidy(() => {
        const { x, filter } = tensors(c, data);
        return conv2dSame(x, filter).dataSync();
      });
      const expected = convolve64(c, data.x, data.filter);
      assert.equal(firstMismatch(actual, expected, backend.accumulated, 'y'), null);
    });

    test(`conv2dSame gradients match float64, ${c.name}`, () => {
      const [inputGradient, filterGradient] = tf.tidy(() => {
        const { x, filter, weight } = tensors(c, data);
        const loss = (input: tf.Tensor4D, kernel: tf.Tensor4D): tf.Scalar => tf.sum(tf.mul(conv2dSame(input, kernel), weight));
        return tf.grads(loss as (...args: tf.Tensor[]) => tf.Scalar)([x, filter]).map((g) => g.dataSync());
      });
      assert.equal(firstMismatch(inputGradient, convolveAdjoint64(c, data.weight, data.filter), backend.accumulated, 'dx'), null);
      assert.equal(firstMismatch(filterGradient, filterGradient64(c, data.x, data.weight), backend.accumulated, 'dF'), null);
    });

    test(`conv2dSameTranspose is the float64 adjoint, ${c.name}`, () => {
      const actual = tf.tidy(() => {
        const { filter, weight } = tensors(c, data);
        return conv2dSameTranspose(weight, filter).dataSync();
      });
      const expected = convolveAdjoint64(c, data.weight, data.filter);
      assert.equal(firstMismatch(actual, expected, backend.accumulated, 'convᵀ(dy)'), null);
    });

    test(`third-order SSM gradient matches float64 finite differences, ${c.name}`, () => {
      const actual = tf.tidy(() => {
        const { x, filter, direction } = tensors(c, data);
        return tf.grad((kernel) => ssmLoss(x, direction, kernel as tf.Tensor4D))(filter).dataSync();
      });
      const expected = gradient((f) => ssmLoss64(c, data.x, data.direction, f), Float64Array.from(data.filter));
      // Each entry sums many float32 products of third-order terms, so the error is measured
      // against the gradient's largest entry.
      const largest = expected.reduce((m, value) => Math.max(m, Math.abs(value)), 0);
      const error = maxRelativeError(actual, expected, largest);
      assert.ok(largest > 1, `the loss gradient should not vanish, largest entry ${largest}`);
      assert.ok(error < 20 * backend.accumulated.relative, `third-order gradient error ${error.toExponential(2)} relative to ${largest.toFixed(2)}`);
    });
  });

  CASES.forEach((c, index) => {
    const data = drawCase(c, 200 + index);

    test(`input derivative of the filter gradient matches float64, ${c.name}`, () => {
      const actual = tf.tidy(() => {
        const { x, filter } = tensors(c, data);
        return tf.grad((input) => filterGradientNorm(input as tf.Tensor4D, filter))(x).dataSync();
      });
      const expected = gradient((input) => filterGradientNorm64(c, input, data.filter), Float64Array.from(data.x));
      const largest = expected.reduce((m, value) => Math.max(m, Math.abs(value)), 0);
      const error = maxRelativeError(actual, expected, largest);
      assert.ok(error < 20 * backend.accumulated.relative, `error ${error.toExponential(2)} relative to ${largest.toFixed(2)}`);
    });
  });

  test('conv2dSame matches tf.conv2d with same padding', () => {
    const c = CASES[0];
    const data = drawCase(c, 7);
    const [ours, builtIn] = tf.tidy(() => {
      const { x, filter } = tensors(c, data);
      return [conv2dSame(x, filter).dataSync(), tf.conv2d(x, filter, 1, 'same').dataSync()];
    });
    assert.equal(firstMismatch(ours, builtIn, backend.accumulated, 'conv2dSame vs tf.conv2d'), null);
  });

  test('conv2dPadded crops with negative padding', () => {
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
    const identity = tf.tensor4d([1], [1, 1, 1, 1]);
    const cropped = conv2dPadded(x, identity, { top: -1, bottom: 0, left: 1, right: -2 });
    assert.deepEqual(cropped.shape, [1, 2, 2, 1]);
    assert.deepEqual(Array.from(cropped.dataSync()), [0, 4, 0, 7]);
    tf.dispose([x, identity, cropped]);
  });

  test('conv2dSame rejects bad shapes with a fix', () => {
    const x = tf.zeros([1, 4, 4, 2]) as tf.Tensor4D;
    const unbatched = tf.zeros([4, 4, 2]) as unknown as tf.Tensor4D;
    const even = tf.zeros([2, 2, 2, 2]) as tf.Tensor4D;
    const wrongChannels = tf.zeros([3, 3, 3, 2]) as tf.Tensor4D;
    assert.throws(() => conv2dSame(x, even), /square with an odd size.*received 2×2/);
    assert.throws(() => conv2dSame(x, wrongChannels), /x has 2 channels but the filter expects 3/);
    assert.throws(() => conv2dSame(unbatched, even), /rank 4/);
    tf.dispose([x, unbatched, even, wrongChannels]);
  });

  test('conv2dSame gradients do not leak tensors', () => {
    const c = CASES[0];
    const { x, filter, weight, direction } = tensors(c, drawCase(c, 9));
    const before = tf.memory().numTensors;
    const gradientValue = tf.grad((kernel) => ssmLoss(x, direction, kernel as tf.Tensor4D))(filter);
    gradientValue.dispose();
    const y = conv2dSame(x, filter);
    y.dispose();
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, filter, weight, direction]);
  });
});
