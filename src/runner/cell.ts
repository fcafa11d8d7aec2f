/**
 * Running one cell: create its training session, run the measure (runtime or train), and build
 * the result record with its outcome. A failing session creation, step or evaluation becomes an
 * "errored" record instead of an exception. Toy cells train through the loops of src/toys instead
 * of a session (toy-cell.ts).
 */
import { RandomStream } from '../random/stream.js';
import { imageGrid } from '../sampling/grid.js';
import { encodePng } from '../sampling/png.js';
import { sampleImages } from '../sampling/sample.js';
import type { CellPlan, Measure, ResolvedScenario } from '../scenarios/scenario.js';
import type { EbflowTrainingSession } from '../train/session-impl.js';
import type { NllResult, StepResult, TrainingConfig, TrainingSession } from '../train/session.js';
import type { EvaluationEvent, IterationEvent, RunEvent } from './events.js';
import { countStepOperations, type StepOperations } from './operation-count.js';
import {
  RESULT_SCHEMA_VERSION,
  type ArtifactReference,
  type CellOutcome,
  type EnvironmentInfo,
  type EvaluationPoint,
  type ResultRecord,
} from './record.js';
import { cellFileName } from './results.js';
import { runStepLoop, summarizeTiming, type IterationInfo, type StepLoopResult } from './timing.js';
import { defaultToyTrainers, measureToyCell, type ToyTrainers } from './toy-cell.js';

/** Creates the training session of one cell. */
export type SessionFactory = (config: TrainingConfig) => Promise<TrainingSession>;

export interface CellContext {
  resolved: ResolvedScenario;
  environment: EnvironmentInfo;
  createSession: SessionFactory;
  emit: (event: RunEvent) => void;
  /** Estimates the seconds left in the whole run from this cell's estimate and its elapsed time. */
  estimateRunSeconds?: (cellEtaSeconds: number, cellElapsedSeconds: number) => number | null;
  tensorBytes?: () => number;
  /** Milliseconds, monotonic. */
  now?: () => number;
  /** Trains toy cells; default: the loops of src/toys on the environment's backend. */
  toyTrainers?: ToyTrainers;
  /**
   * Writes an image next to the cell's record and returns its path relative to the record's
   * folder. Without it, toy cells write no heat-map.
   */
  writeArtifact?: (fileName: string, bytes: Uint8Array) => string;
}

/** Plain text of an error for a record: the message, or the value for a non-Error throw. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** Position of a cell among the cells of a run, for progress events. */
export interface CellPosition {
  /** 1-based. */
  index: number;
  count: number;
}

