import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RandomStream } from '../../src/random/stream.js';
import { BatchSampler, DATASET_DIMENSIONS, generatePoints, generateSplits, SPLIT_SIZES, TOY_DATASET_NAMES, type PointSet } from '../../src/toys/datasets.js';

function column(points: PointSet, d: number): number[] {
  return Array.from({ length: points.count }, (_, i) => points.values[i * points.dimension + d]);
}

function mean(values: number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

describe('toy data sets', () => {
  it('splits have the authors\' sizes and dimensions', () => {
    for (const dataset of TOY_DATASET_NAMES) {
      const sizes = dataset === 'multimodal10' ? { train: 500, test: 300 } : undefined;
      const splits = generateSplits(dataset, new RandomStream(0), sizes);
      const expectedTrain = sizes?.train ?? SPLIT_SIZES[dataset].train;
      const expectedTest = sizes?.test ?? SPLIT_SIZES[dataset].test;
      assert.equal(splits.train.count, expectedTrain, `${dataset} train count`);
      assert.equal(splits.test.count, expectedTest, `${dataset} test count`);
      assert.equal(splits.train.dimension, DATASET_DIMENSIONS[dataset]);
      assert.equal(splits.train.values.length, expectedTrain * DATASET_DIMENSIONS[dataset]);
      assert.ok(splits.train.values.every(Number.isFinite), `${dataset} has non-finite values`);
    }
    assert.deepEqual(SPLIT_SIZES.sine, { train: 10_000, test: 10_000 });
    assert.deepEqual(SPLIT_SIZES.multimodal10, { train: 50_000, test: 10_000 });
  });

  it('equal seeds repeat and different seeds differ', () => {
    for (const dataset of TOY_DATASET_NAMES) {
      const first = generatePoints(dataset, 200, new RandomStream(7));
      const again = generatePoints(dataset, 200, new RandomStream(7));
      const other = generatePoints(dataset, 200, new RandomStream(8));
      assert.deepEqual(again.values, first.values, `${dataset} with the same seed`);
      assert.notDeepEqual(other.values, first.values, `${dataset} with another seed`);
    }
  });

  it('train and test splits are different draws', () => {
    const splits = generateSplits('swirl', new RandomStream(3), { train: 100, test: 100 });
    assert.notDeepEqual(splits.train.values, splits.test.values);
  });

  it('sine lies on 4·(a, sin 3a + e)', () => {
    const points = generatePoints('sine', 5000, new RandomStream(1));
    const residuals: number[] = [];
    for (let i = 0; i < points.count; i++) {
      const x = points.values[2 * i];
      const y = points.values[2 * i + 1];
      assert.ok(x >= -8, `x = ${x} below −8`);
      assert.ok(x < 8, `x = ${x} not below 8`);
      residuals.push(y / 4 - Math.sin((3 * x) / 4));
    }
    // e ~ N(0, 0.25²).
    const residualMean = mean(residuals);
    const residualStd = Math.sqrt(mean(residuals.map((r) => (r - residualMean) ** 2)));
    assert.ok(Math.abs(residualMean) < 0.02, `residual mean ${residualMean}`);
    assert.ok(Math.abs(residualStd - 0.25) < 0.015, `residual std ${residualStd}, expected 0.25`);
    assert.ok(Math.abs(mean(column(points, 0))) < 0.2, 'x is centred');
  });

  it('swirl follows its spiral radius', () => {
    const points = generatePoints('swirl', 3000, new RandomStream(2));
    const scale = 2.5 / 3;
    for (let i = 0; i < points.count; i++) {
      // point = −r·(d₁, d₂) with d₁ + 1 = −cos(n)·n + 0.5u₁ and d₂ + 2 = sin(n)·n + 0.5u₂, u ∈ [0, 1),
      // so |(d₁ + 1, d₂ + 2)| ≤ n + 0.5·√2 ≤ 3π + 0.71.
      const d1 = -points.values[2 * i] / scale;
      const d2 = -points.values[2 * i + 1] / scale;
      const radius = Math.hypot(d1 + 1, d2 + 2);
      assert.ok(radius <= 3 * Math.PI + 0.71, `radius ${radius} beyond 3π + 0.5·√2`);
    }
    const xs = column(points, 0);
    assert.ok(Math.max(...xs) - Math.min(...xs) > 10, 'the swirl spans more than 10 units');
  });

  it('checkerboard fills eight squares of a 4×4 board on [−6, 6)²', () => {
    const points = generatePoints('checkerboard', 4000, new RandomStream(3));
    const squares = new Set<string>();
    for (let i = 0; i < points.count; i++) {
      const x = points.values[2 * i];
      const y = points.values[2 * i + 1];
      for (const value of [x, y]) {
        assert.ok(value >= -6, `(${x}, ${y}) has a coordinate below −6`);
        assert.ok(value < 6, `(${x}, ${y}) has a coordinate not below 6`);
      }
      const column = Math.floor(x / 3);
      const row = Math.floor(y / 3);
      // float32 rounding can move a point onto a square's edge; skip those.
      const nearEdge = Math.abs(x / 3 - Math.round(x / 3)) < 1e-5 || Math.abs(y / 3 - Math.round(y / 3)) < 1e-5;
      if (nearEdge) continue;
      assert.equal((((column + row) % 2) + 2) % 2, 0, `(${x}, ${y}) lies on an empty square`);
      squares.add(`${column},${row}`);
    }
    assert.equal(squares.size, 8);
  });

  it('multimodal10 chains tanh(5z)·(y_{i−1} + 2^{i+1})', () => {
    const points = generatePoints('multimodal10', 2000, new RandomStream(4));
    const first = column(points, 0);
    assert.ok(Math.abs(mean(first)) < 0.1, 'y₀ ~ N(0, 1) has mean 0');
    assert.ok(Math.abs(mean(first.map((v) => v * v)) - 1) < 0.1, 'y₀ ~ N(0, 1) has variance 1');
    for (let i = 0; i < points.count; i++) {
      for (let d = 1; d < 10; d++) {
        const ratio = points.values[i * 10 + d] / (points.values[i * 10 + d - 1] + 2 * 2 ** d);
        assert.ok(Math.abs(ratio) <= 1 + 1e-5, `point ${i}: |y_${d}/(y_${d - 1} + 2^${d + 1})| = ${Math.abs(ratio)} > 1`);
      }
    }
    // tanh(5z) is ±1 for most z, so most |ratio| are near 1: the modes.
    const last = column(points, 9);
    assert.ok(last.some((v) => v > 500) && last.some((v) => v < -500), 'both signs of the last coordinate occur');
  });
});

describe('BatchSampler', () => {
  it('visits every point once per pass and continues across passes', () => {
    const values = Float32Array.from({ length: 10 }, (_, i) => i);
    const sampler = new BatchSampler({ values, count: 10, dimension: 1 }, 4, new RandomStream(5));
    const drawn = [...sampler.next(), ...sampler.next(), ...sampler.next()];
    assert.equal(drawn.length, 12);
    assert.deepEqual([...drawn.slice(0, 10)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('rejects a batch size below 1', () => {
    assert.throws(() => new BatchSampler({ values: new Float32Array(2), count: 2, dimension: 1 }, 0, new RandomStream(0)), /batchSize/);
  });
});
