/**
 * The evaluation oracle of EBFlow's 2-D experiments: the exact density of the noise-perturbed
 * empirical distribution of N points b_j, a Gaussian kernel density estimate with bandwidth σ:
 *
 *   p*(x) = (1/N) Σ_j N(x; b_j, σ²I),
 *   s*(x) = ∇ₓ ln p*(x) = Σ_j w_j(x)·(b_j − x)/σ² / Σ_j w_j(x),  w_j(x) = exp(−‖x − b_j‖²/(2σ²)).
 *
 * Computed in float64 JavaScript, in log space (a running log-sum-exp per point), so ln p* stays
 * finite far from every b_j. The authors' code computes p* directly and adds 1e-8 to the score's
 * denominator; in log space neither underflow nor the offset occurs.
 */

/** Log-densities and scores at a set of points. */
export interface DensityValues {
  /** ln p(x_i), nats, one per point. */
  logDensity: Float64Array;
  /** ∇ₓ ln p(x_i), row-major, D values per point. */
  score: Float64Array;
}

/** A density whose log and score can be evaluated exactly at given points. */
export interface DensityOracle {
  readonly dimension: number;
  /** Evaluates ln p and its score at `count` points given row-major (D values each). */
  evaluate(points: ArrayLike<number>, count: number): DensityValues;
}

/**
 * Kernel weights w_j with ln w_j below the running maximum minus this are skipped: each is
 * below e^−60 ≈ 1e-26 of the largest, so even 10⁶ of them change the sum by less than 1e-20.
 */
const NEGLIGIBLE_LOG_WEIGHT = 60;

export class GaussianKdeOracle implements DensityOracle {
  readonly dimension: number;
  readonly count: number;
  readonly bandwidth: number;
  private readonly centres: Float64Array;

  /**
   * Stores the `count` centres b_j (row-major, `dimension` values each) in float64 and the
   * bandwidth σ > 0 (0.375 in the authors' experiments).
   */
  constructor(centres: ArrayLike<number>, count: number, dimension: number, bandwidth: number) {
    if (!Number.isInteger(dimension) || dimension < 1 || !Number.isInteger(count) || count < 1 || centres.length !== count * dimension) {
      throw new RangeError(`GaussianKdeOracle: expected count × dimension = ${count} × ${dimension} centre values (count, dimension ≥ 1), received ${centres.length}`);
    }
    if (!(Number.isFinite(bandwidth) && bandwidth > 0)) {
      throw new RangeError(`GaussianKdeOracle: bandwidth must be a finite number > 0, received ${bandwidth}`);
    }
    this.dimension = dimension;
    this.count = count;
    this.bandwidth = bandwidth;
    this.centres = Float64Array.from(centres);
  }

  /**
   * Returns ln p*(x_i) and s*(x_i) at `count` points. O(count·N·D) in float64 JavaScript. Terms
   * below e^−60 of the running maximum skip the exponential, so 10,000 points against 10,000
   * centres in 2-D took 2.2 s on the 2-core project machine (shared, under load).
   */
  evaluate(points: ArrayLike<number>, count: number): DensityValues {
    const { dimension, centres } = this;
    if (!Number.isInteger(count) || count < 0 || points.length !== count * dimension) {
      throw new RangeError(`GaussianKdeOracle.evaluate: expected ${count} × ${dimension} point values, received ${points.length}`);
    }
    const inverseTwoVariance = 1 / (2 * this.bandwidth * this.bandwidth);
    const logNormaliser = -Math.log(this.count) - 0.5 * dimension * Math.log(2 * Math.PI * this.bandwidth * this.bandwidth);
    const logDensity = new Float64Array(count);
    const score = new Float64Array(count * dimension);
    const point = new Float64Array(dimension);
    // Σ_j w_j·b_j, scaled by e^{−max} like the weight sum.
    const weightedCentre = new Float64Array(dimension);

    for (let i = 0; i < count; i++) {
      for (let d = 0; d < dimension; d++) point[d] = points[i * dimension + d];
      weightedCentre.fill(0);
      let maximum = -Infinity;
      let weightSum = 0;
      for (let j = 0; j < this.count; j++) {
        const offset = j * dimension;
        let squaredDistance = 0;
        for (let d = 0; d < dimension; d++) {
          const difference = point[d] - centres[offset + d];
          squaredDistance += difference * difference;
        }
        const logWeight = -squaredDistance * inverseTwoVariance;
        if (logWeight > maximum) {
          // Rescale the running sums to the new maximum (the first term sets it).
          const rescale = Math.exp(maximum - logWeight);
          weightSum = weightSum * rescale + 1;
          for (let d = 0; d < dimension; d++) weightedCentre[d] = weightedCentre[d] * rescale + centres[offset + d];
          maximum = logWeight;
        } else if (logWeight > maximum - NEGLIGIBLE_LOG_WEIGHT) {
          const weight = Math.exp(logWeight - maximum);
          weightSum += weight;
          for (let d = 0; d < dimension; d++) weightedCentre[d] += weight * centres[offset + d];
        }
      }
      logDensity[i] = maximum + Math.log(weightSum) + logNormaliser;
      for (let d = 0; d < dimension; d++) {
        score[i * dimension + d] = (weightedCentre[d] / weightSum - point[d]) * 2 * inverseTwoVariance;
      }
    }
    return { logDensity, score };
  }
}
