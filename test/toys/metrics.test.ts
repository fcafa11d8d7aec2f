import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { RandomStream } from '../../src/random/stream.js';
import { createCouplingFlow2d } from '../../src/toys/coupling-flow.js';
import { generatePoints } from '../../src/toys/datasets.js';
import { flowLogDensity } from '../../src/toys/density.js';
import { GaussianKdeOracle, type DensityOracle, type DensityValues } from '../../src/toys/kde-oracle.js';
import { ToyLinearLayer } from '../../src/toys/layers.js';
import { createEvaluationSet, createKdeEvaluationSet, evaluateFlowDensity, toyMetrics } from '../../src/toys/metrics.js';
import type { ToyFlow } from '../../src/toys/toy-flow.js';
import { forEachBackend } from '../helpers/backends.js';

const LOG_TWO_PI = Math.log(2 * Math.PI);

/** The exact standard normal N(0, I₂), as an oracle. */
class StandardNormalOracle implements DensityOracle {
  readonly dimension = 2;
  evaluate(points: ArrayLike<number>, count: number): DensityValues {
    const logDensity = new Float64Array(count);
    const score = new Float64Array(count * 2);
    for (let i = 0; i < count; i++) {
      const [x0, x1] = [points[2 * i], points[2 * i + 1]];
      logDensity[i] = -0.5 * (x0 * x0 + x1 * x1) - LOG_TWO_PI;
      score[2 * i] = -x0;
      score[2 * i + 1] = -x1;
    }
    return { logDensity, score };
  }
}

/** Creates a flow that is the single affine map z = W x + b, so q = N(−W⁻¹b, (WᵀW)⁻¹). */
function gaussianFlow(w: number[], b: number[]): ToyFlow {
  const model = createCouplingFlow2d({ random: new RandomStream(0), blocks: 0 });
  const layer = model.layers[0] as ToyLinearLayer;
  tf.tidy(() => {
    layer.weight.assign(tf.tensor2d(w, [2, 2]));
    layer.bias.assign(tf.tensor1d(b));
  });
  return model;
}

/** ln p of a Gaussian KDE by the direct sum, in float64. */
function directKde(centres: Float32Array, count: number, dimension: number, sigma: number, x: number[]): { logDensity: number; score: number[] } {
  let sum = 0;
  const weighted = new Array<number>(dimension).fill(0);
  for (let j = 0; j < count; j++) {
    let squared = 0;
    for (let d = 0; d < dimension; d++) squared += (x[d] - centres[j * dimension + d]) ** 2;
    const weight = Math.exp(-squared / (2 * sigma * sigma));
    sum += weight;
    for (let d = 0; d < dimension; d++) weighted[d] += (weight * (centres[j * dimension + d] - x[d])) / (sigma * sigma);
  }
  const logDensity = Math.log(sum / count) - 0.5 * dimension * Math.log(2 * Math.PI * sigma * sigma);
  return { logDensity, score: weighted.map((value) => value / sum) };
}

function meanAndStandardError(values: number[]): { mean: number; standardError: number } {
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1);
  return { mean, standardError: Math.sqrt(variance / values.length) };
}

