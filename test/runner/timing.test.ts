import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { resolveTrainingConfig } from '../../src/train/config.js';
import { medianConfidenceInterval, medianOfSorted, runStepLoop, summarizeTiming } from '../../src/runner/timing.js';
import { FakeSession } from './fake-session.js';

const config = resolveTrainingConfig({ dataset: 'synthetic', architecture: 'fc', objective: 'dsm', imageShape: [4, 4, 1] });

/** Exact binomial(n, ½) CDF with BigInt, for checking the log-space computation. */
function binomialCdf(n: number, k: number): number {
  let sum = 0n;
  let choose = 1n;
  for (let i = 0; i <= k; i++) {
    if (i > 0) choose = (choose * BigInt(n - i + 1)) / BigInt(i);
    sum += choose;
  }
  return Number((sum * 10n ** 18n) / 2n ** BigInt(n)) / 1e18;
}

describe('medianConfidenceInterval', () => {
  it('n = 20 uses ranks 6 and 15', () => {
    const sorted = Array.from({ length: 20 }, (_, i) => i + 1);
    const interval = medianConfidenceInterval(sorted);
    assert.equal(interval.lower, 6);
    assert.equal(interval.upper, 15);
    assert.ok(Math.abs(interval.coverage - 0.958610535) < 1e-8, String(interval.coverage));
  });

  it('ranks are the widest exact 95% choice', () => {
    for (let n = 6; n <= 80; n++) {
      const sorted = Array.from({ length: n }, (_, i) => i);
      const { lower, coverage } = medianConfidenceInterval(sorted);
      const rank = lower + 1;
      const expected = 1 - 2 * binomialCdf(n, rank - 1);
      assert.ok(Math.abs(coverage - expected) < 1e-9, `n=${n}: coverage ${coverage} vs ${expected}`);
      assert.ok(coverage >= 0.95, `n=${n}: coverage ${coverage} < 0.95`);
      assert.ok(1 - 2 * binomialCdf(n, rank) < 0.95, `n=${n}: rank ${rank + 1} would also reach 95%`);
    }
  });

  it('few samples give min and max', () => {
    const interval = medianConfidenceInterval([1, 2, 3, 4, 5]);
    assert.deepEqual([interval.lower, interval.upper], [1, 5]);
    assert.ok(Math.abs(interval.coverage - 0.9375) < 1e-12);
    assert.equal(medianConfidenceInterval([7]).coverage, 0);
  });

  it('large n does not underflow', () => {
    const sorted = Array.from({ length: 5000 }, (_, i) => i);
    const interval = medianConfidenceInterval(sorted);
    // Normal approximation: ranks n/2 ± 1.96·√n/2 ≈ 2500 ± 69.
    assert.ok(interval.lower > 2425, String(interval.lower));
    assert.ok(interval.lower < 2435, String(interval.lower));
    assert.equal(interval.upper, 4999 - interval.lower);
  });
});

describe('summarizeTiming', () => {
  it('median, mean and phase medians', () => {
    const summary = summarizeTiming([5, 1, 3, 2], [{ preprocess: 1, update: 4 }, { preprocess: 3 }, { preprocess: 2, update: 2 }, {}], 2);
    assert.ok(summary);
    assert.deepEqual(summary.samplesMs, [5, 1, 3, 2]);
    assert.equal(summary.medianMs, 2.5);
    assert.equal(summary.meanMs, 2.75);
    assert.equal(summary.warmupIterations, 2);
    assert.deepEqual(summary.phaseMediansMs, { preprocess: 2, update: 3 });
    assert.equal(medianOfSorted([1, 2, 3]), 2);
  });

  it('no samples gives null', () => {
    assert.equal(summarizeTiming([], [], 3), null);
  });
});

