/**
 * Timing of training iterations with tinybench, and the statistics of the samples.
 *
 * One tinybench task is one `session.step()`. The step resolves only after the backend has
 * finished the iteration (the session reads the loss back), so the clock stops after the work is
 * done. Warm-up iterations run through tinybench's warm-up phase and are excluded from the
 * samples. Each duration is measured with `bench.now()` around the awaited step and handed to
 * tinybench as `overriddenDuration`, so tinybench's statistics and our in-order copy of the
 * samples are the same numbers (tinybench sorts its own copy). Memory sampling, progress events
 * and evaluations happen outside the measured interval.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Bench } from 'tinybench';

import type { PhaseTimes, StepResult, TrainingSession } from '../train/session.js';
import type { MemorySummary, TimingSummary } from './record.js';

/** Progress of one iteration, reported by the loop after it. */
export interface IterationInfo {
  phase: 'warmup' | 'timed';
  /** 1-based index within the phase. */
  index: number;
  step: StepResult;
  durationMs: number;
  /** Sum of the timed iterations' durations so far, seconds (0 during warm-up). */
  timedSeconds: number;
}

export interface StepLoopOptions {
  warmupIterations: number;
  /** Timed iterations to run; null for no limit (then `maxSeconds` must be set). */
  maxIterations: number | null;
  /** Stop once the timed iterations add up to this many seconds; null for no limit. */
  maxSeconds: number | null;
  /** Diverge when the loss is non-finite for more than this many consecutive iterations. */
  maxConsecutiveNonFinite: number;
  /** Called after every iteration, outside the timed interval; it may run evaluations. */
  afterIteration?: (info: IterationInfo) => Promise<void> | void;
  /** Returns the bytes held by tfjs tensors; sampled after every iteration. */
  tensorBytes?: () => number;
  /**
   * Runs warm-up iteration `index` (1-based) in place of `session.step()`, for work that needs a
   * step but must not slow a timed one, such as counting its operations. It must call `step` once.
   */
  warmupStep?: (index: number, step: () => Promise<StepResult>) => Promise<StepResult>;
}

export interface Divergence {
  /** The 1-based training iteration (warm-up included) at which the run of non-finite steps began. */
  step: number;
  /** That iteration's loss as text ("NaN", "Infinity", "-Infinity"), or a note when only its gradient was non-finite. */
  firstNonFiniteValue: string;
}

function describeNonFinite(step: StepResult): string {
  return Number.isFinite(step.loss) ? `non-finite gradient (loss ${step.loss})` : String(step.loss);
}

export interface StepLoopResult {
  /** Timed iteration durations, ms, in order. */
  samplesMs: number[];
  /** The timed iterations' results, in order. */
  steps: StepResult[];
  /** Warm-up iterations actually run. */
  warmupIterations: number;
  divergence: Divergence | null;
  stoppedBy: 'iterations' | 'seconds' | 'divergence';
  memory: MemorySummary;
}

/**
 * Returns the bytes held by tfjs tensors. It reads the engine's counter (the value
 * `tf.memory().numBytes` returns) without initialising a backend, so it works before one is set.
 */
export function defaultTensorBytes(): number {
  return tf.engine().state.numBytes;
}

/**
 * Runs warm-up and timed iterations of `session` and returns the timed samples. Cost: the
 * iterations themselves plus O(1) per iteration.
 *
 * Plan:
 * 1. Build a tinybench Bench with exactly `warmupIterations` warm-up and `maxIterations` timed
 *    iterations (time budgets 0, so iteration counts decide), aborted early by a signal when the
 *    seconds budget is spent or the loss diverges.
 * 2. In the task, time one awaited `session.step()`, then outside the timed interval sample memory,
 *    track non-finite losses and call `afterIteration`.
 * 3. Return the in-order samples; a failing step or callback rejects with its error.
 */
