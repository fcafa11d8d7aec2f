/**
 * The report's tables: the per-scenario objective table, the paper's Tables 1, 2 and 4 with our
 * numbers beside the published ones, and the runtime table against D and L. "The paper" is Chao et
 * al., NeurIPS 2023, whose numbers `paper-results.ts` lists with their sources.
 */
import {
  cellKeyString,
  findMlReference,
  speedUpOverMl,
  type CellKey,
  type CellSummary,
} from './cells.js';
import {
  PAPER_BATCH_SIZE,
  PAPER_DIMENSIONS,
  PAPER_LINEAR_LAYERS,
  PAPER_TABLE_2,
  PAPER_TABLE_4,
  findPaperRuntime,
  findPaperTable2,
  findPaperTable4,
  type PaperTable2Cell,
} from './paper-results.js';
import type { ResultSet } from './records.js';
import type { MeanInterval } from './statistics.js';
import { createTable, type ReportTable, type RowState, type TableColumn, type TableRow, type TableValue } from './table.js';

/** The 2-D toy data sets of the paper's Table 1. */
export const TOY_DATASETS = ['sine', 'swirl', 'checkerboard'];

const OBJECTIVES = ['ml', 'sml', 'ssm', 'dsm', 'fdssm'] as const;

/** Every cell summary of the report, and the label of each result set. */
export interface TableContext {
  cells: CellSummary[];
  labelOf: (set: ResultSet) => string;
}

/** Returns the row state of a cell summary (see `RowState`). */
export function rowStateOf(cell: CellSummary | undefined): RowState {
  if (cell === undefined || cell.counts.total === 0) {
    return 'missing';
  }
  const { completed, diverged, errored, skipped, total } = cell.counts;
  if (completed === total) {
    return 'ok';
  }
  if (completed > 0) {
    return 'partial';
  }
  if (diverged + errored > 0) {
    return 'failed';
  }
  return skipped > 0 ? 'skipped' : 'missing';
}

/** Returns "on" or "off" for a switch, or null when the record does not record it. */
export function onOff(value: boolean | null): string | null {
  if (value === null) {
    return null;
  }
  return value ? 'on' : 'off';
}

function difference(ours: number | null | undefined, paper: number | null | undefined): number | null {
  return ours === null || ours === undefined || paper === null || paper === undefined ? null : ours - paper;
}

function ratio(ours: number | null | undefined, paper: number | null | undefined): number | null {
  return ours === null || ours === undefined || paper === null || paper === undefined || paper === 0 ? null : ours / paper;
}

const KEY_COLUMNS: TableColumn[] = [
  { key: 'scenario', label: 'scenario', format: 'text' },
  { key: 'dataset', label: 'dataset', format: 'text' },
  { key: 'architecture', label: 'architecture', format: 'text' },
  { key: 'objective', label: 'objective', format: 'text' },
  { key: 'variant', label: 'variant', format: 'text' },
  { key: 'channels', label: 'C', format: 'integer' },
  { key: 'dimension', label: 'D', format: 'integer' },
  { key: 'layers', label: 'L', format: 'integer' },
  { key: 'batch_size', label: 'batch', format: 'integer' },
  { key: 'map', label: 'MaP', format: 'text' },
  { key: 'ema', label: 'EMA', format: 'text' },
  { key: 'explicit_derivatives', label: 'explicit derivatives', format: 'text' },
  { key: 'measure', label: 'measure', format: 'text' },
];

function keyValues(context: TableContext, cell: CellSummary): Record<string, TableValue> {
  const key = cell.key;
  return {
    scenario: context.labelOf(cell.set),
    dataset: key.dataset,
    architecture: key.architecture,
    objective: key.objective,
    variant: key.variant,
    channels: key.channels,
    dimension: key.dimension,
    layers: key.layers,
    batch_size: key.batchSize,
    map: onOff(key.matchAfterPreprocessing),
    ema: onOff(key.ema),
    explicit_derivatives: onOff(key.explicitDerivatives),
    measure: key.measure,
  };
}

