/**
 * Statistics of the timing gate: how much slower is "now" than the baseline, and how sure are we.
 *
 * Timing samples are skewed and carry outliers (garbage collection, a neighbour process taking the
 * core), and a slowdown multiplies times rather than adding to them. So the gate works on the
 * logarithms of the times and estimates a shift there:
 *
 * - Cells use the Hodges–Lehmann estimator (the median of all pairwise differences
 *   log y_j − log x_i) with its Mann–Whitney confidence interval (Moses' interval). It needs no
 *   distributional assumption beyond "the two samples differ by a shift", ignores a few outliers,
 *   is exact for small samples (the null distribution of U is enumerated) and is deterministic,
 *   so the same samples always give the same verdict. The interval excludes 0 exactly when the
 *   two-sided Mann–Whitney test rejects "no shift" at that level.
 * - Ratios between objectives combine four samples (two objectives, baseline and now), for which
 *   no closed-form interval exists, so they use a seeded percentile bootstrap of the difference of
 *   two Hodges–Lehmann shifts. The seed makes it deterministic too.
 *
 * Both treat the samples of one run as independent draws. Drift of the whole machine between
 * runs is not in that model. The gate's clock and calibration kernel remove part of it, and its
 * threshold (a change must also be larger than, for example, 1.25x) has to absorb the rest.
 */
import { RandomStream } from '../random/stream.js';

/** A multiplicative change between two samples: `ratio` is "now / baseline". */
export interface ChangeEstimate {
  /** Point estimate of now / baseline (exp of the estimated log shift). */
  ratio: number;
  /**
   * Confidence interval of the ratio at `confidence`. The bounds are 0 and +Infinity when the
   * samples are too few for any finite interval at that level.
   */
  interval: [number, number];
  confidence: number;
  /** Two-sided p-value of "no change". */
  pValue: number;
  method: 'mann-whitney-exact' | 'mann-whitney-normal' | 'bootstrap';
  baselineCount: number;
  currentCount: number;
}

/** Sample sizes up to which the Mann–Whitney null distribution is enumerated (n·m ≤ this). */
const EXACT_PAIR_LIMIT = 2500;

/** Returns the median of `values` (mean of the two middle values for an even count). O(n log n). */
export function median(values: readonly number[]): number {
  if (values.length === 0) {
    throw new RangeError('median: received an empty list; pass at least one value');
  }
  const sorted = Float64Array.from(values).sort();
  return medianOfSorted(sorted);
}

