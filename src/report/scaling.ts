/**
 * Scaling fits: how runtime per iteration grows with D and with L, measured as the slope of
 * ln(ms) against ln(D) or ln(L), set beside the cost each objective states (O(D²L) for SSM, DSM
 * and FDSSM, O(D³L) for ML and SML). Also the speed-up of every objective over ML at each D.
 * "The paper" is Chao et al., NeurIPS 2023, whose numbers `paper-results.ts` lists with their sources.
 */
import { cellKeyString, findMlReference, objectiveRank, speedUpOverMl, type CellKey, type CellSummary } from './cells.js';
import { PAPER_FIGURE_2A, PAPER_LINEAR_LAYERS, STATED_COST } from './paper-results.js';
import type { ResultSet } from './records.js';
import { fitLine, type LinearFit } from './statistics.js';
import { createTable, type ReportTable, type TableRow } from './table.js';
import { rowStateOf, standardNotes, type TableContext } from './tables.js';

export type ScalingVariable = 'dimension' | 'layers';

/** One runtime point of a fit: the varied value and the median ms/iteration there. */
export interface ScalingPoint {
  x: number;
  milliseconds: number;
  /** Counted operations of one step there (`CellSummary.operationsPerStep`); null or absent when not counted. */
  operations?: number | null;
}

/** A fitted exponent of runtime in D or in L for one family of cells that differ only in that variable. */
export interface ScalingFit {
  source: 'ours' | 'paper';
  /** Result set label, or the figure name for the paper's points. */
  scenario: string;
  dataset: string;
  architecture: string;
  objective: string;
  channels: number | null;
  variable: ScalingVariable;
  /** The other variable's fixed value (L for a fit in D, D for a fit in L). */
  fixedValue: number | null;
  batchSize: number | null;
  /** Points with a positive median, which the fit uses. */
  points: ScalingPoint[];
  /** Points left out because their median was not positive (ln undefined). */
  excludedPoints: number;
  /** OLS of ln(ms) on ln(x); null with fewer than 2 distinct x values. */
  fit: LinearFit | null;
  /**
   * OLS of ln(counted operations per step) on ln(x) over the same points: the exponent the time
   * would have if every size ran at the same rate. Null unless every point has a count.
   */
  operationsFit: LinearFit | null;
  statedCost: string | null;
  /** The exponent the stated cost gives for this variable (3 or 2 in D, 1 in L). */
  statedExponent: number | null;
}

function statedFor(objective: string, variable: ScalingVariable): { cost: string | null; exponent: number | null } {
  const stated = STATED_COST[objective as keyof typeof STATED_COST];
  if (stated === undefined) {
    return { cost: null, exponent: null };
  }
  return { cost: stated.text, exponent: variable === 'dimension' ? stated.dimensionExponent : stated.layerExponent };
}

/**
 * Fits ln(median ms) = a + b·ln(x) by OLS for every family of timed cells of one result set that
 * differ only in x (D or L), with a 95% t-interval on b. O(cells · log cells).
 */
export function fitRuntimeScaling(
  cells: readonly CellSummary[],
  variable: ScalingVariable,
  labelOf: (set: ResultSet) => string,
): ScalingFit[] {
  const families = new Map<string, CellSummary[]>();
  for (const cell of cells) {
    if (cell.timing === null || cell.key[variable] === null) {
      continue;
    }
    const id = `${cell.set.scenarioHash}#${cellKeyString(cell.key, [variable])}`;
    families.set(id, [...(families.get(id) ?? []), cell]);
  }

  const fits: ScalingFit[] = [];
  for (const members of families.values()) {
    const xs = new Set(members.map((cell) => cell.key[variable]));
    if (xs.size < 2) {
      continue;
    }
    const sorted = [...members].sort((a, b) => (a.key[variable] as number) - (b.key[variable] as number));
    const all = sorted.map((cell) => ({ x: cell.key[variable] as number, milliseconds: cell.timing!.median, operations: cell.operationsPerStep }));
    const key: CellKey = sorted[0].key;
    fits.push(
      makeFit({
        source: 'ours',
        scenario: labelOf(sorted[0].set),
        dataset: key.dataset,
        architecture: key.architecture,
        objective: key.objective,
        channels: key.channels,
        variable,
        fixedValue: variable === 'dimension' ? key.layers : key.dimension,
        batchSize: key.batchSize,
        allPoints: all,
      }),
    );
  }
  return fits.sort(compareFits);
}