const RUN_COLUMNS: TableColumn[] = [
  { key: 'runs', label: 'runs completed', format: 'integer' },
  { key: 'runs_total', label: 'runs recorded', format: 'integer' },
  { key: 'status', label: 'status', format: 'text' },
];

function runValues(cell: CellSummary | undefined): Record<string, TableValue> {
  return {
    runs: cell?.counts.completed ?? 0,
    runs_total: cell?.counts.total ?? 0,
    status: cell?.status ?? 'missing',
  };
}

const TIMING_COLUMNS: TableColumn[] = [
  { key: 'median_ms', label: 'median ms/iteration', format: 'milliseconds', measured: true },
  { key: 'median_ms_ci_low', label: '95% CI low (ms)', format: 'milliseconds' },
  { key: 'median_ms_ci_high', label: '95% CI high (ms)', format: 'milliseconds' },
  { key: 'timing_samples', label: 'timed iterations', format: 'integer' },
  { key: 'iterations_per_s', label: 'iterations/s', format: 'rate', measured: true },
  { key: 'speedup_vs_ml', label: 'speed-up over ML', format: 'ratio' },
  { key: 'speedup_ci_low', label: 'speed-up CI low', format: 'ratio' },
  { key: 'speedup_ci_high', label: 'speed-up CI high', format: 'ratio' },
];

function timingValues(cell: CellSummary, cells: readonly CellSummary[]): Record<string, TableValue> {
  // The ML row is the reference itself, so it gets no speed-up.
  const speedUp = cell.key.objective === 'ml' ? null : speedUpOverMl(cell, findMlReference(cell, cells));
  return {
    median_ms: cell.timing?.median ?? null,
    median_ms_ci_low: cell.timing?.low ?? null,
    median_ms_ci_high: cell.timing?.high ?? null,
    timing_samples: cell.timing === null ? null : cell.timing.count,
    iterations_per_s: cell.iterationsPerSecond,
    speedup_vs_ml: speedUp?.ratio ?? null,
    speedup_ci_low: speedUp?.low ?? null,
    speedup_ci_high: speedUp?.high ?? null,
  };
}

function intervalValues(prefix: string, interval: MeanInterval | null): Record<string, TableValue> {
  return {
    [prefix]: interval?.mean ?? null,
    [`${prefix}_ci`]: interval?.halfWidth ?? null,
  };
}

/** The Table 2 cell of the paper that a cell of ours reproduces, if its setting matches. */
export function paperTable2For(key: CellKey): PaperTable2Cell | undefined {
  if (key.dataset !== 'mnist' && key.dataset !== 'cifar10') {
    return undefined;
  }
  if (key.architecture !== 'fc' && key.architecture !== 'cnn') {
    return undefined;
  }
  const matches =
    key.dimension === PAPER_DIMENSIONS[key.dataset] &&
    key.layers === PAPER_LINEAR_LAYERS[key.architecture] &&
    key.matchAfterPreprocessing !== false &&
    key.ema !== false;
  return matches ? findPaperTable2(key.dataset, key.architecture, key.objective) : undefined;
}

/** Returns the paper's Figure 2(a) runtime in ms for a cell's setting, or null. */
export function paperRuntimeMsFor(key: CellKey): number | null {
  if (key.channels === null || (key.architecture !== 'fc' && key.architecture !== 'cnn')) {
    return null;
  }
  if (key.layers !== PAPER_LINEAR_LAYERS[key.architecture]) {
    return null;
  }
  const point = findPaperRuntime(key.architecture, key.channels, key.dimension, key.objective);
  return point?.seconds === null || point === undefined ? null : point.seconds * 1000;
}

function paperSpeedUp(paper: PaperTable2Cell | undefined): number | null {
  if (paper === undefined) {
    return null;
  }
  const ml = findPaperTable2(paper.dataset, paper.architecture, 'ml');
  return ml === undefined ? null : paper.batchesPerSecond / ml.batchesPerSecond;
}

