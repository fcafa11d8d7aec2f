/**
 * Small statistics for the reports: medians with distribution-free intervals, means with Student-t
 * intervals, and ordinary least squares with a t-interval on the slope. Plain numbers, float64.
 */

/** A mean over runs with its 95% Student-t interval; `halfWidth` is null with fewer than 2 values. */
export interface MeanInterval {
  mean: number;
  halfWidth: number | null;
  count: number;
}

/** A median with its 95% order-statistic interval; the interval is null with fewer than 6 values. */
export interface MedianInterval {
  median: number;
  low: number | null;
  high: number | null;
  count: number;
}

/** Returns the median of `values` (mean of the two middle values for even counts). O(n log n). */
export function median(values: readonly number[]): number {
  if (values.length === 0) {
    throw new Error('median: received an empty list; pass at least one value.');
  }
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Returns the median and its 95% confidence interval from order statistics, [x_(j), x_(n+1−j)]
 * with the largest j for which the Binomial(n, ½) tail P(X ≤ j−1) is at most 0.025. The interval
 * needs no distributional assumption and is null for n < 6, where even [min, max] covers less than
 * 95%. O(n log n).
 */
export function medianWithInterval(values: readonly number[]): MedianInterval {
  const sorted = [...values].sort((a, b) => a - b);
  const count = sorted.length;
  const center = median(sorted);
  const rank = medianIntervalRank(count);
  if (rank === 0) {
    return { median: center, low: null, high: null, count };
  }
  return { median: center, low: sorted[rank - 1], high: sorted[count - rank], count };
}

/** Returns the 1-based rank j of the lower bound of the 95% median interval, or 0 if none exists. O(n). */
export function medianIntervalRank(count: number): number {
  // Walk the Binomial(n, ½) probabilities in log space so large n does not underflow.
  let logProbability = -count * Math.LN2;
  let tail = 0;
  let rank = 0;
  for (let k = 0; k < count; k += 1) {
    tail += Math.exp(logProbability);
    if (tail > 0.025) {
      break;
    }
    rank = k + 1;
    logProbability += Math.log((count - k) / (k + 1));
  }
  return rank;
}

/** Returns the arithmetic mean. O(n). */
export function mean(values: readonly number[]): number {
  if (values.length === 0) {
    throw new Error('mean: received an empty list; pass at least one value.');
  }
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Returns the sample standard deviation (divisor n − 1). O(n). */
export function sampleStandardDeviation(values: readonly number[]): number {
  if (values.length < 2) {
    throw new Error(`sampleStandardDeviation: received ${values.length} value(s); pass at least 2.`);
  }
  const center = mean(values);
  const squares = values.reduce((sum, value) => sum + (value - center) ** 2, 0);
  return Math.sqrt(squares / (values.length - 1));
}

/**
 * Returns the mean and the half-width t_{0.975, n−1}·s/√n of its 95% Student-t interval, the
 * convention of the "mean ± CI over 3 runs" in the EBFlow paper's tables (Chao et al., NeurIPS 2023). O(n).
 */
export function meanWithInterval(values: readonly number[]): MeanInterval {
  const center = mean(values);
  if (values.length < 2) {
    return { mean: center, halfWidth: null, count: values.length };
  }
  const standardError = sampleStandardDeviation(values) / Math.sqrt(values.length);
  return {
    mean: center,
    halfWidth: studentTQuantile(0.975, values.length - 1) * standardError,
    count: values.length,
  };
}

/** Returns ln Γ(x) for x > 0 (Lanczos approximation, g = 7, about 15 significant digits). */
export function logGamma(x: number): number {
  const coefficients = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) {
    // Reflection formula: Γ(x)Γ(1−x) = π / sin(πx).
    return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  }
  const shifted = x - 1;
  let series = coefficients[0];
  for (let i = 1; i < coefficients.length; i += 1) {
    series += coefficients[i] / (shifted + i);
  }
  const t = shifted + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (shifted + 0.5) * Math.log(t) - t + Math.log(series);
}

/**
 * Returns the regularised incomplete beta function I_x(a, b), evaluated with the modified Lentz
 * continued fraction (accurate to about 1e-14 for the arguments the t distribution needs).
 */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) {
    return 0;
  }
  if (x >= 1) {
    return 1;
  }
  const logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  // The continued fraction converges fast for x < (a+1)/(a+b+2); use the symmetry otherwise.
  if (x > (a + 1) / (a + b + 2)) {
    return 1 - regularizedIncompleteBeta(1 - x, b, a);
  }
  return (Math.exp(logFront) * betaContinuedFraction(x, a, b)) / a;
}