describe('runStepLoop', () => {
  it('warm-up excluded and counted', async () => {
    const session = new FakeSession(config);
    const phases: string[] = [];
    const result = await runStepLoop(session, {
      warmupIterations: 2,
      maxIterations: 5,
      maxSeconds: null,
      maxConsecutiveNonFinite: 5,
      afterIteration: (info) => {
        phases.push(`${info.phase}${info.index}`);
      },
      tensorBytes: () => 0,
    });
    assert.equal(session.steps, 7);
    assert.equal(result.warmupIterations, 2);
    assert.equal(result.samplesMs.length, 5);
    assert.deepEqual(result.steps.map((step) => step.step), [3, 4, 5, 6, 7]);
    assert.deepEqual(phases, ['warmup1', 'warmup2', 'timed1', 'timed2', 'timed3', 'timed4', 'timed5']);
    assert.equal(result.stoppedBy, 'iterations');
    assert.equal(result.divergence, null);
    assert.ok(result.samplesMs.every((ms) => ms >= 0));
  });

  it('warm-up steps go through warmupStep', async () => {
    const session = new FakeSession(config);
    const seen: number[] = [];
    const result = await runStepLoop(session, {
      warmupIterations: 3,
      maxIterations: 4,
      maxSeconds: null,
      maxConsecutiveNonFinite: 5,
      tensorBytes: () => 0,
      warmupStep: async (index, step) => {
        seen.push(index);
        return step();
      },
    });
    assert.deepEqual(seen, [1, 2, 3]);
    assert.equal(session.steps, 7);
    assert.equal(result.samplesMs.length, 4);
  });

  it('samples measure the awaited step', async () => {
    const session = new FakeSession(config, { stepDelayMs: 15 });
    const result = await runStepLoop(session, { warmupIterations: 0, maxIterations: 3, maxSeconds: null, maxConsecutiveNonFinite: 5, tensorBytes: () => 0 });
    for (const ms of result.samplesMs) assert.ok(ms >= 14, `sample ${ms} ms is shorter than the 15 ms step`);
  });

  it('seconds cap stops timing', async () => {
    const session = new FakeSession(config, { stepDelayMs: 20 });
    const result = await runStepLoop(session, { warmupIterations: 1, maxIterations: 50, maxSeconds: 0.05, maxConsecutiveNonFinite: 5, tensorBytes: () => 0 });
    assert.equal(result.stoppedBy, 'seconds');
    assert.ok(result.samplesMs.length >= 2, `timed ${result.samplesMs.length} iterations`);
    assert.ok(result.samplesMs.length <= 4, `timed ${result.samplesMs.length} iterations`);
    assert.ok(result.samplesMs.reduce((a, b) => a + b, 0) >= 50);
  });

  it('seconds budget without iteration limit', async () => {
    const session = new FakeSession(config, { stepDelayMs: 10 });
    const result = await runStepLoop(session, { warmupIterations: 0, maxIterations: null, maxSeconds: 0.04, maxConsecutiveNonFinite: 5, tensorBytes: () => 0 });
    assert.equal(result.stoppedBy, 'seconds');
    assert.ok(result.samplesMs.length >= 2, `timed ${result.samplesMs.length} iterations`);
    assert.ok(result.samplesMs.length <= 5, `timed ${result.samplesMs.length} iterations`);
  });

  it('diverges after the allowed streak', async () => {
    const session = new FakeSession(config, { nonFiniteFrom: 4 });
    const calls: number[] = [];
    const result = await runStepLoop(session, {
      warmupIterations: 0,
      maxIterations: 20,
      maxSeconds: null,
      maxConsecutiveNonFinite: 2,
      afterIteration: (info) => {
        calls.push(info.step.step);
      },
      tensorBytes: () => 0,
    });
    assert.deepEqual(result.divergence, { step: 4, firstNonFiniteValue: 'NaN' });
    assert.equal(result.stoppedBy, 'divergence');
    // Steps 4, 5, 6 are non-finite; the third one exceeds the allowed 2.
    assert.equal(session.steps, 6);
    assert.equal(result.samplesMs.length, 6);
    assert.deepEqual(calls, [1, 2, 3, 4, 5], 'afterIteration ran after the diverging step');
  });

  it('short non-finite streaks do not diverge', async () => {
    const session = new FakeSession(config, { nonFiniteSteps: [2, 3, 6], nonFiniteValue: Number.POSITIVE_INFINITY });
    const result = await runStepLoop(session, { warmupIterations: 0, maxIterations: 8, maxSeconds: null, maxConsecutiveNonFinite: 2, tensorBytes: () => 0 });
    assert.equal(result.divergence, null);
    assert.equal(result.steps.filter((step) => !step.finite).length, 3);
  });

  it('zero allowed streak diverges at once', async () => {
    const session = new FakeSession(config, { nonFiniteFrom: 3, nonFiniteValue: Number.NEGATIVE_INFINITY });
    const result = await runStepLoop(session, { warmupIterations: 0, maxIterations: 8, maxSeconds: null, maxConsecutiveNonFinite: 0, tensorBytes: () => 0 });
    assert.deepEqual(result.divergence, { step: 3, firstNonFiniteValue: '-Infinity' });
    assert.equal(session.steps, 3);
  });

  it('divergence during warm-up', async () => {
    const session = new FakeSession(config, { nonFiniteFrom: 1 });
    const result = await runStepLoop(session, { warmupIterations: 3, maxIterations: 8, maxSeconds: null, maxConsecutiveNonFinite: 1, tensorBytes: () => 0 });
    assert.deepEqual(result.divergence, { step: 1, firstNonFiniteValue: 'NaN' });
    assert.equal(result.warmupIterations, 2);
    assert.deepEqual(result.samplesMs, []);
    assert.equal(session.steps, 2, 'the loop went on after diverging in warm-up');
  });

  it('non-finite gradient counts as divergence', async () => {
    const session = new FakeSession(config, { gradientNonFiniteFrom: 2 });
    const result = await runStepLoop(session, { warmupIterations: 1, maxIterations: 8, maxSeconds: null, maxConsecutiveNonFinite: 1, tensorBytes: () => 0 });
    // Iteration 2 is the first timed one after one warm-up iteration; the count includes warm-up.
    assert.equal(result.divergence?.step, 2);
    assert.match(result.divergence?.firstNonFiniteValue ?? '', /^non-finite gradient \(loss 50\)$/);
    assert.equal(session.steps, 3);
  });

  it('step failure rejects with its error', async () => {
    const session = new FakeSession(config, { failAtStep: 3 });
    await assert.rejects(
      runStepLoop(session, { warmupIterations: 1, maxIterations: 5, maxSeconds: null, maxConsecutiveNonFinite: 5, tensorBytes: () => 0 }),
      /injected failure at step 3/,
    );
  });

  it('memory peaks sampled', async () => {
    let bytes = 100;
    const session = new FakeSession(config);
    const result = await runStepLoop(session, {
      warmupIterations: 0,
      maxIterations: 4,
      maxSeconds: null,
      maxConsecutiveNonFinite: 5,
      tensorBytes: () => (bytes += 50),
    });
    assert.equal(result.memory.peakTensorBytes, 100 + 50 * 5);
    assert.ok(result.memory.peakRssBytes > 0);
    assert.ok(result.memory.processMaxRssBytes >= result.memory.peakRssBytes * 0.5);
  });

  it('neither limit rejected', async () => {
    await assert.rejects(
      runStepLoop(new FakeSession(config), { warmupIterations: 0, maxIterations: null, maxSeconds: null, maxConsecutiveNonFinite: 5 }),
      /both null/,
    );
  });
});