/**
 * Builds the objective table of one result set: one row per cell group with timing, NLL, the
 * speed-up over the ML cell of the same setting, and the paper's values where the setting matches
 * Table 2 or Figure 2(a).
 */
export function buildObjectiveTable(context: TableContext, set: ResultSet): ReportTable {
  const label = context.labelOf(set);
  const cells = context.cells.filter((cell) => cell.set === set);
  const rows: TableRow[] = cells.map((cell) => {
    const paper = paperTable2For(cell.key);
    const paperMs = paperRuntimeMsFor(cell.key);
    return {
      state: rowStateOf(cell),
      values: {
        ...keyValues(context, cell),
        ...runValues(cell),
        ...timingValues(cell, context.cells),
        ...intervalValues('nll_nats', cell.nllNats),
        ...intervalValues('bits_per_dim', cell.bitsPerDim),
        nll_split: cell.nllSplits.length > 0 ? cell.nllSplits.join('+') : null,
        non_finite_losses: cell.nonFiniteLosses,
        paper_nll_nats: paper?.nllNats.mean ?? null,
        nll_diff_nats: difference(cell.nllNats?.mean, paper?.nllNats.mean),
        paper_bits_per_dim: paper?.bitsPerDim.mean ?? null,
        bits_per_dim_diff: difference(cell.bitsPerDim?.mean, paper?.bitsPerDim.mean),
        paper_iterations_per_s: paper?.batchesPerSecond ?? null,
        iterations_per_s_ratio: ratio(cell.iterationsPerSecond, paper?.batchesPerSecond),
        paper_speedup_vs_ml: paperSpeedUp(paper),
        paper_ms: paperMs,
        ms_ratio: ratio(cell.timing?.median, paperMs),
        trained_steps: cell.trainedSteps,
      },
    };
  });
  return createTable({
    id: `objectives-${fileSafe(label)}`,
    title: `Objectives of scenario ${label}`,
    file: `objectives-${fileSafe(label)}.csv`,
    description:
      `One row per cell group of scenario ${label} (hash ${set.scenarioHash}): runs that differ only in the seed. ` +
      'Median ms/iteration pools the timed iterations of the completed runs, with a 95% order-statistic interval. ' +
      'NLL and bits/dim are means over runs with 95% Student-t half-widths. ' +
      'The speed-up divides the ML cell’s median by this cell’s, within the same setting.',
    columns: [
      ...KEY_COLUMNS,
      ...RUN_COLUMNS,
      ...TIMING_COLUMNS,
      { key: 'nll_nats', label: 'NLL (nats)', format: 'nats', measured: true },
      { key: 'nll_nats_ci', label: 'NLL ± (95%)', format: 'nats' },
      { key: 'bits_per_dim', label: 'bits/dim', format: 'bitsPerDim', measured: true },
      { key: 'bits_per_dim_ci', label: 'bits/dim ± (95%)', format: 'bitsPerDim' },
      { key: 'nll_split', label: 'NLL split', format: 'text' },
      { key: 'non_finite_losses', label: 'non-finite losses', format: 'integer' },
      { key: 'paper_nll_nats', label: 'paper NLL (nats)', format: 'nats' },
      { key: 'nll_diff_nats', label: 'NLL − paper', format: 'signedNats' },
      { key: 'paper_bits_per_dim', label: 'paper bits/dim', format: 'bitsPerDim' },
      { key: 'bits_per_dim_diff', label: 'bits/dim − paper', format: 'signedBitsPerDim' },
      { key: 'paper_iterations_per_s', label: 'paper iterations/s (batch 100)', format: 'rate' },
      { key: 'iterations_per_s_ratio', label: 'iterations/s ÷ paper', format: 'ratio' },
      { key: 'paper_speedup_vs_ml', label: 'paper speed-up over ML', format: 'ratio' },
      { key: 'paper_ms', label: 'paper ms (Figure 2a, read off)', format: 'milliseconds' },
      { key: 'ms_ratio', label: 'ms ÷ paper', format: 'ratio' },
      { key: 'trained_steps', label: 'steps trained', format: 'integer' },
    ],
    rows,
    notes: [...standardNotes(rows), ...trainingLengthNotes(rows)],
    agreement: [],
  });
}