/** Runs one cell, emitting its cell-start, iteration and evaluation events, and returns its record. */
export async function runCell(plan: CellPlan, position: CellPosition, context: CellContext): Promise<ResultRecord> {
  const startedAt = new Date().toISOString();
  const measure = context.resolved.scenario.measure;
  // An epoch budget becomes iterations only once the session reports the epoch length.
  let plannedIterations: number | null = null;
  let plannedSeconds: number | null = null;
  if (measure.kind === 'runtime') {
    plannedIterations = measure.iterations;
    plannedSeconds = measure.maxSeconds;
  } else if ('iterations' in measure.budget) {
    plannedIterations = measure.budget.iterations;
  } else if ('seconds' in measure.budget) {
    plannedSeconds = measure.budget.seconds;
  }
  context.emit({
    type: 'cell-start',
    index: position.index,
    count: position.count,
    cellId: plan.cellId,
    parameters: plan.parameters,
    measure: measure.kind,
    plannedIterations,
    plannedSeconds,
  });
  const base = {
    schemaVersion: RESULT_SCHEMA_VERSION,
    scenario: { name: context.resolved.scenario.name, hash: context.resolved.hash, file: context.resolved.file },
    cellId: plan.cellId,
    parameters: plan.parameters,
    config: plan.config,
    measure: measure.kind,
    environment: context.environment,
    startedAt,
  } as const;
  const empty = { timing: null, memory: null, losses: [], nonFiniteLosses: 0, evaluations: [], finalNll: null };
  const finish = (outcome: CellOutcome, measured: Partial<ResultRecord> = {}): ResultRecord => ({
    ...base,
    finishedAt: new Date().toISOString(),
    outcome,
    ...empty,
    ...measured,
  });

  if (plan.skipReason !== null) return finish({ status: 'skipped', reason: plan.skipReason });
  if (plan.toy) {
    const fields = await measureToyCell(plan, plan.toy, {
      trainers: context.toyTrainers ?? defaultToyTrainers(context.environment.backend),
      environment: context.environment,
      startedAt,
      warmupIterations: measure.kind === 'train' ? measure.warmupIterations : 0,
      maxConsecutiveNonFinite: context.resolved.scenario.divergence.maxConsecutiveNonFinite,
      emit: context.emit,
      estimateRunSeconds: context.estimateRunSeconds,
      writeArtifact: context.writeArtifact,
      tensorBytes: context.tensorBytes,
      now: context.now,
    });
    return finish(fields.outcome, fields);
  }
  if (plan.config === null) return finish({ status: 'skipped', reason: 'no configuration' });

  let session: TrainingSession;
  try {
    session = await context.createSession(plan.config);
  } catch (error) {
    return finish({ status: 'errored', message: `creating the training session failed: ${errorMessage(error)}` });
  }

  const evaluations: EvaluationPoint[] = [];
  try {
    const { loop, finalNll, operations } = await measureCell(plan, session, measure, evaluations, context);
    const losses = loop.steps.map((step) => step.loss);
    const outcome: CellOutcome = loop.divergence
      ? { status: 'diverged', step: loop.divergence.step, firstNonFiniteValue: loop.divergence.firstNonFiniteValue }
      : { status: 'completed' };
    const artifacts = outcome.status === 'completed' && measure.kind === 'train' ? await writeSampleGrid(plan, session, context) : [];
    return finish(outcome, {
      ...(artifacts.length > 0 ? { artifacts } : {}),
      timing: summarizeTiming(loop.samplesMs, loop.steps.map((step) => step.phases), loop.warmupIterations),
      memory: loop.memory,
      ...(operations === undefined ? {} : { operations }),
      losses,
      nonFiniteLosses: losses.filter((loss) => !Number.isFinite(loss)).length,
      evaluations,
      finalNll: finalNll ?? evaluations.at(-1)?.result ?? null,
    });
  } catch (error) {
    return finish({ status: 'errored', message: errorMessage(error) }, { evaluations });
  } finally {
    try {
      session.dispose();
    } catch (error) {
      context.emit({ type: 'warning', cellId: plan.cellId, message: `disposing the training session failed: ${errorMessage(error)}` });
    }
  }
}

/** Samples drawn for the grid of a completed training cell: 8 rows of 8 images. */
const SAMPLE_GRID_COUNT = 64;

/** Returns the file name of a cell's sample grid, next to its record. */
export function sampleGridFileName(cellId: string): string {
  return cellFileName(cellId).replace(/\.json$/, '-samples.png');
}

/**
 * Draws 64 samples from a trained session's evaluation weights (the EMA when it has one) and
 * writes them as an 8×8 PNG grid beside the record. Returns the artifact to record, or nothing
 * when the session cannot sample or no artifact writer is set. A sampling failure becomes a
 * warning, never the cell's outcome. Cost: 64 inversions of the flow (O(D³L) for FC).
 */
async function writeSampleGrid(plan: CellPlan, session: TrainingSession, context: CellContext): Promise<ArtifactReference[]> {
  if (context.writeArtifact === undefined || !('withEvaluationWeights' in session) || plan.config === null) return [];
  try {
    const random = new RandomStream(plan.config.seed + SAMPLE_SEED_OFFSET);
    const images = await sampleImages(session as EbflowTrainingSession, SAMPLE_GRID_COUNT, random);
    const png = encodePng(imageGrid(images, { perRow: 8 }));
    return [{ kind: 'samples', path: context.writeArtifact(sampleGridFileName(plan.cellId), png) }];
  } catch (error) {
    context.emit({ type: 'warning', cellId: plan.cellId, message: `drawing the sample grid failed: ${errorMessage(error)}` });
    return [];
  }
}

/** Offset of the sample grid's seed from the run's, so its draws do not repeat the training's. */
const SAMPLE_SEED_OFFSET = 7919;

