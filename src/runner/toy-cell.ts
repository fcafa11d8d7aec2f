/**
 * Running one toy cell: a 2-D coupling flow of Table 1 or a multimodal10 linear network of
 * appendix A5 of EBFlow (Chao et al., NeurIPS 2023), trained by the loops of src/toys.
 *
 * The toy loop runs every iteration itself and reports each one through its `onStep` callback, so
 * `runStepLoop` does not drive a toy cell. Its per-iteration times are the loop's own wall-clock
 * measurements (`ToyStepProgress.milliseconds`, which end after the loss and the gradient norm
 * have been read back), and its budget is a number of iterations. The runner still provides
 * everything else: iteration events with loss and ETA, the divergence rule, memory
 * peaks, the outcome union, timing statistics without the warm-up iterations, and the heat-map
 * written next to the record.
 *
 * NOTE: src/toys exposes whole runs only (`trainToy2d`, `trainMultimodal`), so toy cells cannot
 * take a seconds budget or be timed through tinybench until it offers a step-wise trainer.
 */
import type { CellPlan, ToyPlan } from '../scenarios/scenario.js';
import type { MultimodalConfig, MultimodalResult } from '../toys/multimodal.js';
import type { Toy2dConfig, Toy2dResult } from '../toys/train-2d.js';
import type { ToyStepProgress } from '../toys/training-loop.js';
import type { RunEvent } from './events.js';
import type { CellOutcome, EnvironmentInfo, MemorySummary, ResultRecord } from './record.js';
import { cellFileName } from './results.js';
import { defaultTensorBytes, summarizeTiming } from './timing.js';

/** The toy training functions a toy cell calls; tests may pass stand-ins. */
export interface ToyTrainers {
  train2d(config: Toy2dConfig, onStep: (progress: ToyStepProgress) => void): Promise<Toy2dResult>;
  trainMultimodal(config: MultimodalConfig, onStep: (progress: ToyStepProgress) => void): Promise<MultimodalResult>;
}

/**
 * Returns the trainers of src/toys, loaded on first use, that switch tfjs to `backendName` (a
 * `selectBackend` label such as "wasm") before the first cell trains.
 */
export function defaultToyTrainers(backendName: string): ToyTrainers {
  let ready: Promise<void> | null = null;
  const prepare = (): Promise<void> => {
    ready ??= import('../backend/select.js').then(({ useBackend }) => useBackend(backendName));
    return ready;
  };
  return {
    async train2d(config, onStep) {
      await prepare();
      const { trainToy2d } = await import('../toys/train-2d.js');
      return trainToy2d(config, onStep);
    },
    async trainMultimodal(config, onStep) {
      await prepare();
      const { trainMultimodal } = await import('../toys/multimodal.js');
      return trainMultimodal(config, onStep);
    },
  };
}

/** The fields of a toy cell's record that `runCell` does not fill itself. */
export type ToyCellFields = Pick<
  ResultRecord,
  'outcome' | 'timing' | 'memory' | 'losses' | 'nonFiniteLosses' | 'evaluations' | 'finalNll' | 'metrics' | 'artifacts' | 'toy'
>;

export interface ToyCellContext {
  trainers: ToyTrainers;
  environment: EnvironmentInfo;
  /** ISO time the cell started, for the record. */
  startedAt: string;
  /** Leading iterations left out of the timing samples (they train and count toward the budget). */
  warmupIterations: number;
  /** The cell diverges when more than this many consecutive updates are skipped as non-finite. */
  maxConsecutiveNonFinite: number;
  emit: (event: RunEvent) => void;
  estimateRunSeconds?: (cellEtaSeconds: number, cellElapsedSeconds: number) => number | null;
  /**
   * Writes an image next to the cell's record and returns its path relative to the record's
   * folder; without it no heat-map is written.
   */
  writeArtifact?: (fileName: string, bytes: Uint8Array) => string;
  tensorBytes?: () => number;
  /** Milliseconds, monotonic. */
  now?: () => number;
}

/** Thrown from the progress callback to stop a toy loop that diverged. */
class DivergenceStop extends Error {
  constructor(
    readonly step: number,
    readonly firstNonFiniteValue: string,
  ) {
    super(`toy cell diverged at iteration ${step}`);
    this.name = 'DivergenceStop';
  }
}

/** Returns the file name of a 2-D cell's density heat-map: the record's name with "-density.png". */
export function densityFileName(cellId: string): string {
  return cellFileName(cellId).replace(/\.json$/, '-density.png');
}

/**
 * Trains one toy cell and returns its record fields. Cost: the toy loop (B rows through the
 * objective per iteration), then for 2-D cells the KDE oracle (O(N²) at N evaluation points), the
 * metrics and a 100×100 density grid.
 *
 * Plan:
 * 1. Track every iteration from the loop's callback: losses, times, memory peaks, the divergence
 *    rule (stopping the loop by throwing), and an iteration event with loss and ETA.
 * 2. Train with the cell's toy configuration; a divergence or an error becomes the outcome, with
 *    the iterations run so far.
 * 3. For a 2-D cell, render the density heat-map and write it next to the record.
 * 4. Build the fields with the toy record builders of src/toys/record.ts and add the runner's.
 */