/** Builds paper Table 1 (2-D toys): KL and Fisher divergence, mean and 95% t-interval over seeds. */
export function buildTable1(context: TableContext): ReportTable {
  const toyCells = context.cells.filter(
    (cell) => TOY_DATASETS.includes(cell.key.dataset) || cell.kl !== null || cell.fisher !== null,
  );
  const rows: TableRow[] = [];
  const datasets = [...new Set([...TOY_DATASETS, ...toyCells.map((cell) => cell.key.dataset)])];
  for (const dataset of datasets) {
    const objectives = [...new Set([...OBJECTIVES, ...toyCells.filter((c) => c.key.dataset === dataset).map((c) => c.key.objective)])];
    for (const objective of objectives) {
      const matches = toyCells.filter((cell) => cell.key.dataset === dataset && cell.key.objective === objective);
      if (matches.length === 0) {
        rows.push({ state: 'missing', values: { dataset, objective, scenario: null, variant: null, ...runValues(undefined) } });
        continue;
      }
      for (const cell of matches) {
        rows.push({
          state: rowStateOf(cell),
          values: {
            dataset,
            objective,
            scenario: context.labelOf(cell.set),
            variant: cell.key.variant,
            ...runValues(cell),
            ...intervalValues('kl', cell.kl),
            kl_reference: cell.klReference?.mean ?? null,
            ...intervalValues('fisher', cell.fisher),
          },
        });
      }
    }
  }
  return createTable({
    id: 'table1-toys',
    title: 'Table 1: 2-D toy densities (KL and Fisher divergence)',
    file: 'table1-toys.csv',
    description:
      'KL divergence and Fisher divergence of the model from the smoothed target density, mean and 95% Student-t half-width over seeds (records’ `metrics`). ' +
      'The paper’s Table 1 values were not available to us, so this table has no paper column and no differences.',
    columns: [
      { key: 'dataset', label: 'dataset', format: 'text' },
      { key: 'objective', label: 'objective', format: 'text' },
      { key: 'scenario', label: 'scenario', format: 'text' },
      { key: 'variant', label: 'variant', format: 'text' },
      ...RUN_COLUMNS,
      { key: 'kl', label: 'KL (nats)', format: 'metric', measured: true },
      { key: 'kl_ci', label: 'KL ± (95%)', format: 'metric' },
      { key: 'kl_reference', label: 'KL of reference', format: 'metric' },
      { key: 'fisher', label: 'Fisher divergence', format: 'metric', measured: true },
      { key: 'fisher_ci', label: 'Fisher ± (95%)', format: 'metric' },
    ],
    rows,
    notes: standardNotes(rows),
    agreement: [],
  });
}

/** Returns the cells of ours that reproduce a Table 2 cell of the paper. */
export function cellsForPaperTable2(context: TableContext, paper: PaperTable2Cell): CellSummary[] {
  return context.cells.filter((cell) => cell.key.objective === paper.objective && paperTable2For(cell.key) === paper);
}

/**
 * Builds paper Table 2: NLL, bits/dim and iterations/s per data set × architecture × objective at
 * the paper's setting (D, L, MaP and EMA on), one row per matching cell of ours or a missing row.
 */