describe('Gaussian KDE oracle', () => {
  it('matches the direct sum in 2-D and 3-D', () => {
    for (const dimension of [2, 3]) {
      const random = new RandomStream(dimension);
      const centres = random.normalArray(60 * dimension).map((v) => 2 * v);
      const points = random.normalArray(15 * dimension).map((v) => 2.5 * v);
      const oracle = new GaussianKdeOracle(centres, 60, dimension, 0.375);
      const values = oracle.evaluate(points, 15);
      for (let i = 0; i < 15; i++) {
        const x = Array.from(points.subarray(i * dimension, (i + 1) * dimension));
        const expected = directKde(centres, 60, dimension, 0.375, x);
        assert.ok(Math.abs(values.logDensity[i] - expected.logDensity) < 1e-9, `D=${dimension} ln p at ${i}: ${values.logDensity[i]} vs ${expected.logDensity}`);
        for (let d = 0; d < dimension; d++) {
          assert.ok(Math.abs(values.score[i * dimension + d] - expected.score[d]) < 1e-8, `D=${dimension} score at ${i}, ${d}`);
        }
      }
    }
  });

  it('with one centre is the Gaussian N(b, σ²I)', () => {
    const oracle = new GaussianKdeOracle([1, -2], 1, 2, 0.5);
    const values = oracle.evaluate([3, 1, 1, -2], 2);
    const expected = (x: number[]) => -((x[0] - 1) ** 2 + (x[1] + 2) ** 2) / (2 * 0.25) - Math.log(2 * Math.PI * 0.25);
    assert.ok(Math.abs(values.logDensity[0] - expected([3, 1])) < 1e-12);
    assert.ok(Math.abs(values.logDensity[1] - expected([1, -2])) < 1e-12);
    assert.deepEqual(Array.from(values.score.subarray(0, 2)), [(1 - 3) / 0.25, (-2 - 1) / 0.25]);
  });

  it('stays finite far from every centre', () => {
    const oracle = new GaussianKdeOracle([0, 0, 1, 0], 2, 2, 0.375);
    const values = oracle.evaluate([100, 0], 1);
    // The nearer centre (1, 0) dominates: ln p ≈ −99²/(2σ²) − ln 2 − ln(2πσ²).
    const expected = -(99 ** 2) / (2 * 0.375 ** 2) - Math.log(2) - Math.log(2 * Math.PI * 0.375 ** 2);
    assert.ok(Number.isFinite(values.logDensity[0]));
    assert.ok(Math.abs(values.logDensity[0] - expected) < 1e-6 * Math.abs(expected), `${values.logDensity[0]} vs ${expected}`);
    assert.ok(Math.abs(values.score[0] - (1 - 100) / 0.375 ** 2) < 1e-6);
  });

  it('evaluation set perturbs the first test points', () => {
    const test = generatePoints('sine', 50, new RandomStream(1));
    const set = createKdeEvaluationSet(test, 0.375, new RandomStream(2), 20);
    const noise = new RandomStream(2).normalArray(40);
    assert.equal(set.count, 20);
    for (let k = 0; k < 40; k++) assert.equal(set.points[k], Math.fround(test.values[k] + 0.375 * noise[k]));
    const direct = directKde(test.values.subarray(0, 40), 20, 2, 0.375, [set.points[0], set.points[1]]);
    assert.ok(Math.abs(set.oracle.logDensity[0] - direct.logDensity) < 1e-9);
  });
});

