/**
 * The metrics of EBFlow's 2-D experiments (Chao et al., NeurIPS 2023, Table 1): divergences of
 * the model density q from the oracle p* on a fixed evaluation set x_i = b_i + σ·ε_i (b_i the test
 * points, σ = 0.375, ε_i ~ N(0, I)), which are samples of p*:
 *
 *   kl          = mean_i [ln p*(x_i) − ln q(x_i)]                (Monte-Carlo estimate of KL(p*‖q))
 *   klReference = mean_i [−ln q(x_i) + p*(x_i)·ln p*(x_i)]        (what the authors' code reports)
 *   fisher      = mean_i ½‖s*(x_i) − ∇ₓ ln q(x_i)‖²               (Fisher divergence)
 *
 * The authors' KL adds p*·ln p* where the estimator needs ln p*, so their number is the model's
 * NLL shifted by a model-independent constant: it ranks models like the proper KL but is not a
 * divergence (it can be negative). Both are reported.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { EnergyFlow } from '../models/energy-flow.js';
import type { RandomStream } from '../random/stream.js';
import type { PointSet } from './datasets.js';
import { flowLogDensityAndScore, type BaseDistribution } from './density.js';
import { GaussianKdeOracle, type DensityOracle, type DensityValues } from './kde-oracle.js';

/** A fixed set of evaluation points with the oracle's values there. */
export interface EvaluationSet {
  /** Row-major points x_i, in float32 as the model receives them. */
  points: Float32Array;
  count: number;
  dimension: number;
  /** ln p* and s* at the points. */
  oracle: DensityValues;
}

/** The divergences of one model from the oracle. */
export interface ToyMetrics {
  /** mean_i [ln p*(x_i) − ln q(x_i)], nats. */
  kl: number;
  /** mean_i [−ln q(x_i) + p*(x_i)·ln p*(x_i)], nats: the authors' reported quantity. */
  klReference: number;
  /** mean_i ½‖s*(x_i) − s_q(x_i)‖². */
  fisher: number;
  /** Evaluation points. */
  points: number;
  /** Points where ln q or its score was not finite; when above 0 the metrics are NaN. */
  nonFinite: number;
}

/**
 * Builds the evaluation set of the authors' 2-D experiments: x_i = b_i + σ·ε_i for the first
 * `count` test points b_i (all of them by default), with the oracle p* the Gaussian KDE of those
 * same b_i at bandwidth σ. Draws count·D normals from `random`. O(count²·D) for the oracle.
 */
export function createKdeEvaluationSet(test: PointSet, bandwidth: number, random: RandomStream, count = test.count): EvaluationSet {
  if (!Number.isInteger(count) || count < 1 || count > test.count) {
    throw new RangeError(`createKdeEvaluationSet: count must be an integer in [1, ${test.count}], received ${count}`);
  }
  const { dimension } = test;
  const centres = test.values.subarray(0, count * dimension);
  const noise = random.normalArray(count * dimension);
  const points = new Float32Array(count * dimension);
  for (let k = 0; k < points.length; k++) points[k] = centres[k] + bandwidth * noise[k];
  const oracle = new GaussianKdeOracle(centres, count, dimension, bandwidth);
  return { points, count, dimension, oracle: oracle.evaluate(points, count) };
}

/** Builds an evaluation set of given points against any oracle. O(the oracle's cost). */
export function createEvaluationSet(points: Float32Array, count: number, oracle: DensityOracle): EvaluationSet {
  return { points, count, dimension: oracle.dimension, oracle: oracle.evaluate(points, count) };
}

/**
 * Returns ln q and ∇ₓ ln q at the set's points in float64 arrays, `chunkRows` points per
 * forward and backward pass. O(count · cost of one forward row).
 */
export function evaluateFlowDensity(model: EnergyFlow, set: EvaluationSet, base: BaseDistribution, chunkRows = 2048): DensityValues {
  const { count, dimension } = set;
  const logDensity = new Float64Array(count);
  const score = new Float64Array(count * dimension);
  for (let start = 0; start < count; start += chunkRows) {
    const rows = Math.min(chunkRows, count - start);
    const x = tf.tensor2d(set.points.subarray(start * dimension, (start + rows) * dimension), [rows, dimension]);
    const values = flowLogDensityAndScore(model, x, base);
    logDensity.set(values.logDensity.dataSync(), start);
    score.set(values.score.dataSync(), start * dimension);
    tf.dispose([x, values.logDensity, values.score]);
  }
  return { logDensity, score };
}

/** Returns the metrics of model values `model` against the set's oracle (both in float64). O(count·D). */
export function divergences(set: EvaluationSet, model: DensityValues): ToyMetrics {
  const { count, dimension, oracle } = set;
  let klSum = 0;
  let referenceSum = 0;
  let fisherSum = 0;
  let nonFinite = 0;
  for (let i = 0; i < count; i++) {
    const logQ = model.logDensity[i];
    let squaredDifference = 0;
    for (let d = 0; d < dimension; d++) {
      squaredDifference += (oracle.score[i * dimension + d] - model.score[i * dimension + d]) ** 2;
    }
    if (!Number.isFinite(logQ) || !Number.isFinite(squaredDifference)) nonFinite += 1;
    const logP = oracle.logDensity[i];
    klSum += logP - logQ;
    referenceSum += -logQ + Math.exp(logP) * logP;
    fisherSum += 0.5 * squaredDifference;
  }
  const mean = (sum: number): number => (nonFinite > 0 ? Number.NaN : sum / count);
  return { kl: mean(klSum), klReference: mean(referenceSum), fisher: mean(fisherSum), points: count, nonFinite };
}

/**
 * Returns the KL, the authors' KL-type quantity and the Fisher divergence of the model from the
 * oracle on `set`, with q the model's density under `base`. Evaluate with the EMA weights in
 * place. O(count · cost of one forward and backward row).
 */
export function toyMetrics(model: EnergyFlow, set: EvaluationSet, base: BaseDistribution): ToyMetrics {
  return divergences(set, evaluateFlowDensity(model, set, base));
}