export function buildTable2(context: TableContext): ReportTable {
  const rows: TableRow[] = [];
  for (const paper of PAPER_TABLE_2) {
    const matches = cellsForPaperTable2(context, paper);
    const paperMl = findPaperTable2(paper.dataset, paper.architecture, 'ml')!;
    const paperValues: Record<string, TableValue> = {
      dataset: paper.dataset,
      architecture: paper.architecture,
      objective: paper.objective,
      paper_nll_nats: paper.nllNats.mean,
      paper_nll_nats_ci: paper.nllNats.halfWidth,
      paper_bits_per_dim: paper.bitsPerDim.mean,
      paper_iterations_per_s: paper.batchesPerSecond,
      paper_speedup_vs_ml: paperSpeedUp(paper),
      paper_nll_minus_ml: paper.nllNats.mean - paperMl.nllNats.mean,
    };
    if (matches.length === 0) {
      rows.push({ state: 'missing', values: { ...paperValues, ...runValues(undefined) } });
      continue;
    }
    for (const cell of matches) {
      const reference = findMlReference(cell, context.cells);
      const speedUp = speedUpOverMl(cell, reference);
      rows.push({
        state: rowStateOf(cell),
        values: {
          ...paperValues,
          scenario: context.labelOf(cell.set),
          variant: cell.key.variant,
          batch_size: cell.key.batchSize,
          measure: cell.key.measure,
          ...runValues(cell),
          ...intervalValues('nll_nats', cell.nllNats),
          nll_diff_nats: difference(cell.nllNats?.mean, paper.nllNats.mean),
          ...intervalValues('bits_per_dim', cell.bitsPerDim),
          bits_per_dim_diff: difference(cell.bitsPerDim?.mean, paper.bitsPerDim.mean),
          iterations_per_s: cell.iterationsPerSecond,
          iterations_per_s_ratio: ratio(cell.iterationsPerSecond, paper.batchesPerSecond),
          speedup_vs_ml: speedUp?.ratio ?? null,
          nll_minus_ml: difference(cell.nllNats?.mean, reference?.nllNats?.mean),
          trained_steps: cell.trainedSteps,
        },
      });
    }
  }
  return createTable({
    id: 'table2-nll-speed',
    title: 'Table 2: NLL, bits/dim and iterations/s (MNIST and CIFAR-10)',
    file: 'table2-nll-speed.csv',
    description:
      `Our cells at the paper’s setting (MNIST D = ${PAPER_DIMENSIONS.mnist}, CIFAR-10 D = ${PAPER_DIMENSIONS.cifar10}; ` +
      `L = ${PAPER_LINEAR_LAYERS.fc} for FC and ${PAPER_LINEAR_LAYERS.cnn} for CNN; MaP and EMA on) beside the paper’s Table 2. ` +
      `NLL is the mean over runs of each run’s final evaluation (nats per image), with a 95% Student-t half-width. ` +
      `The paper measured iterations/s at batch ${PAPER_BATCH_SIZE} on a GPU it does not name.`,
    columns: [
      { key: 'dataset', label: 'dataset', format: 'text' },
      { key: 'architecture', label: 'architecture', format: 'text' },
      { key: 'objective', label: 'objective', format: 'text' },
      { key: 'scenario', label: 'scenario', format: 'text' },
      { key: 'variant', label: 'variant', format: 'text' },
      { key: 'batch_size', label: 'batch', format: 'integer' },
      { key: 'measure', label: 'measure', format: 'text' },
      ...RUN_COLUMNS,
      { key: 'nll_nats', label: 'NLL (nats)', format: 'nats', measured: true },
      { key: 'nll_nats_ci', label: 'NLL ± (95%)', format: 'nats' },
      { key: 'paper_nll_nats', label: 'paper NLL', format: 'nats' },
      { key: 'paper_nll_nats_ci', label: 'paper NLL ±', format: 'nats' },
      { key: 'nll_diff_nats', label: 'NLL − paper', format: 'signedNats' },
      { key: 'bits_per_dim', label: 'bits/dim', format: 'bitsPerDim', measured: true },
      { key: 'bits_per_dim_ci', label: 'bits/dim ± (95%)', format: 'bitsPerDim' },
      { key: 'paper_bits_per_dim', label: 'paper bits/dim', format: 'bitsPerDim' },
      { key: 'bits_per_dim_diff', label: 'bits/dim − paper', format: 'signedBitsPerDim' },
      { key: 'iterations_per_s', label: 'iterations/s', format: 'rate', measured: true },
      { key: 'paper_iterations_per_s', label: 'paper iterations/s', format: 'rate' },
      { key: 'iterations_per_s_ratio', label: 'iterations/s ÷ paper', format: 'ratio' },
      { key: 'speedup_vs_ml', label: 'speed-up over ML', format: 'ratio' },
      { key: 'paper_speedup_vs_ml', label: 'paper speed-up over ML', format: 'ratio' },
      { key: 'nll_minus_ml', label: 'NLL − our ML', format: 'signedNats' },
      { key: 'paper_nll_minus_ml', label: 'paper NLL − paper ML', format: 'signedNats' },
      { key: 'trained_steps', label: 'steps trained', format: 'integer' },
    ],
    rows,
    notes: [...standardNotes(rows), ...trainingLengthNotes(rows)],
    agreement: [],
  });
}