export async function measureToyCell(plan: CellPlan, toy: ToyPlan, context: ToyCellContext): Promise<ToyCellFields> {
  const now = context.now ?? (() => performance.now());
  const tensorBytes = context.tensorBytes ?? defaultTensorBytes;
  const cellStart = now();
  const iterations = toy.config.iterations;
  const warmup = Math.min(context.warmupIterations, iterations);

  // 1. Per-iteration tracking.
  const losses: number[] = [];
  const iterationMs: number[] = [];
  let timedSeconds = 0;
  let skippedSteps = 0;
  let streak = 0;
  let streakStart: { iteration: number; value: string } | null = null;
  const memory: MemorySummary = { peakTensorBytes: tensorBytes(), peakRssBytes: process.memoryUsage.rss(), processMaxRssBytes: 0 };
  const onStep = (progress: ToyStepProgress): void => {
    losses.push(progress.loss);
    iterationMs.push(progress.milliseconds);
    memory.peakTensorBytes = Math.max(memory.peakTensorBytes, tensorBytes());
    memory.peakRssBytes = Math.max(memory.peakRssBytes, process.memoryUsage.rss());
    const warmupPhase = progress.iteration <= warmup;
    if (!warmupPhase) timedSeconds += progress.milliseconds / 1000;

    if (progress.skipped) {
      skippedSteps += 1;
      streak += 1;
      streakStart ??= {
        iteration: progress.iteration,
        value: Number.isFinite(progress.loss) ? `non-finite gradient (loss ${progress.loss})` : String(progress.loss),
      };
      if (streak > context.maxConsecutiveNonFinite) throw new DivergenceStop(streakStart.iteration, streakStart.value);
    } else {
      streak = 0;
      streakStart = null;
    }

    const meanSeconds = iterationMs.reduce((sum, ms) => sum + ms, 0) / iterationMs.length / 1000;
    const cellEtaSeconds = (iterations - progress.iteration) * meanSeconds;
    const elapsedSeconds = (now() - cellStart) / 1000;
    context.emit({
      type: 'iteration',
      cellId: plan.cellId,
      phase: warmupPhase ? 'warmup' : 'timed',
      index: warmupPhase ? progress.iteration : progress.iteration - warmup,
      plannedIterations: iterations - warmup,
      loss: progress.loss,
      finite: !progress.skipped,
      stepMs: progress.milliseconds,
      timedSeconds,
      cellEtaSeconds,
      scenarioEtaSeconds: context.estimateRunSeconds?.(cellEtaSeconds, elapsedSeconds) ?? null,
    });
  };
  const partialFields = (outcome: CellOutcome): ToyCellFields => {
    const used = Math.min(warmup, Math.max(0, iterationMs.length - 1));
    return {
      outcome,
      timing: summarizeTiming(iterationMs.slice(used), [], used),
      memory: finishMemory(memory),
      losses: [...losses],
      nonFiniteLosses: losses.filter((loss) => !Number.isFinite(loss)).length,
      evaluations: [],
      finalNll: null,
      toy: { config: toy.config, skippedSteps, history: [] },
    };
  };

  // 2. Training.
  let result: Toy2dResult | MultimodalResult;
  try {
    result = toy.kind === 'toy2d' ? await context.trainers.train2d(toy.config, onStep) : await context.trainers.trainMultimodal(toy.config, onStep);
  } catch (error) {
    if (error instanceof DivergenceStop) {
      return partialFields({ status: 'diverged', step: error.step, firstNonFiniteValue: error.firstNonFiniteValue });
    }
    return partialFields({ status: 'errored', message: error instanceof Error ? error.message || error.name : String(error) });
  }

  // 3. and 4. Heat-map and record fields.
  const { multimodalRecord, toy2dRecord } = await import('../toys/record.js');
  const runContext = { environment: context.environment, startedAt: context.startedAt, finishedAt: new Date().toISOString(), warmupIterations: warmup };
  let built;
  if (toy.kind === 'toy2d') {
    const result2d = result as Toy2dResult;
    let densityPath: string | null = null;
    if (context.writeArtifact) {
      const { renderDensityPng } = await import('../toys/heatmap.js');
      densityPath = context.writeArtifact(densityFileName(plan.cellId), renderDensityPng(result2d.grid));
    }
    built = toy2dRecord(result2d, runContext, densityPath);
  } else {
    built = multimodalRecord(result as MultimodalResult, runContext);
  }
  const fields: ToyCellFields = {
    outcome: built.outcome,
    timing: built.timing,
    memory: finishMemory(memory),
    losses: built.losses,
    nonFiniteLosses: built.nonFiniteLosses,
    evaluations: built.evaluations,
    finalNll: built.finalNll,
    toy: built.toy,
  };
  if (built.metrics) fields.metrics = built.metrics;
  if (built.artifacts) fields.artifacts = built.artifacts;
  return fields;
}

function finishMemory(memory: MemorySummary): MemorySummary {
  return { ...memory, processMaxRssBytes: process.resourceUsage().maxRSS * 1024 };
}