interface Measured {
  loop: StepLoopResult;
  finalNll: NllResult | null;
  /** Runtime cells only: the counted operations of one step, or null when not counted. */
  operations?: StepOperations | null;
}

/**
 * Runs the measure of one cell on `session`, appending evaluations as they happen.
 *
 * Plan:
 * 1. Work out the planned iterations and seconds (an epoch budget becomes epochs ×
 *    iterations per epoch, rounded up).
 * 2. For a train cell, evaluate at step 0 when the schedule sets `atStart`.
 * 3. Run the step loop; after each timed iteration emit progress and run due evaluations.
 * 4. For a train cell that did not diverge, run the final evaluation.
 * 5. For a runtime cell, count the operations of one step: the last warm-up step, so no timed
 *    step runs the count's kernel wrappers, or one more step when the cell has no warm-up.
 */
async function measureCell(
  plan: CellPlan,
  session: TrainingSession,
  measure: Measure,
  evaluations: EvaluationPoint[],
  context: CellContext,
): Promise<Measured> {
  const now = context.now ?? (() => performance.now());
  const cellStart = now();
  const cellId = plan.cellId;

  // 1. Plan.
  const warmupIterations = measure.kind === 'runtime' ? measure.warmupIterations : 0;
  let plannedIterations: number | null;
  let plannedSeconds: number | null;
  if (measure.kind === 'runtime') {
    plannedIterations = measure.iterations;
    plannedSeconds = measure.maxSeconds;
  } else if ('iterations' in measure.budget) {
    plannedIterations = measure.budget.iterations;
    plannedSeconds = null;
  } else if ('epochs' in measure.budget) {
    plannedIterations = Math.ceil(measure.budget.epochs * session.iterationsPerEpoch);
    plannedSeconds = null;
  } else {
    plannedIterations = null;
    plannedSeconds = measure.budget.seconds;
  }

  // 2. Evaluation at step 0.
  const evaluate = async (split: 'validation' | 'test', maxImages: number | null, step: number, trainingSeconds: number, kind: EvaluationEvent['kind']): Promise<NllResult> => {
    const start = now();
    const result = await session.evaluate(split, maxImages ?? undefined);
    const point: EvaluationPoint = { step, trainingSeconds, result };
    evaluations.push(point);
    context.emit({ type: 'evaluation', cellId, kind, point, seconds: (now() - start) / 1000 });
    return result;
  };
  const schedule = measure.kind === 'train' ? measure.evaluation : null;
  if (schedule?.atStart) await evaluate(schedule.split, schedule.maxImages, 0, 0, 'periodic');

  // 3. Iterations.
  let nextEvaluationSeconds = schedule && 'seconds' in schedule.every ? schedule.every.seconds : Number.POSITIVE_INFINITY;
  const afterIteration = async (info: IterationInfo): Promise<void> => {
    const elapsedSeconds = (now() - cellStart) / 1000;
    const cellEtaSeconds = estimateCellSeconds(info, warmupIterations, plannedIterations, plannedSeconds, elapsedSeconds);
    const event: IterationEvent = {
      type: 'iteration',
      cellId,
      phase: info.phase,
      index: info.index,
      plannedIterations,
      loss: info.step.loss,
      finite: info.step.finite,
      stepMs: info.durationMs,
      timedSeconds: info.timedSeconds,
      cellEtaSeconds,
      scenarioEtaSeconds: cellEtaSeconds === null ? null : (context.estimateRunSeconds?.(cellEtaSeconds, elapsedSeconds) ?? null),
    };
    context.emit(event);

    if (!schedule || info.phase !== 'timed') return;
    let due = false;
    if ('iterations' in schedule.every) {
      due = info.index % schedule.every.iterations === 0;
    } else if (info.timedSeconds >= nextEvaluationSeconds) {
      due = true;
      // Skip thresholds a single long iteration jumped over, so evaluations do not pile up.
      while (nextEvaluationSeconds <= info.timedSeconds) nextEvaluationSeconds += schedule.every.seconds;
    }
    if (due) await evaluate(schedule.split, schedule.maxImages, info.step.step, info.timedSeconds, 'periodic');
  };

  // The operation count of the last warm-up step (plan step 5); undefined until that step ran.
  let warmupOperations: StepOperations | null | undefined;
  const countLastWarmup = async (index: number, step: () => Promise<StepResult>): Promise<StepResult> => {
    if (index !== warmupIterations) return step();
    const counted = await countedStep(step, session, context, cellId);
    warmupOperations = counted.operations;
    return counted.result;
  };

  const loop = await runStepLoop(session, {
    warmupIterations,
    maxIterations: plannedIterations,
    maxSeconds: plannedSeconds,
    maxConsecutiveNonFinite: context.resolved.scenario.divergence.maxConsecutiveNonFinite,
    afterIteration,
    tensorBytes: context.tensorBytes,
    ...(measure.kind === 'runtime' ? { warmupStep: countLastWarmup } : {}),
  });
  if (measure.kind === 'runtime' && loop.stoppedBy === 'seconds' && plannedIterations !== null && loop.samplesMs.length < plannedIterations) {
    context.emit({
      type: 'warning',
      cellId,
      message: `timed ${loop.samplesMs.length} of ${plannedIterations} iterations: the cap of ${plannedSeconds} s (measure.maxSeconds) was reached`,
    });
  }

  // 4. Final evaluation.
  let finalNll: NllResult | null = null;
  const final = measure.kind === 'train' ? measure.final : null;
  if (final && loop.divergence === null) {
    const lastStep = loop.steps.at(-1)?.step ?? 0;
    const trainingSeconds = loop.samplesMs.reduce((sum, ms) => sum + ms, 0) / 1000;
    finalNll = await evaluate(final.split, final.maxImages, lastStep, trainingSeconds, 'final');
  }
  if (measure.kind === 'train') return { loop, finalNll };

  // 5. Operation count.
  if (loop.divergence !== null) return { loop, finalNll, operations: null };
  if (warmupOperations !== undefined) return { loop, finalNll, operations: warmupOperations };
  try {
    return { loop, finalNll, operations: (await countedStep(() => session.step(), session, context, cellId)).operations };
  } catch (error) {
    // The extra step is not part of the measure, so its failure leaves the timing as it is.
    context.emit({ type: 'warning', cellId, message: `counting the operations of one step failed: ${errorMessage(error)}` });
    return { loop, finalNll, operations: null };
  }
}

