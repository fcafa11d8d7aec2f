/**
 * Cell groups: the runs of one configuration within a result set that differ only in the seed,
 * and the statistics the tables show for them.
 */
import type { LoadedRecord, ResultSet } from './records.js';
import { medianWithInterval, meanWithInterval, median, type MeanInterval, type MedianInterval } from './statistics.js';

/** Linear-layer count of the CNN architecture (3 blocks of 2 convolutions) when the cell id does not give L. */
const CNN_LINEAR_LAYERS = 6;

/**
 * The configuration fields that define a cell group; runs of a group differ only in the seed.
 * Fields are null when the record cannot tell (a skipped cell without a training configuration).
 */
export interface CellKey {
  dataset: string;
  architecture: string;
  objective: string;
  /** The scenario variant's name, or null for a scenario without variants. */
  variant: string | null;
  /** Channel count C of the input image; null for the 2-D toy data. */
  channels: number | null;
  /** D, the number of elements of one sample. */
  dimension: number;
  /** Number of linear (constant-Jacobian) layers L. */
  layers: number | null;
  batchSize: number | null;
  matchAfterPreprocessing: boolean | null;
  ema: boolean | null;
  explicitDerivatives: boolean | null;
  measure: string;
}

/**
 * Returns L, the number of linear layers: the depth for fc (from `parameters`, then `config`, then
 * the "L<n>" segment of the cell id), 6 for cnn, and null for other architectures.
 */
export function linearLayerCount(run: LoadedRecord): number | null {
  const { parameters, config } = run.record;
  const architecture = parameters?.architecture ?? config?.architecture;
  if (architecture === 'cnn') {
    return CNN_LINEAR_LAYERS;
  }
  if (architecture !== 'fc') {
    return null;
  }
  const depth = parameters?.depth ?? config?.depth;
  if (depth !== null && depth !== undefined) {
    return depth;
  }
  const match = /(?:^|\/)L(\d+)(?:\/|$)/.exec(run.record.cellId);
  return match === null ? null : Number(match[1]);
}

/**
 * Returns the cell key of a run. The grid point comes from `parameters`, the techniques (MaP,
 * EMA, explicit derivatives) from `config`; records written before `parameters` existed fall back
 * to `config` for everything.
 */
export function cellKeyOf(run: LoadedRecord): CellKey {
  const { parameters, config } = run.record;
  const imageShape = parameters !== undefined ? parameters.imageShape : (config?.imageShape ?? null);
  const dimension =
    parameters?.dimension ?? (imageShape === null ? 0 : imageShape[0] * imageShape[1] * imageShape[2]);
  return {
    dataset: parameters?.dataset ?? config!.dataset,
    architecture: parameters?.architecture ?? config!.architecture,
    objective: parameters?.objective ?? config!.objective,
    variant: parameters?.variant ?? null,
    channels: imageShape === null ? null : imageShape[2],
    dimension,
    layers: linearLayerCount(run),
    batchSize: parameters?.batchSize ?? config?.batchSize ?? null,
    matchAfterPreprocessing: config === null ? null : config.matchAfterPreprocessing !== false,
    ema: config === null ? null : config.emaDecay !== null && config.emaDecay !== undefined,
    explicitDerivatives: config === null ? null : config.explicitDerivatives === true,
    measure: run.record.measure,
  };
}

export interface OutcomeCounts {
  completed: number;
  diverged: number;
  errored: number;
  skipped: number;
  total: number;
}

/** Statistics of one cell group, computed from its completed runs only. */
export interface CellSummary {
  set: ResultSet;
  key: CellKey;
  runs: LoadedRecord[];
  counts: OutcomeCounts;
  /** Readable outcome: "completed", "missing", or counts with the diverged steps and error messages. */
  status: string;
  /** True when any run diverged or errored. */
  failed: boolean;
  /** Median ms per iteration over the pooled samples of completed runs. */
  timing: MedianInterval | null;
  iterationsPerSecond: number | null;
  /**
   * Operations of one training step as runtime cells count them (`countStepOperations`): the
   * median over completed runs with a complete count. Null without one (train cells, records
   * from before counts existed, steps that factored in JavaScript).
   */
  operationsPerStep: number | null;
  nllNats: MeanInterval | null;
  bitsPerDim: MeanInterval | null;
  /** Splits of the final NLL evaluations behind `nllNats`. */
  nllSplits: string[];
  /** Optimiser updates before the final NLL evaluation, the fewest over completed runs; null without one. */
  trainedSteps: number | null;
  kl: MeanInterval | null;
  klReference: MeanInterval | null;
  fisher: MeanInterval | null;
  nonFiniteLosses: number;
}

