import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  bootstrapRatioOfRatios,
  hodgesLehmannShift,
  mannWhitneyNullDistribution,
  mannWhitneyShift,
  median,
  normalQuantile,
} from '../../src/gate/statistics.js';
import { RandomStream } from '../../src/random/stream.js';

/** P(U = u) by enumerating every way to place n baseline values among n + m ranks. */
function bruteForceDistribution(n: number, m: number): number[] {
  const counts = new Array<number>(n * m + 1).fill(0);
  let total = 0;
  const positions = n + m;
  for (let mask = 0; mask < 1 << positions; mask += 1) {
    let bits = 0;
    for (let i = 0; i < positions; i += 1) if (mask & (1 << i)) bits += 1;
    if (bits !== n) continue;
    // U counts pairs where a current rank exceeds a baseline rank.
    let u = 0;
    for (let current = 0; current < positions; current += 1) {
      if (mask & (1 << current)) continue;
      for (let base = 0; base < current; base += 1) if (mask & (1 << base)) u += 1;
    }
    counts[u] += 1;
    total += 1;
  }
  return counts.map((count) => count / total);
}

function cumulative(distribution: Float64Array, upTo: number): number {
  let sum = 0;
  for (let u = 0; u <= upTo; u += 1) sum += distribution[u];
  return sum;
}

test('null distribution matches enumeration', () => {
  for (const [n, m] of [
    [1, 1],
    [2, 3],
    [3, 4],
    [5, 4],
    [6, 6],
  ]) {
    const exact = mannWhitneyNullDistribution(n, m);
    const enumerated = bruteForceDistribution(n, m);
    assert.equal(exact.length, n * m + 1);
    enumerated.forEach((probability, u) => assert.ok(Math.abs(exact[u] - probability) < 1e-12, `n=${n} m=${m} u=${u}`));
  }
});

test('null distribution matches published critical values', () => {
  // Two-sided 5% critical values of U from the standard Mann–Whitney table: 2 (5, 5), 13 (8, 8), 23 (10, 10).
  for (const [n, critical] of [
    [5, 2],
    [8, 13],
    [10, 23],
  ]) {
    const distribution = mannWhitneyNullDistribution(n, n);
    assert.ok(cumulative(distribution, critical) <= 0.025, `n=${n}: P(U ≤ ${critical}) must be ≤ 0.025`);
    assert.ok(cumulative(distribution, critical + 1) > 0.025, `n=${n}: P(U ≤ ${critical + 1}) must exceed 0.025`);
  }
});

test('Hodges–Lehmann shift of a shifted sample', () => {
  assert.equal(hodgesLehmannShift([1, 2, 3], [2, 3, 4]), 1);
  assert.equal(hodgesLehmannShift([0, 0, 0, 10], [1, 1, 1]), 1);
  assert.equal(median([3, 1, 2, 10]), 2.5);
});

test('Mann–Whitney interval uses the table rank', () => {
  // x = 1 … 10 and y = x + 3: the 24th and 77th of the 100 sorted differences are 0 and 6.
  const x = Array.from({ length: 10 }, (_, i) => i + 1);
  const y = x.map((v) => v + 3);
  const estimate = mannWhitneyShift(x, y, 0.95);
  assert.equal(estimate.method, 'mann-whitney-exact');
  assert.ok(Math.abs(estimate.ratio - Math.exp(3)) < 1e-9);
  assert.ok(Math.abs(estimate.interval[0] - 1) < 1e-12);
  assert.ok(Math.abs(estimate.interval[1] - Math.exp(6)) < 1e-9);
});