/** The fields that define an ablation family: everything except the techniques and the objective. */
const ABLATION_FIELDS: Array<keyof CellKey> = ['matchAfterPreprocessing', 'ema', 'objective', 'variant', 'explicitDerivatives'];

/**
 * Returns the cells of ablation families: settings within a result set that have at least one
 * cell with MaP or EMA off.
 */
export function ablationCells(context: TableContext): CellSummary[] {
  const families = new Set<string>();
  for (const cell of context.cells) {
    if (cell.key.matchAfterPreprocessing === false || cell.key.ema === false) {
      families.add(`${cell.set.scenarioHash}#${cellKeyString(cell.key, ABLATION_FIELDS)}`);
    }
  }
  return context.cells.filter((cell) => families.has(`${cell.set.scenarioHash}#${cellKeyString(cell.key, ABLATION_FIELDS)}`));
}

/** True when a cell is at the paper's MNIST Table 4 setting (D = 784, default L). */
function isPaperTable4Setting(key: CellKey): boolean {
  return (
    key.dataset === 'mnist' &&
    (key.architecture === 'fc' || key.architecture === 'cnn') &&
    key.dimension === PAPER_DIMENSIONS.mnist &&
    key.layers === PAPER_LINEAR_LAYERS[key.architecture]
  );
}

/**
 * Builds paper Table 4 (MaP × EMA ablation): every paper cell with our matching cells (or a
 * missing row), then our ablation cells that the paper has no entry for.
 */
