import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import {
  exp,
  logSigmoid,
  sigmoid,
  slrSecondDerivative,
  slrSlope,
  slrThirdDerivative,
  smoothLeakyRelu,
  softplus,
  tanh,
  type ElementwiseFunction,
} from '../../src/tensor/elementwise.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';
import { derivative, type ScalarFunction } from '../helpers/finite-difference.js';

// Float64 references.
const sigmoid64 = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const softplus64 = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const slr64 = (alpha: number, residual: boolean) => (x: number): number =>
  (residual ? alpha + 1 : alpha) * x + (1 - alpha) * softplus64(x);
const slrLogSlope64 = (alpha: number, residual: boolean) => (x: number): number =>
  Math.log((residual ? alpha + 1 : alpha) + (1 - alpha) * sigmoid64(x));

const POINTS = [-12, -4, -1.3, -0.2, 0, 0.5, 2, 5, 12];
const EXP_POINTS = [-6, -1.3, 0, 0.5, 2.5];

interface Case {
  name: string;
  wrapper: ElementwiseFunction;
  reference: ScalarFunction;
  points: number[];
}

const CASES: Case[] = [
  { name: 'exp', wrapper: exp, reference: Math.exp, points: EXP_POINTS },
  { name: 'sigmoid', wrapper: sigmoid, reference: sigmoid64, points: POINTS },
  { name: 'softplus', wrapper: softplus, reference: softplus64, points: POINTS },
  { name: 'logSigmoid', wrapper: logSigmoid, reference: (x) => -softplus64(-x), points: POINTS },
  { name: 'tanh', wrapper: tanh, reference: Math.tanh, points: POINTS },
  { name: 'smoothLeakyRelu y', wrapper: (x) => smoothLeakyRelu(x, 0.3, false).y, reference: slr64(0.3, false), points: POINTS },
  { name: 'smoothLeakyRelu residual y', wrapper: (x) => smoothLeakyRelu(x, 0.3, true).y, reference: slr64(0.3, true), points: POINTS },
  {
    name: 'smoothLeakyRelu logSlope',
    wrapper: (x) => smoothLeakyRelu(x, 0.3, false).logSlope,
    reference: slrLogSlope64(0.3, false),
    points: POINTS,
  },
  {
    name: 'smoothLeakyRelu residual logSlope',
    wrapper: (x) => smoothLeakyRelu(x, 0.3, true).logSlope,
    reference: slrLogSlope64(0.3, true),
    points: POINTS,
  },
];

/** Returns the order-th derivative of an element-wise function at every element of `x`, by nested tf.grad. */
function nestedDerivative(f: ElementwiseFunction, x: tf.Tensor, order: number): Float32Array {
  let current = f;
  for (let k = 0; k < order; k++) {
    const inner = current;
    // For an element-wise f, the gradient of Σf is f′ element by element.
    current = (u) => tf.grad((v: tf.Tensor) => tf.sum(inner(v)))(u);
  }
  return tf.tidy(() => current(x).dataSync() as Float32Array);
}

function referenceValues(f: ScalarFunction, points: number[], order: 0 | 1 | 2 | 3): number[] {
  return points.map((t) => (order === 0 ? f(t) : derivative(f, t, order)));
}

forEachBackend((backend) => {
  for (const { name, wrapper, reference, points } of CASES) {
    test(`${name} matches float64 up to third derivative`, () => {
      const x = tf.tensor1d(points);
      for (const order of [0, 1, 2, 3] as const) {
        const actual = nestedDerivative(wrapper, x, order);
        const expected = referenceValues(reference, points, order);
        assert.equal(firstMismatch(actual, expected, backend.elementwise, `${name} derivative ${order}`), null);
      }
      x.dispose();
    });
  }

  test('softplus and logSigmoid keep relative accuracy for large |x|', () => {
    // softplus(−80) ≈ 1.8e−35 is still a normal float32; e^−200 underflows to 0.
    const points = [-200, -80, -30, -12, -5, -1e-3, 0, 1e-3, 5, 12, 30, 90, 200];
    const strict = { relative: backend.elementwise.relative, absolute: 1e-38 };
    const x = tf.tensor1d(points);
    const softplusValues = tf.tidy(() => softplus(x).dataSync());
    const logSigmoidValues = tf.tidy(() => logSigmoid(tf.neg(x)).dataSync());
    x.dispose();
    assert.equal(firstMismatch(softplusValues, points.map(softplus64), strict, 'softplus'), null);
    assert.equal(firstMismatch(logSigmoidValues, points.map((t) => -softplus64(t)), strict, 'logSigmoid(−x)'), null);
  });

  test('slr derivative helpers match float64', () => {
    for (const residual of [false, true]) {
      const f = slr64(0.3, residual);
      const x = tf.tensor1d(POINTS);
      const slope = tf.tidy(() => slrSlope(x, 0.3, residual).dataSync());
      const second = tf.tidy(() => slrSecondDerivative(x, 0.3).dataSync());
      const third = tf.tidy(() => slrThirdDerivative(x, 0.3).dataSync());
      x.dispose();
      assert.equal(firstMismatch(slope, referenceValues(f, POINTS, 1), backend.elementwise, 'slope'), null);
      assert.equal(firstMismatch(second, referenceValues(f, POINTS, 2), backend.elementwise, 'second'), null);
      assert.equal(firstMismatch(third, referenceValues(f, POINTS, 3), backend.elementwise, 'third'), null);
    }
  });

  test('slr helpers reject alpha outside [0, 1]', () => {
    const x = tf.tensor1d([0]);
    assert.throws(() => smoothLeakyRelu(x, 1.5, false), /alpha must be a number in \[0, 1\], received 1.5/);
    assert.throws(() => slrSlope(x, Number.NaN), /received NaN/);
    x.dispose();
  });

  test('wrappers do not leak tensors', () => {
    const x = tf.tensor1d(POINTS);
    const before = tf.memory().numTensors;
    for (const { wrapper } of CASES) {
      nestedDerivative(wrapper, x, 3);
      tf.tidy(() => {
        wrapper(x);
      });
    }
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
  });

  // Canary: if tfjs fixes the higher-order gradient of tanh, this fails and the wrappers above
  // may no longer be needed.
  test('built-in tf.tanh second derivative is wrong', () => {
    const points = [-1.3, 0.7];
    // f(x) = x·tanh(x); f″(x) = 2·tanh′(x) + x·tanh″(x).
    const expected = referenceValues((t) => t * Math.tanh(t), points, 2);
    const x = tf.tensor1d(points);
    const actual = nestedDerivative((u) => tf.mul(u, tf.tanh(u)), x, 2);
    const wrapped = nestedDerivative((u) => tf.mul(u, tanh(u)), x, 2);
    x.dispose();
    assert.equal(firstMismatch(wrapped, expected, backend.elementwise, 'wrapped'), null);
    for (let i = 0; i < points.length; i++) {
      const relativeError = Math.abs(actual[i] - expected[i]) / Math.abs(expected[i]);
      assert.ok(relativeError > 0.1, `tf.tanh second derivative at ${points[i]} is ${actual[i]}, expected wrong (true ${expected[i]})`);
    }
  });
});
