import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { epochOfIteration, learningRateForEpoch } from '../../src/train/schedule.js';

describe('learning-rate schedule', () => {
  const mnistFc = { learningRate: 1e-4, decay: 0.95, milestones: 50 };

  it('decays once per epoch until milestone M − 1', () => {
    assert.equal(learningRateForEpoch(1, mnistFc), 1e-4);
    assert.ok(Math.abs(learningRateForEpoch(2, mnistFc) - 9.5e-5) < 1e-18);
    assert.ok(Math.abs(learningRateForEpoch(3, mnistFc) - 1e-4 * 0.9025) < 1e-18);
    const final = 1e-4 * 0.95 ** 49;
    assert.ok(Math.abs(learningRateForEpoch(50, mnistFc) - final) < 1e-18);
    assert.equal(learningRateForEpoch(51, mnistFc), learningRateForEpoch(50, mnistFc));
    assert.equal(learningRateForEpoch(10_000, mnistFc), learningRateForEpoch(50, mnistFc));
  });

  it('reaches the table\'s final rates', () => {
    // lr_final = lr₀·γ^{M−1}, rounded as the reference's table prints it.
    assert.equal(Number(learningRateForEpoch(100, mnistFc).toPrecision(3)), 8.1e-6);
    assert.equal(Number(learningRateForEpoch(100, { learningRate: 1e-4, decay: 0.7, milestones: 20 }).toPrecision(3)), 1.14e-7);
    assert.equal(Number(learningRateForEpoch(100, { learningRate: 1e-4, decay: 0.85, milestones: 50 }).toPrecision(3)), 3.48e-8);
  });

  it('keeps the rate with one milestone', () => {
    assert.equal(learningRateForEpoch(7, { learningRate: 0.5, decay: 0.1, milestones: 1 }), 0.5);
  });

  it('maps iterations to 1-based epochs', () => {
    assert.equal(epochOfIteration(0, 500), 1);
    assert.equal(epochOfIteration(499, 500), 1);
    assert.equal(epochOfIteration(500, 500), 2);
    assert.equal(epochOfIteration(1234, 100), 13);
  });

  it('rejects invalid epochs', () => {
    assert.throws(() => learningRateForEpoch(0, mnistFc), /epoch must be an integer ≥ 1/);
    assert.throws(() => learningRateForEpoch(2, { ...mnistFc, milestones: 0 }), /milestones must be an integer ≥ 1/);
    assert.throws(() => epochOfIteration(-1, 10), /iteration must be an integer ≥ 0/);
  });
});
