/**
 * Result records of toy runs, in the format of src/runner/record.ts with the toy fields the
 * reporter reads (`metrics`, `artifacts`) and a `toy` block with the run's full configuration and
 * evaluation history.
 *
 * Runs that differ only in their seed share a scenario name and hash, so the reporter pools them
 * into one cell with a mean and a 95% interval over seeds.
 */
import { createHash } from 'node:crypto';

import type { CellOutcome, EnvironmentInfo, ResultRecord } from '../runner/record.js';
import { RESULT_SCHEMA_VERSION } from '../runner/record.js';
import { summarizeTiming } from '../runner/timing.js';
import type { ToyMetrics } from './metrics.js';
import type { MultimodalResult } from './multimodal.js';
import type { Toy2dResult } from './train-2d.js';

/** The grid point of a toy run, as `CellParameters` with the toy data set and architecture names. */
export interface ToyCellParameters {
  dataset: string;
  architecture: string;
  objective: string;
  dimension: number;
  imageShape: null;
  depth: null;
  batchSize: number;
  seed: number;
  variant: string | null;
}

/** A toy run's record. */
export interface ToyRunRecord extends Omit<ResultRecord, 'parameters'> {
  parameters: ToyCellParameters;
  /** The final divergences (2-D runs only): kl, klReference (the authors' quantity) and fisher. */
  metrics?: { kl: number; klReference: number; fisher: number };
  artifacts?: { kind: string; path: string }[];
  toy: {
    /** The run's configuration, every field. */
    config: object;
    skippedSteps: number;
    /** 2-D: metrics after the given number of updates; multimodal10: test NLL. */
    history: { step: number; metrics?: ToyMetrics; nll?: number }[];
    /** Seconds spent building the oracle (2-D only). */
    oracleSeconds?: number;
  };
}

/** Timing context of a run. */
export interface RunContext {
  environment: EnvironmentInfo;
  startedAt: string;
  finishedAt: string;
  /** Iterations excluded from the timing summary (the first ones, which include tfjs warm-up). */
  warmupIterations: number;
}

/** Returns a hash of the configuration without its seed: runs that differ only in the seed share it. */
export function configurationHash(config: object): string {
  const withoutSeed = Object.fromEntries(Object.entries(config).filter(([key]) => key !== 'seed').sort(([a], [b]) => a.localeCompare(b)));
  return createHash('sha256').update(JSON.stringify(withoutSeed)).digest('hex').slice(0, 32);
}

/** The record fields every toy run fills the same way. */
type CommonFields = Omit<ToyRunRecord, 'scenario' | 'cellId' | 'parameters' | 'outcome' | 'evaluations' | 'finalNll' | 'toy'>;

function commonFields(losses: number[], iterationMs: number[], context: RunContext): CommonFields {
  const warmup = Math.min(context.warmupIterations, Math.max(0, iterationMs.length - 1));
  return {
    schemaVersion: RESULT_SCHEMA_VERSION,
    config: null,
    measure: 'train' as const,
    environment: context.environment,
    startedAt: context.startedAt,
    finishedAt: context.finishedAt,
    timing: summarizeTiming(iterationMs.slice(warmup), [], warmup),
    memory: null,
    losses,
    nonFiniteLosses: losses.filter((loss) => !Number.isFinite(loss)).length,
  };
}

/** Builds the record of a 2-D run; `densityPath` is the heat-map's path relative to the record. */
export function toy2dRecord(result: Toy2dResult, context: RunContext, densityPath: string | null): ToyRunRecord {
  const { config } = result;
  const final = result.evaluations[result.evaluations.length - 1].metrics;
  const variant = config.base === 'laplace' ? 'laplace-base' : null;
  const variantSuffix = variant === null ? '' : `/${variant}`;
  const outcome: CellOutcome =
    final.nonFinite > 0
      ? { status: 'diverged', step: config.iterations, firstNonFiniteValue: `log-density not finite at ${final.nonFinite} evaluation points` }
      : { status: 'completed' };
  return {
    ...commonFields(result.losses, result.iterationMs, context),
    scenario: { name: `toy-${config.dataset}-${config.objective}`, hash: configurationHash(config), file: '' },
    cellId: `${config.dataset}/coupling2d/${config.objective}/D2/B${config.batchSize}/seed${config.seed}${variantSuffix}`,
    parameters: {
      dataset: config.dataset,
      architecture: 'coupling2d',
      objective: config.objective,
      dimension: 2,
      imageShape: null,
      depth: null,
      batchSize: config.batchSize,
      seed: config.seed,
      variant,
    },
    outcome,
    evaluations: [],
    finalNll: null,
    metrics: { kl: final.kl, klReference: final.klReference, fisher: final.fisher },
    artifacts: densityPath === null ? [] : [{ kind: 'density', path: densityPath }],
    toy: {
      config,
      skippedSteps: result.skippedSteps,
      history: result.evaluations.map(({ step, metrics }) => ({ step, metrics })),
      oracleSeconds: result.oracleSeconds,
    },
  };
}

/** Builds the record of a multimodal10 run, with the test NLL as `finalNll` (nats per point). */
export function multimodalRecord(result: MultimodalResult, context: RunContext): ToyRunRecord {
  const { config } = result;
  const dimension = 10;
  const nllResult = (nll: number) => ({
    split: 'test' as const,
    images: config.evaluationPoints,
    nllNats: nll,
    bitsPerDim: nll / (dimension * Math.LN2),
    nonFinite: Number.isFinite(nll) ? 0 : config.evaluationPoints,
  });
  // secondsAfter[i] is the training time of the first i iterations.
  const secondsAfter = [0];
  result.iterationMs.forEach((ms, i) => secondsAfter.push(secondsAfter[i] + ms / 1000));
  const variant = config.base === 'laplace' ? 'laplace-base' : null;
  const variantSuffix = variant === null ? '' : `/${variant}`;
  const outcome: CellOutcome = Number.isFinite(result.finalNll)
    ? { status: 'completed' }
    : { status: 'diverged', step: config.iterations, firstNonFiniteValue: String(result.finalNll) };
  const evaluations = result.evaluations.map(({ step, iteration, nll }) => ({
    step,
    trainingSeconds: secondsAfter[iteration],
    result: nllResult(nll),
  }));
  return {
    ...commonFields(result.losses, result.iterationMs, context),
    scenario: { name: `toy-multimodal10-${config.mask}`, hash: configurationHash(config), file: '' },
    cellId: `multimodal10/linear-${config.mask}/ml/D10/B${config.batchSize}/seed${config.seed}${variantSuffix}`,
    parameters: {
      dataset: 'multimodal10',
      architecture: `linear-${config.mask}`,
      objective: 'ml',
      dimension,
      imageShape: null,
      depth: null,
      batchSize: config.batchSize,
      seed: config.seed,
      variant,
    },
    outcome,
    evaluations,
    finalNll: nllResult(result.finalNll),
    toy: {
      config,
      skippedSteps: result.skippedSteps,
      history: result.evaluations.map(({ step, nll }) => ({ step, nll })),
    },
  };
}