forEachBackend(() => {
  describe('toy metrics against closed forms', () => {
    const count = 4000;
    const points = new RandomStream(3).normalArray(count * 2);
    const set = createEvaluationSet(points, count, new StandardNormalOracle());

    it('the exact model has zero KL and zero Fisher divergence', () => {
      const model = gaussianFlow([1, 0, 0, 1], [0, 0]);
      const metrics = toyMetrics(model, set, 'gaussian');
      assert.ok(Math.abs(metrics.kl) < 1e-5, `kl ${metrics.kl}`);
      assert.ok(metrics.fisher < 1e-10, `fisher ${metrics.fisher}`);
      assert.equal(metrics.nonFinite, 0);
      assert.equal(metrics.points, count);
      model.dispose();
    });

    it('a Gaussian model gives the closed-form KL and Fisher divergence', () => {
      const w = [1.4, 0.3, -0.2, 0.7];
      const b = [0.5, -0.4];
      const model = gaussianFlow(w, b);
      const metrics = toyMetrics(model, set, 'gaussian');

      // p = N(0, I), q = N(μ, A⁻¹) with A = WᵀW, Wμ = −b, ln det A = 2 ln|det W|.
      const a = [w[0] ** 2 + w[2] ** 2, w[0] * w[1] + w[2] * w[3], w[0] * w[1] + w[2] * w[3], w[1] ** 2 + w[3] ** 2];
      const logDetW = Math.log(Math.abs(w[0] * w[3] - w[1] * w[2]));
      const klClosed = 0.5 * (a[0] + a[3] + b[0] ** 2 + b[1] ** 2 - 2 - 2 * logDetW);
      // s_p − s_q = (A − I)x − Aμ with Aμ = −Wᵀb: E½‖·‖² = ½[tr((A − I)²) + ‖Wᵀb‖²].
      const traceSquare = (a[0] - 1) ** 2 + 2 * a[1] * a[2] + (a[3] - 1) ** 2;
      const wtb = [w[0] * b[0] + w[2] * b[1], w[1] * b[0] + w[3] * b[1]];
      const fisherClosed = 0.5 * (traceSquare + wtb[0] ** 2 + wtb[1] ** 2);

      // The same Monte-Carlo averages in float64.
      const klTerms: number[] = [];
      const fisherTerms: number[] = [];
      const referenceTerms: number[] = [];
      for (let i = 0; i < count; i++) {
        const x = [points[2 * i], points[2 * i + 1]];
        const z = [w[0] * x[0] + w[1] * x[1] + b[0], w[2] * x[0] + w[3] * x[1] + b[1]];
        const logQ = -0.5 * (z[0] ** 2 + z[1] ** 2) - LOG_TWO_PI + logDetW;
        const logP = -0.5 * (x[0] ** 2 + x[1] ** 2) - LOG_TWO_PI;
        const scoreDifference = [-x[0] + w[0] * z[0] + w[2] * z[1], -x[1] + w[1] * z[0] + w[3] * z[1]];
        klTerms.push(logP - logQ);
        referenceTerms.push(-logQ + Math.exp(logP) * logP);
        fisherTerms.push(0.5 * (scoreDifference[0] ** 2 + scoreDifference[1] ** 2));
      }
      const kl = meanAndStandardError(klTerms);
      const fisher = meanAndStandardError(fisherTerms);
      const reference = meanAndStandardError(referenceTerms);
      assert.ok(Math.abs(metrics.kl - kl.mean) < 1e-4, `kl ${metrics.kl} vs float64 ${kl.mean}`);
      assert.ok(Math.abs(metrics.fisher - fisher.mean) < 1e-4 * fisher.mean, `fisher ${metrics.fisher} vs float64 ${fisher.mean}`);
      assert.ok(Math.abs(metrics.klReference - reference.mean) < 1e-4, `klReference ${metrics.klReference} vs float64 ${reference.mean}`);
      assert.ok(Math.abs(metrics.kl - klClosed) < 4 * kl.standardError, `kl ${metrics.kl} vs closed form ${klClosed} ± ${kl.standardError}`);
      assert.ok(Math.abs(metrics.fisher - fisherClosed) < 4 * fisher.standardError, `fisher ${metrics.fisher} vs closed form ${fisherClosed} ± ${fisher.standardError}`);
      assert.ok(Math.abs(metrics.kl - metrics.klReference) > 1, 'the authors\' quantity differs from the KL by about E[ln p*] (2.8 nats here)');
      model.dispose();
    });

    it('the Laplace base gives −D ln 2 − Σ|z| and score −sign(z)', () => {
      const model = gaussianFlow([1, 0, 0, 1], [0, 0]);
      const values = evaluateFlowDensity(model, set, 'laplace', 1000);
      for (const i of [0, 1, 2, 3999]) {
        const [x0, x1] = [points[2 * i], points[2 * i + 1]];
        assert.ok(Math.abs(values.logDensity[i] - (-2 * Math.LN2 - Math.abs(x0) - Math.abs(x1))) < 1e-5, `ln q at ${i}`);
        assert.deepEqual([values.score[2 * i], values.score[2 * i + 1]], [-Math.sign(x0), -Math.sign(x1)]);
      }
      const gaussian = tf.tidy(() => flowLogDensity(model, tf.tensor2d([0.5, -1], [1, 2]), 'gaussian').dataSync()[0]);
      assert.ok(Math.abs(gaussian - (-0.5 * 1.25 - LOG_TWO_PI)) < 1e-6);
      model.dispose();
    });

    it('a non-finite model density makes the metrics NaN and is counted', () => {
      const model = gaussianFlow([1, 0, 0, 0], [0, 0]);
      const metrics = toyMetrics(model, createEvaluationSet(points.subarray(0, 20), 10, new StandardNormalOracle()), 'gaussian');
      assert.equal(metrics.nonFinite, 10);
      assert.ok(Number.isNaN(metrics.kl), `kl ${metrics.kl}`);
      assert.ok(Number.isNaN(metrics.fisher), `fisher ${metrics.fisher}`);
      model.dispose();
    });
  });
});