export function buildTable4(context: TableContext): ReportTable {
  const ours = ablationCells(context);
  const used = new Set<CellSummary>();
  const rows: TableRow[] = [];

  const rowFor = (cell: CellSummary | undefined, base: Record<string, TableValue>, paperMean: number | null): TableRow => ({
    state: rowStateOf(cell),
    values: {
      ...base,
      scenario: cell === undefined ? null : context.labelOf(cell.set),
      variant: cell?.key.variant ?? null,
      dimension: cell?.key.dimension ?? base.dimension ?? null,
      batch_size: cell?.key.batchSize ?? null,
      ...runValues(cell),
      ...intervalValues('nll_nats', cell?.nllNats ?? null),
      nll_diff_nats: difference(cell?.nllNats?.mean, paperMean),
      trained_steps: cell?.trainedSteps ?? null,
    },
  });

  for (const paper of PAPER_TABLE_4) {
    const base: Record<string, TableValue> = {
      dataset: 'mnist',
      architecture: paper.architecture,
      objective: paper.objective,
      dimension: PAPER_DIMENSIONS.mnist,
      ema: onOff(paper.ema),
      map: onOff(paper.matchAfterPreprocessing),
      paper_nll_nats: paper.nllNats.mean,
      paper_nll_nats_ci: paper.nllNats.halfWidth,
    };
    const matches = context.cells.filter(
      (cell) =>
        isPaperTable4Setting(cell.key) &&
        cell.key.architecture === paper.architecture &&
        cell.key.objective === paper.objective &&
        cell.key.ema === paper.ema &&
        cell.key.matchAfterPreprocessing === paper.matchAfterPreprocessing,
    );
    if (matches.length === 0) {
      rows.push(rowFor(undefined, base, paper.nllNats.mean));
    }
    for (const cell of matches) {
      used.add(cell);
      rows.push(rowFor(cell, base, paper.nllNats.mean));
    }
  }

  for (const cell of ours.filter((candidate) => !used.has(candidate))) {
    const paper = isPaperTable4Setting(cell.key)
      ? findPaperTable4(cell.key.architecture, cell.key.objective, cell.key.ema === true, cell.key.matchAfterPreprocessing === true)
      : undefined;
    const base: Record<string, TableValue> = {
      dataset: cell.key.dataset,
      architecture: cell.key.architecture,
      objective: cell.key.objective,
      ema: onOff(cell.key.ema),
      map: onOff(cell.key.matchAfterPreprocessing),
      paper_nll_nats: paper?.nllNats.mean ?? null,
      paper_nll_nats_ci: paper?.nllNats.halfWidth ?? null,
    };
    rows.push(rowFor(cell, base, paper?.nllNats.mean ?? null));
  }

  return createTable({
    id: 'table4-map-ema',
    title: 'Table 4: MaP × EMA ablation (NLL, nats)',
    file: 'table4-map-ema.csv',
    description:
      'Test NLL with match-after-preprocessing (MaP, `config.matchAfterPreprocessing`) and EMA (`config.emaDecay` not null) switched on or off. ' +
      'The paper’s values are MNIST at D = 784 with the default L; our rows for other settings appear below them without a paper value.',
    columns: [
      { key: 'dataset', label: 'dataset', format: 'text' },
      { key: 'architecture', label: 'architecture', format: 'text' },
      { key: 'objective', label: 'objective', format: 'text' },
      { key: 'ema', label: 'EMA', format: 'text' },
      { key: 'map', label: 'MaP', format: 'text' },
      { key: 'scenario', label: 'scenario', format: 'text' },
      { key: 'variant', label: 'variant', format: 'text' },
      { key: 'dimension', label: 'D', format: 'integer' },
      { key: 'batch_size', label: 'batch', format: 'integer' },
      ...RUN_COLUMNS,
      { key: 'nll_nats', label: 'NLL (nats)', format: 'nats', measured: true },
      { key: 'nll_nats_ci', label: 'NLL ± (95%)', format: 'nats' },
      { key: 'paper_nll_nats', label: 'paper NLL', format: 'nats' },
      { key: 'paper_nll_nats_ci', label: 'paper NLL ±', format: 'nats' },
      { key: 'nll_diff_nats', label: 'NLL − paper', format: 'signedNats' },
      { key: 'trained_steps', label: 'steps trained', format: 'integer' },
    ],
    rows,
    notes: [...standardNotes(rows), ...trainingLengthNotes(rows)],
    agreement: [],
  });
}

/** Returns the counted operations of a cell's step over its median time, GFLOP/s, or null. */
function stepRate(cell: CellSummary): number | null {
  if (cell.operationsPerStep === null || cell.timing === null || !(cell.timing.median > 0)) return null;
  return cell.operationsPerStep / 1e6 / cell.timing.median;
}