function medianOfSorted(sorted: Float64Array): number {
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Returns every difference current[j] − baseline[i], sorted ascending. O(nm log nm). */
export function sortedPairwiseDifferences(baseline: readonly number[], current: readonly number[]): Float64Array {
  const differences = new Float64Array(baseline.length * current.length);
  let index = 0;
  for (const y of current) {
    for (const x of baseline) {
      differences[index] = y - x;
      index += 1;
    }
  }
  return differences.sort();
}

/**
 * Returns the Hodges–Lehmann estimate of the shift from `baseline` to `current`: the median of all
 * pairwise differences current[j] − baseline[i]. O(nm log nm) for n and m values.
 */
export function hodgesLehmannShift(baseline: readonly number[], current: readonly number[]): number {
  requireSamples('hodgesLehmannShift', baseline, current, 1);
  return medianOfSorted(sortedPairwiseDifferences(baseline, current));
}

/**
 * Returns the null distribution of the Mann–Whitney statistic U (the number of pairs with
 * current > baseline) for sample sizes n and m without ties: entry u is P(U = u), u = 0 … nm.
 * Uses the recursion p(n, m, u) = n/(n+m)·p(n−1, m, u) + m/(n+m)·p(n, m−1, u−n), which walks
 * probabilities rather than counts so it cannot overflow. O(n·m·nm) time, O(m·nm) memory.
 */
export function mannWhitneyNullDistribution(n: number, m: number): Float64Array {
  if (!Number.isInteger(n) || !Number.isInteger(m) || n < 1 || m < 1) {
    throw new RangeError(`mannWhitneyNullDistribution: sample sizes must be integers ≥ 1, received n=${n}, m=${m}`);
  }
  // previous[j] is p(i−1, j, ·) and current[j] is p(i, j, ·), for j = 0 … m.
  let previous: Float64Array[] = [];
  for (let j = 0; j <= m; j += 1) previous.push(Float64Array.of(1));
  for (let i = 1; i <= n; i += 1) {
    const rows: Float64Array[] = [Float64Array.of(1)];
    for (let j = 1; j <= m; j += 1) {
      const row = new Float64Array(i * j + 1);
      const fromSmallerBaseline = previous[j];
      const fromSmallerCurrent = rows[j - 1];
      const weightBaseline = i / (i + j);
      const weightCurrent = j / (i + j);
      // Split on which sample contains the largest of all i + j values: a baseline maximum is beaten
      // by no current value (U unchanged), a current maximum beats all i baseline values (U + i).
      for (let u = 0; u < fromSmallerBaseline.length; u += 1) {
        row[u] += weightBaseline * fromSmallerBaseline[u];
      }
      for (let u = 0; u < fromSmallerCurrent.length; u += 1) {
        row[u + i] += weightCurrent * fromSmallerCurrent[u];
      }
      rows.push(row);
    }
    previous = rows;
  }
  return previous[m];
}

/**
 * Estimates the log shift from `baseline` to `current` (both already on a log scale) with the
 * Hodges–Lehmann estimator, its Mann–Whitney confidence interval at `confidence`, and the
 * two-sided Mann–Whitney p-value. Returns the shift as a ratio, exp(shift).
 *
 * The interval is [d_(k), d_(N+1−k)] over the N = nm sorted pairwise differences, with the largest
 * k for which P(U ≤ k−1) ≤ (1 − confidence)/2. U's null distribution is enumerated when
 * nm ≤ 2500 and approximated by a normal with continuity correction above. When no k ≥ 1
 * exists (for example 3 against 3 samples at 95%), the interval is unbounded: no sample of that
 * size can show a significant change. Ties count one half in U; timing samples rarely tie.
 * O(nm log nm + n·m·nm) with the enumeration, O(nm log nm) otherwise.
 */
export function mannWhitneyShift(baseline: readonly number[], current: readonly number[], confidence: number): ChangeEstimate {
  requireSamples('mannWhitneyShift', baseline, current, 1);
  requireConfidence('mannWhitneyShift', confidence);
  const n = baseline.length;
  const m = current.length;
  const pairs = n * m;
  const differences = sortedPairwiseDifferences(baseline, current);
  const shift = medianOfSorted(differences);
  const tail = (1 - confidence) / 2;

  let count = 0;
  for (const difference of differences) {
    if (difference > 0) count += 1;
    else if (difference === 0) count += 0.5;
  }

  let rank: number;
  let pValue: number;
  let method: ChangeEstimate['method'];
  if (pairs <= EXACT_PAIR_LIMIT) {
    method = 'mann-whitney-exact';
    const probabilities = mannWhitneyNullDistribution(n, m);
    const cumulative = new Float64Array(pairs + 1);
    let sum = 0;
    for (let u = 0; u <= pairs; u += 1) {
      sum += probabilities[u];
      cumulative[u] = sum;
    }
    rank = 0;
    while (rank < pairs && cumulative[rank] <= tail * (1 + 1e-12)) rank += 1;
    // U is symmetric about nm/2, so P(U ≥ u) = P(U ≤ nm − u).
    const lowerTail = cumulative[Math.min(pairs, Math.floor(count))];
    const upperTail = cumulative[Math.min(pairs, Math.floor(pairs - count))];
    pValue = Math.min(1, 2 * Math.min(lowerTail, upperTail));
  } else {
    method = 'mann-whitney-normal';
    const mean = pairs / 2;
    const deviation = Math.sqrt((pairs * (n + m + 1)) / 12);
    rank = Math.floor(mean - normalQuantile(1 - tail) * deviation + 0.5);
    rank = Math.max(0, Math.min(rank, Math.floor(pairs / 2)));
    const z = (Math.abs(count - mean) - 0.5) / deviation;
    pValue = Math.min(1, 2 * (1 - normalCdf(Math.max(0, z))));
  }

  const interval: [number, number] =
    rank >= 1 ? [Math.exp(differences[rank - 1]), Math.exp(differences[pairs - rank])] : [0, Number.POSITIVE_INFINITY];
  return { ratio: Math.exp(shift), interval, confidence, pValue, method, baselineCount: n, currentCount: m };
}

/** Options of `bootstrapRatioOfRatios`. */
export interface BootstrapOptions {
  confidence: number;
  /** Number of bootstrap resamples (2000 is plenty for a 95% percentile interval). */
  resamples: number;
  /** Seed of the resampling stream; the same seed gives the same interval. */
  seed: number;
}

/**
 * Estimates how the ratio between two quantities A and B changed between a baseline run and the
 * current run, from four log-scale samples: the log shift of A minus the log shift of B, each a
 * Hodges–Lehmann shift. Returned as a ratio: 1.3 means A/B grew 1.3x. The interval is a seeded
 * percentile bootstrap that resamples each of the four samples with replacement; the p-value is
 * twice the smaller fraction of resampled shifts on either side of 0.
 * O(resamples · (nm log nm)) for samples of sizes n and m.
 */
export function bootstrapRatioOfRatios(
  baselineA: readonly number[],
  currentA: readonly number[],
  baselineB: readonly number[],
  currentB: readonly number[],
  options: BootstrapOptions,
): ChangeEstimate {
  requireSamples('bootstrapRatioOfRatios (A)', baselineA, currentA, 1);
  requireSamples('bootstrapRatioOfRatios (B)', baselineB, currentB, 1);
  requireConfidence('bootstrapRatioOfRatios', options.confidence);
  if (!Number.isInteger(options.resamples) || options.resamples < 100) {
    throw new RangeError(`bootstrapRatioOfRatios: resamples must be an integer ≥ 100, received ${options.resamples}`);
  }
  const statistic = (a0: readonly number[], a1: readonly number[], b0: readonly number[], b1: readonly number[]): number =>
    hodgesLehmannShift(a0, a1) - hodgesLehmannShift(b0, b1);
  const estimate = statistic(baselineA, currentA, baselineB, currentB);

  const random = new RandomStream(options.seed);
  const draws = new Float64Array(options.resamples);
  let atOrBelowZero = 0;
  let atOrAboveZero = 0;
  for (let r = 0; r < options.resamples; r += 1) {
    const value = statistic(
      resample(baselineA, random),
      resample(currentA, random),
      resample(baselineB, random),
      resample(currentB, random),
    );
    draws[r] = value;
    if (value <= 0) atOrBelowZero += 1;
    if (value >= 0) atOrAboveZero += 1;
  }
  draws.sort();
  const tail = (1 - options.confidence) / 2;
  const low = quantileOfSorted(draws, tail);
  const high = quantileOfSorted(draws, 1 - tail);
  const pValue = Math.min(1, (2 * Math.min(atOrBelowZero, atOrAboveZero)) / options.resamples);
  return {
    ratio: Math.exp(estimate),
    interval: [Math.exp(low), Math.exp(high)],
    confidence: options.confidence,
    pValue,
    method: 'bootstrap',
    baselineCount: Math.min(baselineA.length, baselineB.length),
    currentCount: Math.min(currentA.length, currentB.length),
  };
}

function resample(values: readonly number[], random: RandomStream): number[] {
  const out = new Array<number>(values.length);
  for (let i = 0; i < values.length; i += 1) {
    out[i] = values[Math.floor(random.uniform() * values.length)];
  }
  return out;
}

/** Returns the q-quantile of sorted values with linear interpolation (type 7). */
function quantileOfSorted(sorted: Float64Array, q: number): number {
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(sorted.length - 1, below + 1);
  return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
}

/** Returns the standard normal CDF Φ(x), absolute error below 1e-7 (Abramowitz and Stegun 7.1.26 via erf). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const polynomial = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - polynomial * Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** Returns the standard normal quantile Φ⁻¹(p) for p in (0, 1) by bisection on `normalCdf`. */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    throw new RangeError(`normalQuantile: p must lie in (0, 1), received ${p}`);
  }
  let low = -10;
  let high = 10;
  for (let i = 0; i < 80; i += 1) {
    const middle = (low + high) / 2;
    if (normalCdf(middle) < p) low = middle;
    else high = middle;
  }
  return (low + high) / 2;
}

function requireSamples(component: string, baseline: readonly number[], current: readonly number[], minimum: number): void {
  for (const [label, values] of [
    ['baseline', baseline],
    ['current', current],
  ] as const) {
    if (values.length < minimum) {
      throw new RangeError(`${component}: the ${label} sample has ${values.length} values; pass at least ${minimum}`);
    }
    const bad = values.find((v) => !Number.isFinite(v));
    if (bad !== undefined) {
      throw new RangeError(`${component}: the ${label} sample contains ${bad}; every value must be finite`);
    }
  }
}

function requireConfidence(component: string, confidence: number): void {
  if (!(confidence > 0.5 && confidence < 1)) {
    throw new RangeError(`${component}: confidence must lie in (0.5, 1), received ${confidence}; 0.95 is usual`);
  }
}