/** Returns a string that identifies a cell key; `ignore` leaves fields out (for example the objective). */
export function cellKeyString(key: CellKey, ignore: ReadonlyArray<keyof CellKey> = []): string {
  const fields = (Object.keys(key) as Array<keyof CellKey>).filter((field) => !ignore.includes(field)).sort();
  return fields.map((field) => `${field}=${String(key[field])}`).join('|');
}

/** Groups the records of a result set into cell summaries, ordered by the key fields. */
export function summarizeSet(set: ResultSet): CellSummary[] {
  const groups = new Map<string, { key: CellKey; runs: LoadedRecord[] }>();
  for (const run of set.records) {
    const key = cellKeyOf(run);
    const id = cellKeyString(key);
    const group = groups.get(id) ?? { key, runs: [] };
    group.runs.push(run);
    groups.set(id, group);
  }
  return [...groups.values()].map((group) => summarizeCell(set, group.key, group.runs)).sort(compareSummaries);
}

const OBJECTIVE_ORDER = ['ml', 'sml', 'ssm', 'dsm', 'fdssm'];

/** Returns an objective's position in the order ML, SML, SSM, DSM, FDSSM (the column order of the EBFlow paper's tables); unknown names sort last. */
export function objectiveRank(objective: string): number {
  const index = OBJECTIVE_ORDER.indexOf(objective);
  return index === -1 ? OBJECTIVE_ORDER.length : index;
}

function compareSummaries(a: CellSummary, b: CellSummary): number {
  return (
    a.key.dataset.localeCompare(b.key.dataset) ||
    a.key.architecture.localeCompare(b.key.architecture) ||
    a.key.measure.localeCompare(b.key.measure) ||
    (a.key.variant ?? '').localeCompare(b.key.variant ?? '') ||
    (a.key.channels ?? 0) - (b.key.channels ?? 0) ||
    (a.key.layers ?? 0) - (b.key.layers ?? 0) ||
    a.key.dimension - b.key.dimension ||
    (a.key.batchSize ?? 0) - (b.key.batchSize ?? 0) ||
    Number(b.key.matchAfterPreprocessing) - Number(a.key.matchAfterPreprocessing) ||
    Number(b.key.ema) - Number(a.key.ema) ||
    Number(a.key.explicitDerivatives) - Number(b.key.explicitDerivatives) ||
    objectiveRank(a.key.objective) - objectiveRank(b.key.objective) ||
    a.key.objective.localeCompare(b.key.objective)
  );
}

/**
 * Computes the statistics of one cell group.
 *
 * 1. Count outcomes; only completed runs contribute numbers.
 * 2. Timing: the median and its order-statistic 95% interval over the pooled per-iteration samples
 *    of all completed runs. Runs without samples fall back to their recorded medians.
 * 3. NLL and toy metrics: the mean over runs with a 95% Student-t interval.
 */
export function summarizeCell(set: ResultSet, key: CellKey, runs: LoadedRecord[]): CellSummary {
  const counts: OutcomeCounts = { completed: 0, diverged: 0, errored: 0, skipped: 0, total: runs.length };
  for (const run of runs) {
    counts[run.record.outcome.status] += 1;
  }
  const completed = runs.filter((run) => run.record.outcome.status === 'completed');

  const timing = summarizeTiming(completed);

  const finalNlls = completed.map((run) => run.record.finalNll).filter((value) => value !== null && value !== undefined);
  const nllValues = finalNlls.map((value) => value.nllNats).filter(Number.isFinite);
  const bpdValues = finalNlls.map((value) => value.bitsPerDim).filter(Number.isFinite);

  return {
    set,
    key,
    runs,
    counts,
    status: describeOutcomes(runs, counts),
    failed: counts.diverged + counts.errored > 0,
    timing,
    iterationsPerSecond: timing !== null && timing.median > 0 ? 1000 / timing.median : null,
    operationsPerStep: operationsPerStep(completed),
    nllNats: nllValues.length > 0 ? meanWithInterval(nllValues) : null,
    bitsPerDim: bpdValues.length > 0 ? meanWithInterval(bpdValues) : null,
    nllSplits: [...new Set(finalNlls.map((value) => value.split))].sort(),
    trainedSteps: fewestTrainedSteps(completed),
    kl: metricInterval(completed, 'kl'),
    klReference: metricInterval(completed, 'klReference'),
    fisher: metricInterval(completed, 'fisher'),
    nonFiniteLosses: runs.reduce((sum, run) => sum + (run.record.nonFiniteLosses ?? 0), 0),
  };
}