/**
 * Runs `step` once with its operations counted (`countStepOperations`) and returns its result and
 * the count. The count is null when the gradient runs on worker threads, which it does not see, or
 * when it cannot start (logged as a warning, and the step runs uncounted). An error of the step
 * itself propagates.
 */
async function countedStep(
  step: () => Promise<StepResult>,
  session: TrainingSession,
  context: CellContext,
  cellId: string,
): Promise<{ result: StepResult; operations: StepOperations | null }> {
  if (session.config.workers !== 1) return { result: await step(), operations: null };
  let result: StepResult | undefined;
  let started = false;
  try {
    const operations = await countStepOperations(async () => {
      started = true;
      result = await step();
    });
    return { result: result as StepResult, operations };
  } catch (error) {
    if (started) throw error;
    context.emit({ type: 'warning', cellId, message: `counting the operations of one step failed: ${errorMessage(error)}` });
    return { result: await step(), operations: null };
  }
}

/**
 * Estimates the seconds left in a cell from the mean iteration time so far: remaining warm-up
 * and timed iterations, capped by the seconds budget. Evaluations are not included. Returns null
 * when no iteration count or budget bounds the cell.
 */
function estimateCellSeconds(
  info: IterationInfo,
  warmupIterations: number,
  plannedIterations: number | null,
  plannedSeconds: number | null,
  elapsedSeconds: number,
): number | null {
  const done = info.phase === 'warmup' ? info.index : warmupIterations + info.index;
  const perIteration = elapsedSeconds / Math.max(1, done);
  const remainingWarmup = info.phase === 'warmup' ? warmupIterations - info.index : 0;
  const remainingTimed = plannedIterations === null ? null : plannedIterations - (info.phase === 'timed' ? info.index : 0);
  let estimate = remainingTimed === null ? null : (remainingWarmup + remainingTimed) * perIteration;
  if (plannedSeconds !== null) {
    const bySeconds = remainingWarmup * perIteration + Math.max(0, plannedSeconds - info.timedSeconds);
    estimate = estimate === null ? bySeconds : Math.min(estimate, bySeconds);
  }
  return estimate;
}
