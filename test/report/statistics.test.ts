import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  fitLine,
  mean,
  meanWithInterval,
  median,
  medianIntervalRank,
  medianWithInterval,
  studentTQuantile,
} from '../../src/report/statistics.js';
import { T_975 } from './fixtures.js';

describe('report statistics', () => {
  it('median of odd and even counts', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.throws(() => median([]), /empty/);
  });

  it('median interval rank from the binomial tail', () => {
    // n = 5: P(X ≤ 0) = 1/32 > 0.025, so no 95% interval exists.
    assert.equal(medianIntervalRank(5), 0);
    // n = 6: P(X ≤ 0) = 1/64 ≤ 0.025 < P(X ≤ 1) = 7/64.
    assert.equal(medianIntervalRank(6), 1);
    // n = 18: P(X ≤ 4) = 0.0154 ≤ 0.025 < P(X ≤ 5) = 0.0481.
    assert.equal(medianIntervalRank(18), 5);
    // n = 100: P(X ≤ 39) = 0.0176 ≤ 0.025 < P(X ≤ 40) = 0.0284.
    assert.equal(medianIntervalRank(100), 40);
  });

  it('median interval of the pooled ML fixture samples', () => {
    const pooled = [100, 104, 96, 102, 98, 100, 101, 99, 103, 97, 100, 100, 100, 100, 105, 95, 100, 100];
    const result = medianWithInterval(pooled);
    assert.equal(result.median, 100);
    // Sorted: 95 96 97 98 99 100×8 101 …; ranks 5 and 14.
    assert.equal(result.low, 99);
    assert.equal(result.high, 101);
    assert.equal(result.count, 18);
    assert.equal(medianWithInterval([1, 2, 3]).low, null);
  });

  it('Student t quantiles match tables', () => {
    assert.ok(Math.abs(studentTQuantile(0.975, 1) - T_975[1]) < 1e-6);
    assert.ok(Math.abs(studentTQuantile(0.975, 2) - T_975[2]) < 1e-7);
    assert.ok(Math.abs(studentTQuantile(0.975, 30) - T_975[30]) < 1e-7);
    assert.ok(Math.abs(studentTQuantile(0.025, 2) + T_975[2]) < 1e-7);
    assert.ok(Math.abs(studentTQuantile(0.975, 1e6) - 1.959966) < 1e-5);
  });

  it('mean with t interval', () => {
    const result = meanWithInterval([1090, 1092, 1094]);
    assert.equal(result.mean, 1092);
    // s = 2, half-width = t(0.975, 2) · 2 / √3.
    assert.ok(Math.abs(result.halfWidth! - (T_975[2] * 2) / Math.sqrt(3)) < 1e-9);
    assert.equal(meanWithInterval([5]).halfWidth, null);
    assert.equal(mean([1, 2, 6]), 3);
  });

  it('least squares slope and interval by hand', () => {
    // x = 0..3, y = [0, 2.1, 3.9, 6]: Sxx = 5, Sxy = 9.9, slope 1.98, SSE = 0.018.
    const fit = fitLine([0, 1, 2, 3], [0, 2.1, 3.9, 6.0])!;
    assert.ok(Math.abs(fit.slope - 1.98) < 1e-12);
    assert.ok(Math.abs(fit.intercept - 0.03) < 1e-12);
    const expectedHalfWidth = T_975[2] * Math.sqrt(0.018 / 2 / 5);
    assert.ok(Math.abs(fit.slopeHalfWidth! - expectedHalfWidth) < 1e-9);
  });

  it('least squares recovers a known power law', () => {
    const dimensions = [256, 576, 1024, 1600, 2304];
    const runtimes = dimensions.map((d) => 3e-4 * d ** 2.5);
    const fit = fitLine(dimensions.map(Math.log), runtimes.map(Math.log))!;
    assert.ok(Math.abs(fit.slope - 2.5) < 1e-9);
    assert.ok(fit.slopeHalfWidth! < 1e-6);
  });

  it('least squares edge cases', () => {
    assert.equal(fitLine([1, 1, 1], [1, 2, 3]), null);
    assert.equal(fitLine([1], [1]), null);
    const two = fitLine([0, 1], [1, 3])!;
    assert.equal(two.slope, 2);
    assert.equal(two.slopeHalfWidth, null);
    assert.throws(() => fitLine([1, 2], [1]), /equal counts/);
  });
});