test('Mann–Whitney p-value of complete separation', () => {
  const estimate = mannWhitneyShift([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 0.95);
  assert.ok(Math.abs(estimate.pValue - 2 / 252) < 1e-12);
  assert.ok(estimate.interval[0] > 1);
});

test('Mann–Whitney interval is unbounded for tiny samples', () => {
  // 3 against 3 values: the most extreme arrangement has probability 1/20 > 0.025.
  const estimate = mannWhitneyShift([0, 0.1, 0.2], [5, 5.1, 5.2], 0.95);
  assert.equal(estimate.interval[0], 0);
  assert.equal(estimate.interval[1], Number.POSITIVE_INFINITY);
  assert.ok(estimate.ratio > 100);
});

test('normal approximation agrees with enumeration', () => {
  const n = 60;
  const x = Array.from({ length: n }, (_, i) => i);
  const y = x.map((v) => v + 9.5);
  const approximate = mannWhitneyShift(x, y, 0.95);
  assert.equal(approximate.method, 'mann-whitney-normal');

  const distribution = mannWhitneyNullDistribution(n, n);
  let u = 0;
  for (const b of x) for (const c of y) if (c > b) u += 1;
  const exactP = 2 * (1 - cumulative(distribution, u - 1));
  assert.ok(Math.abs(approximate.pValue - exactP) < 0.002, `normal p ${approximate.pValue} vs exact ${exactP}`);

  let rank = 0;
  while (cumulative(distribution, rank) <= 0.025) rank += 1;
  const differences = y.flatMap((c) => x.map((b) => c - b)).sort((a, b) => a - b);
  const lowLog = Math.log(approximate.interval[0]);
  const candidates = [rank - 1, rank, rank + 1].map((r) => differences[r - 1]);
  assert.ok(candidates.some((d) => Math.abs(d - lowLog) < 1e-9), `lower bound ${lowLog} not within one rank of ${differences[rank - 1]}`);
});

test('normal quantile of 0.975', () => {
  assert.ok(Math.abs(normalQuantile(0.975) - 1.959964) < 1e-5);
  assert.ok(Math.abs(normalQuantile(0.5)) < 1e-9);
});

function logNormalSample(seed: number, count: number, centre: number, noise: number): number[] {
  const random = new RandomStream(seed);
  return Array.from({ length: count }, () => Math.log(centre) + noise * random.normal());
}

test('bootstrap finds a shifted ratio', () => {
  const options = { confidence: 0.95, resamples: 1000, seed: 3 };
  const estimate = bootstrapRatioOfRatios(
    logNormalSample(1, 12, 20, 0.05),
    logNormalSample(2, 12, 30, 0.05),
    logNormalSample(3, 12, 40, 0.05),
    logNormalSample(4, 12, 40, 0.05),
    options,
  );
  assert.ok(estimate.ratio > 1.4, `ratio ${estimate.ratio}`);
  assert.ok(estimate.ratio < 1.6, `ratio ${estimate.ratio}`);
  assert.ok(estimate.interval[0] > 1.3, `interval ${estimate.interval}`);
  assert.ok(estimate.pValue < 0.01);
});

test('bootstrap includes 1 without change', () => {
  const options = { confidence: 0.95, resamples: 1000, seed: 3 };
  const estimate = bootstrapRatioOfRatios(
    logNormalSample(1, 12, 20, 0.05),
    logNormalSample(2, 12, 20, 0.05),
    logNormalSample(3, 12, 40, 0.05),
    logNormalSample(4, 12, 40, 0.05),
    options,
  );
  assert.ok(estimate.interval[0] < 1, `interval ${estimate.interval}`);
  assert.ok(estimate.interval[1] > 1, `interval ${estimate.interval}`);
});

test('bootstrap repeats with its seed', () => {
  const args = [logNormalSample(1, 8, 20, 0.3), logNormalSample(2, 8, 25, 0.3), logNormalSample(3, 8, 40, 0.3), logNormalSample(4, 8, 40, 0.3)] as const;
  const first = bootstrapRatioOfRatios(...args, { confidence: 0.95, resamples: 500, seed: 9 });
  const second = bootstrapRatioOfRatios(...args, { confidence: 0.95, resamples: 500, seed: 9 });
  assert.deepEqual(first, second);
});

test('statistics reject invalid input', () => {
  assert.throws(() => mannWhitneyShift([], [1], 0.95), /baseline sample has 0 values/);
  assert.throws(() => mannWhitneyShift([1], [Number.NaN], 0.95), /contains NaN/);
  assert.throws(() => mannWhitneyShift([1], [2], 1.5), /confidence must lie in/);
});
