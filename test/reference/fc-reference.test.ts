/**
 * Checks the float64 reference itself against finite differences and hand computations, so the
 * tests that hold tfjs results against it rest on a checked base.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RandomStream } from '../../src/random/stream.js';
import { directionalDerivative, gradient as numericalGradient, hessianVectorProduct } from '../helpers/finite-difference.js';
import {
  type FcReferenceModel,
  referenceDerivatives,
  referenceEnergy,
  referenceInverse,
  referenceLogAbsDet,
  referenceSolve,
  slrDerivatives,
} from './fc-reference.js';

function randomModel(dimension: number, depth: number, residual: boolean, seed: number): FcReferenceModel {
  const random = new RandomStream(seed);
  const scale = 0.5 / Math.sqrt(dimension);
  const weights: Float64Array[] = [];
  const biases: Float64Array[] = [];
  for (let l = 0; l < depth; l++) {
    const w = Float64Array.from(random.normalArray(dimension * dimension), (value) => value * scale);
    for (let i = 0; i < dimension; i++) w[i * dimension + i] -= 1;
    weights.push(w);
    biases.push(Float64Array.from(random.normalArray(dimension), (value) => 1 + 0.3 * value));
  }
  return { dimension, weights, biases, alpha: 0.3, residual };
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe('float64 FC reference', () => {
  for (const [depth, residual] of [
    [2, false],
    [3, true],
  ] as const) {
    it(`gradient and Hessian match finite differences (L = ${depth}, residual ${residual})`, () => {
      const model = randomModel(6, depth, residual, 11 + depth);
      const random = new RandomStream(5);
      const x = Float64Array.from(random.normalArray(6), (value) => 1.5 * value);
      const v = Float64Array.from(random.normalArray(6));
      const energy = (point: Float64Array): number => referenceEnergy(model, point);
      const derivatives = referenceDerivatives(model, x);

      assert.ok(Math.abs(derivatives.energy - energy(x)) < 1e-12, 'energy of both routines differs');
      assert.ok(maxAbsDifference(derivatives.gradient, numericalGradient(energy, x)) < 1e-7, 'gradient');
      const hv = new Float64Array(6);
      for (let i = 0; i < 6; i++) {
        for (let j = 0; j < 6; j++) hv[i] += derivatives.hessian[i * 6 + j] * v[j];
      }
      assert.ok(maxAbsDifference(hv, hessianVectorProduct(energy, x, v)) < 1e-5, 'Hessian-vector product');
      const quadratic = hv.reduce((total, value, i) => total + value * v[i], 0);
      assert.ok(Math.abs(quadratic - directionalDerivative(energy, x, v, 2)) < 1e-5, 'vᵀHv');
    });
  }

  it('SLR derivatives match finite differences', () => {
    for (const h of [-7, -1.2, 0, 0.4, 3.5]) {
      for (const residual of [false, true]) {
        const [, first, second, third] = slrDerivatives(h, 0.3, residual);
        const value = (t: number): number => slrDerivatives(t, 0.3, residual)[0];
        const slope = (t: number): number => slrDerivatives(t, 0.3, residual)[1];
        const numericFirst = directionalDerivative((p) => value(p[0]), Float64Array.of(h), Float64Array.of(1), 1);
        const numericSecond = directionalDerivative((p) => slope(p[0]), Float64Array.of(h), Float64Array.of(1), 1);
        const numericThird = directionalDerivative((p) => slope(p[0]), Float64Array.of(h), Float64Array.of(1), 2);
        assert.ok(Math.abs(first - numericFirst) < 1e-9, `f′(${h})`);
        assert.ok(Math.abs(second - numericSecond) < 1e-9, `f″(${h})`);
        assert.ok(Math.abs(third - numericThird) < 1e-7, `f‴(${h})`);
      }
    }
  });

  it('log-determinant and solve match a 3×3 hand computation', () => {
    // det [[2, 1, 0], [1, 3, 1], [0, 1, 4]] = 2·(12 − 1) − 1·(4 − 0) = 18.
    const matrix = [2, 1, 0, 1, 3, 1, 0, 1, 4];
    assert.ok(Math.abs(referenceLogAbsDet(matrix, 3) - Math.log(18)) < 1e-14);
    assert.ok(Math.abs(referenceLogAbsDet([0, 1, 1, 0], 2)) < 1e-14, 'a permutation has |det| = 1');
    const x = referenceSolve(matrix, [3, 5, 5], 3);
    assert.ok(maxAbsDifference(x, [1, 1, 1]) < 1e-14);
  });

  it('inverse undoes the forward map', () => {
    const model = randomModel(5, 3, false, 3);
    const x = Float64Array.of(0.3, -1.2, 2.5, 0.0, -4.0);
    // Forward to z with the same layer walk as the energy.
    let u = Float64Array.from(x);
    for (let l = 0; l < 3; l++) {
      const h = new Float64Array(5);
      for (let i = 0; i < 5; i++) {
        h[i] = model.biases[l][i];
        for (let j = 0; j < 5; j++) h[i] += model.weights[l][i * 5 + j] * u[j];
      }
      u = l < 2 ? h.map((value) => slrDerivatives(value, 0.3, false)[0]) : h;
    }
    assert.ok(maxAbsDifference(referenceInverse(model, u), x) < 1e-10);
  });
});