function makeFit(options: Omit<ScalingFit, 'points' | 'excludedPoints' | 'fit' | 'operationsFit' | 'statedCost' | 'statedExponent'> & { allPoints: ScalingPoint[] }): ScalingFit {
  const { allPoints, ...rest } = options;
  const points = allPoints.filter((point) => point.milliseconds > 0 && point.x > 0);
  const stated = statedFor(rest.objective, rest.variable);
  const counted = points.every((point) => point.operations != null && point.operations > 0);
  return {
    ...rest,
    points,
    excludedPoints: allPoints.length - points.length,
    fit: fitLine(
      points.map((point) => Math.log(point.x)),
      points.map((point) => Math.log(point.milliseconds)),
    ),
    operationsFit: counted
      ? fitLine(
          points.map((point) => Math.log(point.x)),
          points.map((point) => Math.log(point.operations as number)),
        )
      : null,
    statedCost: stated.cost,
    statedExponent: stated.exponent,
  };
}

function compareFits(a: ScalingFit, b: ScalingFit): number {
  return (
    a.source.localeCompare(b.source) ||
    a.scenario.localeCompare(b.scenario) ||
    a.variable.localeCompare(b.variable) ||
    a.dataset.localeCompare(b.dataset) ||
    a.architecture.localeCompare(b.architecture) ||
    (a.channels ?? 0) - (b.channels ?? 0) ||
    (a.fixedValue ?? 0) - (b.fixedValue ?? 0) ||
    objectiveRank(a.objective) - objectiveRank(b.objective)
  );
}

/** Fits the same exponents in D to the paper's Figure 2(a) values (read off the plot, approximate). */
export function fitPaperScaling(): ScalingFit[] {
  const fits: ScalingFit[] = [];
  const panels = new Set(PAPER_FIGURE_2A.map((point) => `${point.architecture}|${point.channels}|${point.objective}`));
  for (const panel of panels) {
    const [architecture, channels, objective] = panel.split('|');
    const points = PAPER_FIGURE_2A.filter(
      (point) => point.architecture === architecture && String(point.channels) === channels && point.objective === objective && point.seconds !== null,
    );
    if (points.length < 2) {
      continue;
    }
    fits.push(
      makeFit({
        source: 'paper',
        scenario: 'paper Figure 2(a)',
        // The paper does not say which data fed its runtime figure.
        dataset: 'not stated',
        architecture,
        objective,
        channels: Number(channels),
        variable: 'dimension',
        fixedValue: PAPER_LINEAR_LAYERS[architecture as 'fc' | 'cnn'],
        batchSize: 100,
        allPoints: points.map((point) => ({ x: point.dimension, milliseconds: point.seconds! * 1000 })),
      }),
    );
  }
  return fits.sort(compareFits);
}