export async function runStepLoop(session: TrainingSession, options: StepLoopOptions): Promise<StepLoopResult> {
  if (options.maxIterations === null && options.maxSeconds === null) {
    throw new RangeError('runStepLoop: maxIterations and maxSeconds are both null; set at least one so the loop ends');
  }
  const tensorBytes = options.tensorBytes ?? defaultTensorBytes;

  // 1. The bench.
  const stop = new AbortController();
  const warmup = options.warmupIterations;
  const bench = new Bench({
    iterations: options.maxIterations ?? Number.MAX_SAFE_INTEGER,
    time: 0,
    warmup: warmup > 0,
    warmupIterations: warmup,
    warmupTime: 0,
    retainSamples: true,
    throws: true,
    signal: stop.signal,
  });

  const samplesMs: number[] = [];
  const steps: StepResult[] = [];
  let phase: 'warmup' | 'run' = 'warmup';
  let warmupRun = 0;
  let timedSeconds = 0;
  let streak = 0;
  /** Training iterations run so far, warm-up included. */
  let iteration = 0;
  let streakStart: { iteration: number; step: StepResult } | null = null;
  let divergence: Divergence | null = null;
  let stoppedBy: StepLoopResult['stoppedBy'] = 'iterations';
  let peakTensorBytes = tensorBytes();
  let peakRssBytes = process.memoryUsage.rss();

  // 2. The task: one timed step, then bookkeeping outside the timed interval.
  const iterate = async (): Promise<{ overriddenDuration: number }> => {
    const start = bench.now();
    const step =
      phase === 'warmup' && options.warmupStep !== undefined ? await options.warmupStep(warmupRun + 1, () => session.step()) : await session.step();
    const durationMs = bench.now() - start;

    peakTensorBytes = Math.max(peakTensorBytes, tensorBytes());
    peakRssBytes = Math.max(peakRssBytes, process.memoryUsage.rss());

    let index: number;
    if (phase === 'warmup') {
      warmupRun += 1;
      index = warmupRun;
    } else {
      samplesMs.push(durationMs);
      steps.push(step);
      timedSeconds += durationMs / 1000;
      index = samplesMs.length;
    }

    iteration += 1;
    if (step.finite && Number.isFinite(step.loss)) {
      streak = 0;
      streakStart = null;
    } else {
      streak += 1;
      streakStart ??= { iteration, step };
      if (streak > options.maxConsecutiveNonFinite && divergence === null) {
        divergence = { step: streakStart.iteration, firstNonFiniteValue: describeNonFinite(streakStart.step) };
        stoppedBy = 'divergence';
        stop.abort();
      }
    }
    if (divergence === null && phase === 'run' && options.maxSeconds !== null && timedSeconds >= options.maxSeconds) {
      stoppedBy = 'seconds';
      stop.abort();
    }

    if (divergence === null && options.afterIteration) {
      await options.afterIteration({ phase: phase === 'warmup' ? 'warmup' : 'timed', index, step, durationMs, timedSeconds });
      peakTensorBytes = Math.max(peakTensorBytes, tensorBytes());
      peakRssBytes = Math.max(peakRssBytes, process.memoryUsage.rss());
    }
    return { overriddenDuration: durationMs };
  };
  bench.add('session.step', iterate, {
    async: true,
    beforeAll(mode) {
      phase = mode === 'warmup' ? 'warmup' : 'run';
    },
  });

  // 3. Run.
  await bench.run();
  const task = bench.getTask('session.step');
  const recorded = task?.result && 'latency' in task.result ? task.result.latency.samplesCount : 0;
  if (recorded !== samplesMs.length) {
    throw new Error(`runStepLoop: tinybench recorded ${recorded} samples but the loop timed ${samplesMs.length}; report this as a bug`);
  }
  return {
    samplesMs,
    steps,
    warmupIterations: warmupRun,
    divergence,
    stoppedBy,
    memory: { peakTensorBytes, peakRssBytes, processMaxRssBytes: process.resourceUsage().maxRSS * 1024 },
  };
}

/** Returns the median of an ascending array (the mean of the two middle values for even length). */
export function medianOfSorted(sorted: readonly number[]): number {
  if (sorted.length === 0) return Number.NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export interface MedianInterval {
  lower: number;
  upper: number;
  /** Exact coverage probability of [lower, upper] for the population median. */
  coverage: number;
}

/**
 * Returns a distribution-free confidence interval for the median from order statistics. With n
 * samples, [X₍ⱼ₎, X₍ₙ₋ⱼ₊₁₎] covers the median with probability 1 − 2·P(Bin(n, ½) ≤ j − 1), and
 * j is the largest rank whose coverage is at least `level`. Below 6 samples no rank reaches 95%,
 * so the interval is [min, max] with its lower, exact coverage. O(n).
 */
export function medianConfidenceInterval(sorted: readonly number[], level = 0.95): MedianInterval {
  const n = sorted.length;
  if (n === 0) return { lower: Number.NaN, upper: Number.NaN, coverage: 0 };

  // j = 1 ([min, max]) is always returned, even when its coverage is below `level`.
  let lowerRank = 1;
  let cumulative = Math.exp(-n * Math.LN2); // P(Bin(n, ½) ≤ 0)
  let coverage = 1 - 2 * cumulative;
  // log C(n, k), updated in log space so that 2^-n does not underflow for large n.
  let logChoose = 0;
  for (let rank = 2; rank <= (n + 1) / 2; rank++) {
    const k = rank - 1;
    logChoose += Math.log(n - k + 1) - Math.log(k);
    cumulative += Math.exp(logChoose - n * Math.LN2); // now P(Bin ≤ rank − 1)
    const candidate = 1 - 2 * cumulative;
    if (candidate < level) break;
    lowerRank = rank;
    coverage = candidate;
  }
  return { lower: sorted[lowerRank - 1], upper: sorted[n - lowerRank], coverage };
}

/** Summarises timed samples and their phases. O(n log n) for the sort. */
export function summarizeTiming(samplesMs: readonly number[], phases: readonly PhaseTimes[], warmupIterations: number): TimingSummary | null {
  if (samplesMs.length === 0) return null;
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const interval = medianConfidenceInterval(sorted);
  const phaseMediansMs: PhaseTimes = {};
  for (const key of ['preprocess', 'prepare', 'forwardBackward', 'update'] as const) {
    const values = phases.map((p) => p[key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    if (values.length > 0) phaseMediansMs[key] = medianOfSorted(values.sort((a, b) => a - b));
  }
  return {
    warmupIterations,
    samplesMs: [...samplesMs],
    medianMs: medianOfSorted(sorted),
    medianCiMs: [interval.lower, interval.upper],
    medianCiLevel: interval.coverage,
    meanMs: samplesMs.reduce((sum, value) => sum + value, 0) / samplesMs.length,
    phaseMediansMs,
  };
}