function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let result = d;
  for (let m = 1; m <= 300; m += 1) {
    const even = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 + even * d;
    d = 1 / (Math.abs(d) < tiny ? tiny : d);
    c = 1 + even / c;
    c = Math.abs(c) < tiny ? tiny : c;
    result *= d * c;

    const odd = (-(a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + odd * d;
    d = 1 / (Math.abs(d) < tiny ? tiny : d);
    c = 1 + odd / c;
    c = Math.abs(c) < tiny ? tiny : c;
    const step = d * c;
    result *= step;
    if (Math.abs(step - 1) < 1e-15) {
      break;
    }
  }
  return result;
}

/** Returns P(T ≤ t) for Student's t with `degreesOfFreedom` > 0. */
export function studentTCdf(t: number, degreesOfFreedom: number): number {
  const upperTail = 0.5 * regularizedIncompleteBeta(degreesOfFreedom / (degreesOfFreedom + t * t), degreesOfFreedom / 2, 0.5);
  return t >= 0 ? 1 - upperTail : upperTail;
}

/** Returns the p-quantile of Student's t (0 < p < 1) by bisection on the CDF, to about 1e-12. */
export function studentTQuantile(p: number, degreesOfFreedom: number): number {
  if (!(p > 0 && p < 1)) {
    throw new Error(`studentTQuantile: probability ${p} is outside (0, 1); pass a value strictly between 0 and 1.`);
  }
  if (!(degreesOfFreedom > 0)) {
    throw new Error(`studentTQuantile: degrees of freedom ${degreesOfFreedom} must be positive.`);
  }
  if (p < 0.5) {
    return -studentTQuantile(1 - p, degreesOfFreedom);
  }
  let low = 0;
  let high = 1;
  while (studentTCdf(high, degreesOfFreedom) < p) {
    high *= 2;
  }
  for (let i = 0; i < 200 && high - low > 1e-12 * Math.max(1, high); i += 1) {
    const middle = (low + high) / 2;
    if (studentTCdf(middle, degreesOfFreedom) < p) {
      low = middle;
    } else {
      high = middle;
    }
  }
  return (low + high) / 2;
}

/** Slope of an ordinary least-squares line with its 95% t-interval (null with fewer than 3 points). */
export interface LinearFit {
  slope: number;
  intercept: number;
  slopeHalfWidth: number | null;
  points: number;
}

/**
 * Fits y = intercept + slope·x by ordinary least squares. The slope's 95% interval is
 * t_{0.975, n−2}·sqrt(SSE/(n−2) / Σ(x−x̄)²). Returns null unless x takes at least 2 distinct values.
 * O(n).
 */
export function fitLine(xs: readonly number[], ys: readonly number[]): LinearFit | null {
  if (xs.length !== ys.length) {
    throw new Error(`fitLine: received ${xs.length} x values and ${ys.length} y values; pass equal counts.`);
  }
  const count = xs.length;
  if (count < 2) {
    return null;
  }

  const meanX = mean(xs);
  const meanY = mean(ys);
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < count; i += 1) {
    sxx += (xs[i] - meanX) ** 2;
    sxy += (xs[i] - meanX) * (ys[i] - meanY);
  }
  if (sxx === 0) {
    return null;
  }
  const slope = sxy / sxx;
  const intercept = meanY - slope * meanX;

  if (count < 3) {
    return { slope, intercept, slopeHalfWidth: null, points: count };
  }
  let residualSquares = 0;
  for (let i = 0; i < count; i += 1) {
    residualSquares += (ys[i] - intercept - slope * xs[i]) ** 2;
  }
  const slopeStandardError = Math.sqrt(residualSquares / (count - 2) / sxx);
  return {
    slope,
    intercept,
    slopeHalfWidth: studentTQuantile(0.975, count - 2) * slopeStandardError,
    points: count,
  };
}