/** Builds the table of fitted exponents (ours, then the paper's Figure 2(a) for comparison). */
export function buildScalingTable(context: TableContext): ReportTable {
  const fits = [
    ...fitRuntimeScaling(context.cells, 'dimension', context.labelOf),
    ...fitRuntimeScaling(context.cells, 'layers', context.labelOf),
    ...fitPaperScaling(),
  ];
  const rows: TableRow[] = fits.map((fit) => ({
    state: 'ok',
    values: {
      source: fit.source,
      scenario: fit.scenario,
      dataset: fit.dataset,
      architecture: fit.architecture,
      channels: fit.channels,
      objective: fit.objective,
      variable: fit.variable === 'dimension' ? 'D' : 'L',
      fixed: fit.fixedValue === null ? null : `${fit.variable === 'dimension' ? 'L' : 'D'}=${fit.fixedValue}`,
      batch_size: fit.batchSize,
      range: fit.points.length === 0 ? null : `${fit.points[0].x}–${fit.points[fit.points.length - 1].x}`,
      points: fit.points.length,
      excluded_points: fit.excludedPoints,
      exponent: fit.fit?.slope ?? null,
      exponent_ci_low: fit.fit?.slopeHalfWidth == null ? null : fit.fit.slope - fit.fit.slopeHalfWidth,
      exponent_ci_high: fit.fit?.slopeHalfWidth == null ? null : fit.fit.slope + fit.fit.slopeHalfWidth,
      stated_cost: fit.statedCost,
      stated_exponent: fit.statedExponent,
      operations_exponent: fit.operationsFit?.slope ?? null,
    },
  }));
  const excluded = fits.reduce((sum, fit) => sum + fit.excludedPoints, 0);
  const notes = [
    'The exponent is the OLS slope of ln(median ms/iteration) on ln(D) or ln(L) over cells that differ only in that variable; the interval is the slope’s 95% t-interval (needs 3 or more points).',
    'The stated cost is an asymptotic bound for dense linear layers. At small D, costs that do not grow with D (kernel launches, element-wise work, O(D²) products) dominate, so measured exponents below the stated one are expected.',
    'The operations exponent fits the counted operations of one step (matrix products, convolutions and LAPACK calls) over the same points: the exponent the time would show if every size ran at the same rate. ' +
      'A time exponent below it means the larger sizes ran at a higher rate. For the FC model’s ML step at batch B the count is 2BD²(3L − 1) for the products (the first layer’s input needs no gradient) plus 2D³L for the log-determinants and inverses, so the D³ term dominates only from D = B(3L − 1)/L on (D = 250 for B = 100 and L = 2).',
  ];
  if (excluded > 0) {
    notes.push(`${excluded} point(s) with a non-positive median were left out of the fits (ln is undefined there).`);
  }
  if (fits.every((fit) => fit.source === 'paper')) {
    notes.push('No result set has timed cells at two or more values of D or L, so only the paper’s fits are shown.');
  }
  return createTable({
    id: 'scaling',
    title: 'Scaling fits: runtime exponent in D and in L',
    file: 'scaling.csv',
    description:
      'Fitted exponent b of runtime ∝ D^b (at fixed L) and ∝ L^b (at fixed D), per objective and architecture, next to the cost the objective states. ' +
      'Rows of source “paper” fit the values read off the paper’s Figure 2(a).',
    columns: [
      { key: 'source', label: 'source', format: 'text' },
      { key: 'scenario', label: 'scenario', format: 'text' },
      { key: 'dataset', label: 'dataset', format: 'text' },
      { key: 'architecture', label: 'architecture', format: 'text' },
      { key: 'channels', label: 'C', format: 'integer' },
      { key: 'objective', label: 'objective', format: 'text' },
      { key: 'variable', label: 'variable', format: 'text' },
      { key: 'fixed', label: 'held fixed', format: 'text' },
      { key: 'batch_size', label: 'batch', format: 'integer' },
      { key: 'range', label: 'range', format: 'text' },
      { key: 'points', label: 'points', format: 'integer' },
      { key: 'excluded_points', label: 'non-positive points left out', format: 'integer' },
      { key: 'exponent', label: 'fitted exponent', format: 'exponent' },
      { key: 'exponent_ci_low', label: '95% CI low', format: 'exponent' },
      { key: 'exponent_ci_high', label: '95% CI high', format: 'exponent' },
      { key: 'stated_cost', label: 'stated cost', format: 'text' },
      { key: 'stated_exponent', label: 'stated exponent', format: 'integer' },
      { key: 'operations_exponent', label: 'exponent of counted operations', format: 'exponent' },
    ],
    rows,
    notes,
    agreement: [],
  });
}