/** Returns the median counted operations per step over runs with a complete count, or null. */
function operationsPerStep(runs: readonly LoadedRecord[]): number | null {
  const counts = runs.flatMap((run) => {
    const operations = run.record.operations;
    return operations && operations.partial === false && Number.isFinite(operations.perStep) ? [operations.perStep] : [];
  });
  return counts.length === 0 ? null : median(counts);
}

/** Returns the step of the last evaluation, the fewest over the runs that evaluated, or null. */
function fewestTrainedSteps(completed: LoadedRecord[]): number | null {
  const steps = completed
    .map((run) => run.record.evaluations?.at(-1)?.step)
    .filter((step): step is number => typeof step === 'number' && Number.isFinite(step));
  return steps.length > 0 ? Math.min(...steps) : null;
}

function summarizeTiming(completed: LoadedRecord[]): MedianInterval | null {
  const timed = completed.filter((run) => run.record.timing !== null && run.record.timing !== undefined);
  if (timed.length === 0) {
    return null;
  }
  const samples = timed.flatMap((run) => run.record.timing!.samplesMs).filter(Number.isFinite);
  if (samples.length > 0) {
    return medianWithInterval(samples);
  }
  // No raw samples: a single run keeps its recorded interval; several runs give a median of medians.
  if (timed.length === 1) {
    const timing = timed[0].record.timing!;
    return { median: timing.medianMs, low: timing.medianCiMs[0], high: timing.medianCiMs[1], count: 0 };
  }
  return { median: median(timed.map((run) => run.record.timing!.medianMs)), low: null, high: null, count: 0 };
}

function metricInterval(completed: LoadedRecord[], name: 'kl' | 'klReference' | 'fisher'): MeanInterval | null {
  const values = completed
    .map((run) => run.record.metrics?.[name])
    .filter((value): value is number => typeof value === 'number' && Number.isFinite(value));
  return values.length > 0 ? meanWithInterval(values) : null;
}

function describeOutcomes(runs: LoadedRecord[], counts: OutcomeCounts): string {
  if (counts.total === 0) {
    return 'missing';
  }
  if (counts.completed === counts.total) {
    return 'completed';
  }
  const parts: string[] = [];
  if (counts.completed > 0) {
    parts.push(`${counts.completed} completed`);
  }
  const divergedSteps = runs.flatMap((run) => (run.record.outcome.status === 'diverged' ? [run.record.outcome.step] : []));
  if (counts.diverged > 0) {
    parts.push(`${counts.diverged} diverged (step ${divergedSteps.join(', ')})`);
  }
  const errors = runs.flatMap((run) => (run.record.outcome.status === 'errored' ? [run.record.outcome.message] : []));
  if (counts.errored > 0) {
    parts.push(`${counts.errored} errored (${[...new Set(errors)].join('; ')})`);
  }
  const reasons = runs.flatMap((run) => (run.record.outcome.status === 'skipped' ? [run.record.outcome.reason] : []));
  if (counts.skipped > 0) {
    parts.push(`${counts.skipped} skipped (${[...new Set(reasons)].join('; ')})`);
  }
  return parts.join(', ');
}

/** Finds the ML cell with the same key as `cell` except the objective, in the same result set. */
export function findMlReference(cell: CellSummary, cells: readonly CellSummary[]): CellSummary | undefined {
  const referenceKey = cellKeyString({ ...cell.key, objective: 'ml' });
  return cells.find((candidate) => candidate.set === cell.set && cellKeyString(candidate.key) === referenceKey);
}

/**
 * Returns how many times faster `cell` iterates than its ML reference (ratio of median ms), with a
 * conservative interval from the two medians' intervals, or null when either median is missing or
 * not positive.
 */
export function speedUpOverMl(
  cell: CellSummary,
  reference: CellSummary | undefined,
): { ratio: number; low: number | null; high: number | null } | null {
  if (reference === undefined || reference.timing === null || cell.timing === null) {
    return null;
  }
  if (!(reference.timing.median > 0 && cell.timing.median > 0)) {
    return null;
  }
  const ratio = reference.timing.median / cell.timing.median;
  const { low: referenceLow, high: referenceHigh } = reference.timing;
  const { low, high } = cell.timing;
  const hasInterval = referenceLow !== null && referenceHigh !== null && low !== null && high !== null && low > 0 && high > 0;
  return {
    ratio,
    low: hasInterval ? referenceLow / high : null,
    high: hasInterval ? referenceHigh / low : null,
  };
}