/** Builds the runtime table: median ms/iteration of every timed cell, ordered by architecture, C, L and D. */
export function buildRuntimeTable(context: TableContext): ReportTable {
  const cells = context.cells.filter((cell) => cell.key.measure === 'runtime' || cell.timing !== null);
  const rows: TableRow[] = cells.map((cell) => {
    const paperMs = paperRuntimeMsFor(cell.key);
    return {
      state: rowStateOf(cell),
      values: {
        ...keyValues(context, cell),
        ...runValues(cell),
        ...timingValues(cell, context.cells),
        gflop_per_step: cell.operationsPerStep === null ? null : cell.operationsPerStep / 1e9,
        step_gflops: stepRate(cell),
        paper_ms: paperMs,
        ms_ratio: ratio(cell.timing?.median, paperMs),
      },
    };
  });
  return createTable({
    id: 'runtime',
    title: 'Runtime: ms per iteration against D and L',
    file: 'runtime.csv',
    description:
      'Median wall-clock ms of one full training iteration (preprocessing, objective, backward, optimiser and EMA update) ' +
      'over the pooled timed iterations of the completed runs, with its 95% order-statistic interval, and the speed-up over ML at the same setting. ' +
      'GFLOP/iteration counts the matrix products, convolutions and LAPACK calls of one step (element-wise work left out), on the last warm-up step; ' +
      'GFLOP/s divides it by the median time. ' +
      'The paper’s values are read off its Figure 2(a) (seconds per batch of 100 on an unnamed GPU) and are approximate.',
    columns: [
      ...KEY_COLUMNS,
      ...RUN_COLUMNS,
      ...TIMING_COLUMNS,
      { key: 'gflop_per_step', label: 'GFLOP/iteration (counted)', format: 'rate' },
      { key: 'step_gflops', label: 'GFLOP/s', format: 'rate' },
      { key: 'paper_ms', label: 'paper ms (Figure 2a, read off)', format: 'milliseconds' },
      { key: 'ms_ratio', label: 'ms ÷ paper', format: 'ratio' },
    ],
    rows,
    notes: standardNotes(rows),
    agreement: [],
  });
}

/** Notes every table carries: how missing and failed cells are shown, with counts. */
export function standardNotes(rows: readonly TableRow[]): string[] {
  const count = (state: RowState): number => rows.filter((row) => row.state === state).length;
  const notes = [
    'An empty CSV field is a value we do not have; it is never 0. On the page, the measured columns of rows without a completed run show the row’s state, and other empty cells show “—”.',
  ];
  const missing = count('missing');
  const failed = count('failed');
  const partial = count('partial');
  const skipped = count('skipped');
  if (missing > 0) {
    notes.push(`${missing} row(s) have no records (marked “missing”).`);
  }
  if (failed > 0) {
    notes.push(`${failed} row(s) have no completed run because every run diverged or errored (marked ✗); their status column says which.`);
  }
  if (partial > 0) {
    notes.push(`${partial} row(s) lost some runs to divergence or errors (marked ⚠); their numbers come from the completed runs only.`);
  }
  if (skipped > 0) {
    notes.push(`${skipped} row(s) were skipped by the runner; the status column gives the reason.`);
  }
  return notes;
}

/**
 * Returns a note on training length when rows set an NLL of ours beside the paper's: the paper's
 * NLLs come from its full training runs, so a gap from a short run reflects little of the method.
 */
export function trainingLengthNotes(rows: readonly TableRow[]): string[] {
  const compared = rows.filter((row) => typeof row.values.nll_nats === 'number' && typeof row.values.paper_nll_nats === 'number');
  const steps = compared.map((row) => row.values.trained_steps).filter((value): value is number => typeof value === 'number');
  if (steps.length === 0) return [];
  const fewest = Math.min(...steps);
  const largest = Math.max(...steps);
  const range = fewest === largest ? `${fewest}` : `${fewest}–${largest}`;
  // A row whose runs record no evaluations has no "steps trained", so the range covers only the rows with one.
  const scope = steps.length < compared.length ? ' where their records give it' : '';
  return [
    `Rows with an NLL beside the paper’s trained for ${range} steps (“steps trained”)${scope}. The paper’s NLLs come from its full ` +
      'training runs, whose published configurations allow up to 1,000 epochs for the CNN and 10,000 for FC models, so “NLL − paper” ' +
      'of a shorter run mostly measures the shorter training.',
  ];
}

/** Turns a label into a file-name fragment (letters, digits, dot, dash and underscore). */
export function fileSafe(label: string): string {
  return label.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'unnamed';
}