/** Builds the table of speed-ups over ML at every D (ours, and the paper's Figure 2(a) where readable). */
export function buildSpeedUpTable(context: TableContext): ReportTable {
  const rows: TableRow[] = [];
  for (const cell of context.cells) {
    if (cell.key.objective === 'ml' || cell.timing === null) {
      continue;
    }
    const reference = findMlReference(cell, context.cells);
    const speedUp = speedUpOverMl(cell, reference);
    if (reference === undefined) {
      continue;
    }
    const paper = paperSpeedUpAt(cell.key);
    rows.push({
      state: rowStateOf(cell) === 'ok' && rowStateOf(reference) === 'ok' ? 'ok' : 'partial',
      values: {
        scenario: context.labelOf(cell.set),
        dataset: cell.key.dataset,
        architecture: cell.key.architecture,
        channels: cell.key.channels,
        layers: cell.key.layers,
        batch_size: cell.key.batchSize,
        variant: cell.key.variant,
        measure: cell.key.measure,
        dimension: cell.key.dimension,
        objective: cell.key.objective,
        ml_median_ms: reference.timing?.median ?? null,
        median_ms: cell.timing.median,
        speedup_vs_ml: speedUp?.ratio ?? null,
        speedup_ci_low: speedUp?.low ?? null,
        speedup_ci_high: speedUp?.high ?? null,
        paper_speedup_vs_ml: paper,
      },
    });
  }
  return createTable({
    id: 'speedups',
    title: 'Speed-up of each objective over ML at every D',
    file: 'speedups.csv',
    description:
      'Median ms/iteration of the ML cell divided by the objective’s, at the same setting. The interval divides the ends of the two medians’ 95% intervals ' +
      '(a conservative range, not a 95% interval of the ratio). The paper column divides the values read off its Figure 2(a).',
    columns: [
      { key: 'scenario', label: 'scenario', format: 'text' },
      { key: 'dataset', label: 'dataset', format: 'text' },
      { key: 'architecture', label: 'architecture', format: 'text' },
      { key: 'channels', label: 'C', format: 'integer' },
      { key: 'layers', label: 'L', format: 'integer' },
      { key: 'batch_size', label: 'batch', format: 'integer' },
      { key: 'variant', label: 'variant', format: 'text' },
      { key: 'measure', label: 'measure', format: 'text' },
      { key: 'dimension', label: 'D', format: 'integer' },
      { key: 'objective', label: 'objective', format: 'text' },
      { key: 'ml_median_ms', label: 'ML median ms', format: 'milliseconds' },
      { key: 'median_ms', label: 'median ms', format: 'milliseconds' },
      { key: 'speedup_vs_ml', label: 'speed-up over ML', format: 'ratio' },
      { key: 'speedup_ci_low', label: 'range low', format: 'ratio' },
      { key: 'speedup_ci_high', label: 'range high', format: 'ratio' },
      { key: 'paper_speedup_vs_ml', label: 'paper speed-up (Figure 2a)', format: 'ratio' },
    ],
    rows,
    notes: standardNotes(rows),
    agreement: [],
  });
}

function paperSpeedUpAt(key: CellKey): number | null {
  if (key.channels === null || (key.architecture !== 'fc' && key.architecture !== 'cnn') || key.layers !== PAPER_LINEAR_LAYERS[key.architecture]) {
    return null;
  }
  const at = (objective: string): number | null =>
    PAPER_FIGURE_2A.find(
      (point) => point.architecture === key.architecture && point.channels === key.channels && point.dimension === key.dimension && point.objective === objective,
    )?.seconds ?? null;
  const ml = at('ml');
  const own = at(key.objective);
  return ml === null || own === null ? null : ml / own;
}
