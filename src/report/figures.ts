/**
 * Vega-Lite specifications of the report's figures, with their data inlined. "The paper" is Chao
 * et al., NeurIPS 2023, whose numbers `paper-results.ts` lists with their sources.
 *
 * Every interval is drawn from explicit `low` and `high` fields. Points whose value is not positive
 * cannot sit on a log axis: they are removed from the data and counted in the figure's notes,
 * which appear in its subtitle and on the page.
 */
import { cellKeyString, objectiveRank, type CellKey, type CellSummary } from './cells.js';
import { PAPER_FIGURE_2A, PAPER_LINEAR_LAYERS, findPaperTable4 } from './paper-results.js';
import type { LoadedArtifact } from './artifacts.js';
import { paperTable2For, rowStateOf, type TableContext } from './tables.js';

/** A Vega-Lite top-level specification as plain JSON. */
export type VegaLiteSpec = Record<string, unknown>;

export interface FigureDefinition {
  id: string;
  title: string;
  /** Description of the figure for the page. */
  caption: string;
  /** Data caveats (points left out, failed cells), shown in the subtitle and on the page. */
  notes: string[];
  spec: VegaLiteSpec;
}

/** A figure that was not drawn, with the reason. */
export interface OmittedFigure {
  id: string;
  title: string;
  reason: string;
}

const FONT = 'DejaVu Sans';

/** Shared Vega-Lite config: the only installed font family, white background, readable sizes. */
export const FIGURE_CONFIG = {
  font: FONT,
  background: 'white',
  padding: 8,
  title: { anchor: 'start', fontSize: 14, subtitleFontSize: 11, subtitleColor: '#444', offset: 8 },
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true },
  header: { labelFontSize: 12, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  view: { stroke: '#bbb' },
};

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

function objectiveScale(objectives: Iterable<string>): Record<string, unknown> {
  const domain = [...new Set(objectives)].sort((a, b) => objectiveRank(a) - objectiveRank(b) || a.localeCompare(b));
  return { domain, scheme: 'category10' };
}

/** Returns a readable label of a cell's setting without the fields in `ignore`, broken into lines of at most 45 characters. */
export function panelLabel(context: TableContext, cell: CellSummary, ignore: ReadonlyArray<keyof CellKey>): string {
  const key = cell.key;
  const multipleSets = new Set(context.cells.map((other) => other.set)).size > 1;
  const parts: string[] = [];
  if (multipleSets) {
    parts.push(context.labelOf(cell.set));
  }
  parts.push(key.dataset, key.architecture.toUpperCase());

  const show = (field: keyof CellKey): boolean => !ignore.includes(field);
  if (show('channels') && key.channels !== null) {
    parts.push(`C=${key.channels}`);
  }
  if (show('dimension')) {
    parts.push(`D=${key.dimension}`);
  }
  if (show('layers') && key.layers !== null) {
    parts.push(`L=${key.layers}`);
  }
  if (show('batchSize') && key.batchSize !== null) {
    parts.push(`B=${key.batchSize}`);
  }

  if (key.variant !== null) {
    parts.push(key.variant);
  }
  if (key.matchAfterPreprocessing === false) {
    parts.push('MaP off');
  }
  if (key.ema === false) {
    parts.push('EMA off');
  }
  if (key.explicitDerivatives === true) {
    parts.push('explicit derivatives');
  }
  if (show('measure') && key.measure !== 'runtime') {
    parts.push(`${key.measure} run`);
  }
  return wrapParts(parts, PANEL_LINE_LENGTH);
}

/** Maximum line length of a facet header, in characters (a 260-px panel fits about 45 at 12 px). */
const PANEL_LINE_LENGTH = 45;

/** Joins label parts with " · ", breaking lines ("\n") before a line would exceed `maxLength`. */
function wrapParts(parts: string[], maxLength: number): string {
  const lines: string[] = [];
  let line = '';
  for (const part of parts) {
    if (line.length > 0 && line.length + part.length + 3 > maxLength) {
      lines.push(line);
      line = part;
    } else {
      line = line.length > 0 ? `${line} · ${part}` : part;
    }
  }
  lines.push(line);
  return lines.join('\n');
}

/** Returns a panel label on one line, for notes and the page. */
function flatLabel(label: string): string {
  return label.replace(/\n/g, ' · ');
}

/** Facet header showing multi-line panel labels in full. */
const PANEL_HEADER = { labelExpr: "split(datum.label, '\\n')", labelLimit: 0, labelFontSize: 12 };

function describeCell(context: TableContext, cell: CellSummary): string {
  return `${flatLabel(panelLabel(context, cell, []))} · ${cell.key.objective} (${cell.status})`;
}

/** Groups cells by their key without `variable`; keeps the families with at least 2 distinct values of it. */
function familiesVarying(cells: readonly CellSummary[], variable: 'dimension' | 'layers'): CellSummary[][] {
  const families = new Map<string, CellSummary[]>();
  for (const cell of cells) {
    if (cell.key[variable] === null) {
      continue;
    }
    const id = `${cell.set.scenarioHash}#${cellKeyString(cell.key, [variable, 'objective'])}`;
    families.set(id, [...(families.get(id) ?? []), cell]);
  }
  return [...families.values()].filter((members) => new Set(members.map((cell) => cell.key[variable])).size >= 2);
}

interface RuntimeDatum {
  panel: string;
  objective: string;
  source: string;
  x: number;
  ms: number;
  low: number | null;
  high: number | null;
}

/**
 * Returns a spec that draws `panel` once per value of the data's `panel` field, two panels to a
 * row, each with its own axes, under `title` with the notes as subtitle lines.
 */
function panelsByField(title: string, notes: readonly string[], data: readonly object[], panel: Record<string, unknown>): VegaLiteSpec {
  return {
    $schema: SCHEMA,
    config: FIGURE_CONFIG,
    title: { text: title, subtitle: notes.length > 0 ? notes.map(wrapNote).flat() : undefined },
    data: { values: data },
    facet: { field: 'panel', type: 'nominal', title: null, header: PANEL_HEADER },
    columns: 2,
    resolve: { scale: { y: 'independent', x: 'independent' } },
    spec: panel,
  };
}

/**
 * Builds Figure 2(a) of the paper or its L counterpart: median ms/iteration against D (or L) on
 * log-log axes, one line per objective, one panel per setting, with the paper's read-off values
 * as dashed lines in the matching D panels.
 */
export function buildRuntimeFigure(context: TableContext, variable: 'dimension' | 'layers'): FigureDefinition | OmittedFigure {
  const id = variable === 'dimension' ? 'runtime-vs-dimension' : 'runtime-vs-layers';
  const axisName = variable === 'dimension' ? 'D' : 'L';
  const title = `Runtime per iteration against ${axisName}`;
  const families = familiesVarying(context.cells, variable);
  if (families.length === 0) {
    return { id, title, reason: `no result set has cells at two or more values of ${axisName}` };
  }

  const data: RuntimeDatum[] = [];
  const notes: string[] = [];
  const notDrawn: string[] = [];
  let nonPositive = 0;
  let nonPositiveIntervals = 0;
  const ignore: Array<keyof CellKey> = [variable];

  for (const family of families) {
    for (const cell of family) {
      const panel = panelLabel(context, cell, ignore);
      if (cell.timing === null) {
        notDrawn.push(describeCell(context, cell));
        continue;
      }
      if (!(cell.timing.median > 0)) {
        nonPositive += 1;
        continue;
      }
      let { low, high } = cell.timing;
      if (low !== null && !(low > 0)) {
        nonPositiveIntervals += 1;
        low = null;
        high = null;
      }
      data.push({ panel, objective: cell.key.objective, source: 'ours', x: cell.key[variable] as number, ms: cell.timing.median, low, high });
    }
  }

  if (variable === 'dimension') {
    data.push(...paperRuntimePoints(context, families));
  }
  if (nonPositive > 0) {
    notes.push(`${nonPositive} point(s) with a non-positive median were left out (a log axis cannot show them).`);
  }
  if (nonPositiveIntervals > 0) {
    notes.push(`${nonPositiveIntervals} interval(s) with a non-positive lower end were left out; their medians are drawn.`);
  }
  if (notDrawn.length > 0) {
    notes.push(`Not drawn (no completed timing): ${notDrawn.join('; ')}.`);
  }
  if (data.some((datum) => datum.source !== 'ours')) {
    notes.push('Dashed lines: the paper’s Figure 2(a), read off the plot (batch 100, unnamed GPU).');
  }
  if (data.length === 0) {
    return { id, title, reason: `no cell varying ${axisName} has a positive timed median` };
  }

  const sources = [...new Set(data.map((datum) => datum.source))].sort();
  const encodingX = { field: 'x', type: 'quantitative', scale: { type: 'log', nice: false }, title: axisName };
  const spec = panelsByField(title, notes, data, {
    width: 260,
    height: 200,
    layer: [
      {
        mark: { type: 'line', strokeWidth: 1.5 },
        encoding: {
          x: encodingX,
          y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'ms per iteration (median)' },
          color: { field: 'objective', type: 'nominal', scale: objectiveScale(data.map((datum) => datum.objective)) },
          strokeDash: {
            field: 'source',
            type: 'nominal',
            title: 'source',
            scale: { domain: sources, range: sources.map((source) => (source === 'ours' ? [1, 0] : [5, 3])) },
            legend: { symbolStrokeColor: '#333', symbolStrokeWidth: 2 },
          },
        },
      },
      {
        mark: { type: 'point', filled: true, size: 30 },
        encoding: {
          x: encodingX,
          y: { field: 'ms', type: 'quantitative' },
          color: { field: 'objective', type: 'nominal' },
        },
      },
      {
        transform: [{ filter: 'datum.low != null && datum.high != null' }],
        mark: { type: 'rule', strokeWidth: 1.5 },
        encoding: {
          x: encodingX,
          y: { field: 'low', type: 'quantitative', scale: { type: 'log' } },
          y2: { field: 'high' },
          color: { field: 'objective', type: 'nominal' },
        },
      },
    ],
  });
  return {
    id,
    title,
    caption:
      `Median wall-clock ms of one training iteration against ${axisName} (log–log), one line per objective and one panel per setting. ` +
      'Vertical bars: 95% order-statistic intervals of the median.',
    notes,
    spec,
  };
}

/**
 * Builds the rate figure: counted operations per step over the median time (GFLOP/s) against D,
 * one line per objective, one panel per setting. It shows why the time exponents of
 * `scaling.csv` fall below the operation exponents: small sizes run at a lower rate.
 */
export function buildRateFigure(context: TableContext): FigureDefinition | OmittedFigure {
  const id = 'rate-vs-dimension';
  const title = 'Counted GFLOP/s against D';
  const data: Array<{ panel: string; objective: string; x: number; rate: number }> = [];
  for (const family of familiesVarying(context.cells, 'dimension')) {
    for (const cell of family) {
      if (cell.operationsPerStep === null || cell.timing === null || !(cell.timing.median > 0)) continue;
      data.push({
        panel: panelLabel(context, cell, ['dimension']),
        objective: cell.key.objective,
        x: cell.key.dimension as number,
        rate: cell.operationsPerStep / 1e6 / cell.timing.median,
      });
    }
  }
  if (data.length === 0) {
    return { id, title, reason: 'no runtime cell at two or more values of D recorded an operation count' };
  }

  const encodingX = { field: 'x', type: 'quantitative', scale: { type: 'log', nice: false }, title: 'D' };
  const encodingY = { field: 'rate', type: 'quantitative', title: 'GFLOP/s (counted)' };
  const color = { field: 'objective', type: 'nominal', scale: objectiveScale(data.map((datum) => datum.objective)) };
  const spec = panelsByField(title, [], data, {
    width: 260,
    height: 200,
    layer: [
      { mark: { type: 'line', strokeWidth: 1.5 }, encoding: { x: encodingX, y: encodingY, color } },
      { mark: { type: 'point', filled: true, size: 30 }, encoding: { x: encodingX, y: encodingY, color } },
    ],
  });
  return {
    id,
    title,
    caption:
      'Operations of one step (matrix products, convolutions and LAPACK calls, counted on the last warm-up step) divided by the median ms per iteration, ' +
      'against D (log axis), one line per objective and one panel per setting. A rate that rises with D makes the time grow more slowly than the operations.',
    notes: [],
    spec,
  };
}

function paperRuntimePoints(context: TableContext, families: CellSummary[][]): RuntimeDatum[] {
  const points: RuntimeDatum[] = [];
  const panelsDone = new Set<string>();
  for (const family of families) {
    const key = family[0].key;
    if ((key.architecture !== 'fc' && key.architecture !== 'cnn') || key.layers !== PAPER_LINEAR_LAYERS[key.architecture]) {
      continue;
    }
    const panel = panelLabel(context, family[0], ['dimension']);
    if (panelsDone.has(panel)) {
      continue;
    }
    panelsDone.add(panel);
    for (const point of PAPER_FIGURE_2A) {
      if (point.architecture === key.architecture && point.channels === key.channels && point.seconds !== null) {
        points.push({ panel, objective: point.objective, source: 'paper (Figure 2a)', x: point.dimension, ms: point.seconds * 1000, low: null, high: null });
      }
    }
  }
  return points;
}

/** Builds Figure 2(b) of the paper: validation bits/dim against training wall-clock time, one line per run. */
export function buildNllOverTimeFigure(context: TableContext): FigureDefinition | OmittedFigure {
  const id = 'nll-vs-time';
  const title = 'Validation bits/dim against training time';
  const data: Array<Record<string, unknown>> = [];
  let nonFinite = 0;
  let testOnlyRuns = 0;
  const failedRuns: string[] = [];

  for (const cell of context.cells) {
    const panel = panelLabel(context, cell, ['objective']);
    for (const run of cell.runs) {
      const evaluations = run.record.evaluations ?? [];
      const validation = evaluations.filter((point) => point.result.split === 'validation');
      const chosen = validation.length > 0 ? validation : evaluations;
      if (validation.length === 0 && chosen.length > 0) {
        testOnlyRuns += 1;
      }
      if (chosen.length > 0 && run.record.outcome.status !== 'completed') {
        failedRuns.push(`${run.record.cellId} (${run.record.outcome.status})`);
      }
      for (const point of chosen) {
        if (!Number.isFinite(point.result.bitsPerDim) || !Number.isFinite(point.trainingSeconds)) {
          nonFinite += 1;
          continue;
        }
        data.push({
          panel,
          objective: cell.key.objective,
          run: run.record.cellId,
          outcome: run.record.outcome.status,
          seconds: point.trainingSeconds,
          bitsPerDim: point.result.bitsPerDim,
          nllNats: point.result.nllNats,
          step: point.step,
        });
      }
    }
  }
  if (data.length === 0) {
    return { id, title, reason: 'no record has evaluations with finite bits/dim' };
  }
  const outcomes = ['completed', 'diverged', 'errored', 'skipped'].filter((outcome) => data.some((datum) => datum.outcome === outcome));
  const notes: string[] = [];
  if (nonFinite > 0) {
    notes.push(`${nonFinite} evaluation(s) with a non-finite value were left out.`);
  }
  if (testOnlyRuns > 0) {
    notes.push(`${testOnlyRuns} run(s) had only test evaluations, which are drawn instead.`);
  }
  if (failedRuns.length > 0) {
    notes.push(`Dotted lines: runs that did not complete (${failedRuns.join('; ')}).`);
  }
  const spec = panelsByField(title, notes, data, {
    width: 260,
    height: 200,
    encoding: {
      x: { field: 'seconds', type: 'quantitative', title: 'training time (s)' },
      y: { field: 'bitsPerDim', type: 'quantitative', scale: { zero: false }, title: 'bits/dim' },
      color: { field: 'objective', type: 'nominal', scale: objectiveScale(data.map((datum) => datum.objective as string)) },
      detail: { field: 'run', type: 'nominal' },
    },
    layer: [
      {
        mark: { type: 'line', strokeWidth: 1.5 },
        encoding: {
          strokeDash: {
            field: 'outcome',
            type: 'nominal',
            title: 'run outcome',
            scale: { domain: outcomes, range: outcomes.map((outcome) => (outcome === 'completed' ? [1, 0] : [2, 2])) },
            legend: { symbolStrokeColor: '#333', symbolStrokeWidth: 2 },
          },
        },
      },
      { mark: { type: 'point', filled: true, size: 30 } },
    ],
  });
  return {
    id,
    title,
    caption:
      'Bits/dim of each run’s periodic evaluations (validation split where present) against the training wall-clock seconds at that point ' +
      '(the sum of iteration times, evaluations excluded), one line per run.',
    notes,
    spec,
  };
}

/** Builds the NLL bars per objective with 95% intervals, one panel per setting, the paper's values as black ticks. */
export function buildNllBarsFigure(context: TableContext): FigureDefinition | OmittedFigure {
  const id = 'nll-by-objective';
  const title = 'Test NLL per objective';
  const data: Array<Record<string, unknown>> = [];
  const notDrawn: string[] = [];
  const panelsWithData = new Set<string>();

  for (const cell of context.cells) {
    if (cell.key.measure !== 'train') {
      continue;
    }
    const panel = panelLabel(context, cell, ['objective']);
    if (cell.nllNats === null) {
      if (rowStateOf(cell) !== 'ok') {
        notDrawn.push(describeCell(context, cell));
      }
      continue;
    }
    panelsWithData.add(panel);
    const halfWidth = cell.nllNats.halfWidth;
    data.push({
      panel,
      objective: cell.key.objective,
      source: 'ours',
      nll: cell.nllNats.mean,
      low: halfWidth === null ? null : cell.nllNats.mean - halfWidth,
      high: halfWidth === null ? null : cell.nllNats.mean + halfWidth,
      runs: cell.nllNats.count,
      status: cell.status,
    });
    const paper = paperNllFor(cell.key);
    if (paper !== null) {
      data.push({ panel, objective: cell.key.objective, source: 'paper', nll: paper, low: null, high: null, runs: 3, status: 'published' });
    }
  }
  if (panelsWithData.size === 0) {
    return { id, title, reason: 'no train cell has a final NLL' };
  }
  setBarBase(data);
  const notes: string[] = [];
  if (notDrawn.length > 0) {
    notes.push(`Missing bars (no completed run with an NLL): ${notDrawn.join('; ')}.`);
  }
  if (data.some((datum) => datum.source === 'paper')) {
    notes.push('Black ticks: the paper’s published NLL (Table 2 or Table 4).');
  }
  if (data.some((datum) => datum.source === 'ours' && datum.low === null)) {
    notes.push('Bars without an interval come from a single run.');
  }
  const objectiveOrder = [...new Set(data.map((datum) => datum.objective as string))].sort((a, b) => objectiveRank(a) - objectiveRank(b));
  const objectiveField = { field: 'objective', type: 'nominal', sort: objectiveOrder, title: 'objective' };
  const spec = panelsByField(title, notes, data, {
    width: 240,
    height: 200,
    layer: [
      {
        transform: [{ filter: "datum.source == 'ours'" }],
        mark: { type: 'bar', opacity: 0.85 },
        encoding: {
          x: objectiveField,
          y: { field: 'nll', type: 'quantitative', scale: { zero: false }, title: 'NLL (nats per image)' },
          y2: { field: 'base' },
          color: { field: 'objective', type: 'nominal', scale: objectiveScale(data.map((datum) => datum.objective as string)), legend: null },
        },
      },
      {
        transform: [{ filter: "datum.source == 'ours' && datum.low != null" }],
        mark: { type: 'rule', strokeWidth: 1.5, color: '#222' },
        encoding: { x: objectiveField, y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' } },
      },
      {
        transform: [{ filter: "datum.source == 'paper'" }],
        mark: { type: 'tick', color: 'black', thickness: 2 },
        encoding: { x: objectiveField, y: { field: 'nll', type: 'quantitative' } },
      },
    ],
  });
  return {
    id,
    title,
    caption:
      'Mean final NLL over runs per objective (bars) with 95% Student-t intervals. The y axis does not start at 0: ' +
      'each panel’s bars start a little below its smallest value, so their heights show differences, not ratios.',
    notes,
    spec,
  };
}

/**
 * Sets each datum's `base`, where its bar starts: 5% of the panel's value range below the panel's
 * smallest value (1% of that value when the range is 0), so differences of a few nats stay visible.
 */
function setBarBase(data: Array<Record<string, unknown>>): void {
  const panels = new Set(data.map((datum) => datum.panel as string));
  for (const panel of panels) {
    const members = data.filter((datum) => datum.panel === panel);
    const values = members.flatMap((datum) => [datum.nll, datum.low, datum.high]).filter((value): value is number => typeof value === 'number');
    const low = Math.min(...values);
    const range = Math.max(...values) - low;
    const base = low - (range > 0 ? 0.05 * range : 0.01 * Math.abs(low));
    for (const datum of members) {
      datum.base = base;
    }
  }
}

function paperNllFor(key: CellKey): number | null {
  const table2 = paperTable2For(key);
  if (table2 !== undefined) {
    return table2.nllNats.mean;
  }
  if (key.dataset === 'mnist' && (key.architecture === 'fc' || key.architecture === 'cnn') && key.dimension === 784 && key.layers === PAPER_LINEAR_LAYERS[key.architecture]) {
    return findPaperTable4(key.architecture, key.objective, key.ema === true, key.matchAfterPreprocessing === true)?.nllNats.mean ?? null;
  }
  return null;
}

/** Builds one gallery per artifact kind (toy heat-maps, sample grids, …) from the image files the records name. */
export function buildArtifactFigures(artifacts: readonly LoadedArtifact[]): Array<FigureDefinition | OmittedFigure> {
  const kinds = [...new Set(artifacts.map((artifact) => artifact.kind))].sort();
  return kinds.map((kind) => {
    const id = `artifacts-${kind.replace(/[^A-Za-z0-9_-]+/g, '-')}`;
    const title = `Images: ${kind}`;
    const ofKind = artifacts.filter((artifact) => artifact.kind === kind);
    const shown = ofKind.filter((artifact) => artifact.dataUrl !== null);
    const notes = ofKind
      .filter((artifact) => artifact.dataUrl === null)
      .map((artifact) => `${artifact.scenario}: ${artifact.cellId}: ${artifact.problem ?? 'not shown'} (${artifact.path}).`);
    if (shown.length === 0) {
      return { id, title, reason: `no readable image among ${ofKind.length} artifact(s) of kind ${kind}: ${notes.join(' ')}` };
    }
    const spec: VegaLiteSpec = {
      $schema: SCHEMA,
      config: { ...FIGURE_CONFIG, view: { stroke: null } },
      title: { text: title, subtitle: notes.length > 0 ? notes.map(wrapNote).flat() : undefined },
      data: { values: shown.map((artifact) => ({ label: `${artifact.scenario}: ${artifact.cellId}`, url: artifact.dataUrl })) },
      facet: { field: 'label', type: 'nominal', title: null, header: { labelLimit: 300, labelFontSize: 10 } },
      columns: 4,
      spec: {
        width: 160,
        height: 160,
        mark: { type: 'image', width: 156, height: 156, aspect: true, align: 'center', baseline: 'middle', aria: false },
        encoding: { url: { field: 'url', type: 'nominal' }, x: { value: 80 }, y: { value: 80 } },
      },
    };
    return {
      id,
      title,
      caption: `Images of kind “${kind}” that the records point to, one per cell run.`,
      notes,
      spec,
    };
  });
}

/** Splits a long note into subtitle lines of at most about 110 characters. */
function wrapNote(note: string): string[] {
  const words = note.split(' ');
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line.length > 0 && line.length + word.length + 1 > 110) {
      lines.push(line);
      line = word;
    } else {
      line = line.length > 0 ? `${line} ${word}` : word;
    }
  }
  if (line.length > 0) {
    lines.push(line);
  }
  return lines;
}

/** Builds every figure the data supports and lists the ones it does not. */
export function buildFigures(
  context: TableContext,
  artifacts: readonly LoadedArtifact[],
): { figures: FigureDefinition[]; omitted: OmittedFigure[] } {
  const candidates = [
    buildRuntimeFigure(context, 'dimension'),
    buildRuntimeFigure(context, 'layers'),
    buildRateFigure(context),
    buildNllOverTimeFigure(context),
    buildNllBarsFigure(context),
    ...buildArtifactFigures(artifacts),
  ];
  const figures = candidates.filter((candidate): candidate is FigureDefinition => 'spec' in candidate);
  const omitted = candidates.filter((candidate): candidate is OmittedFigure => !('spec' in candidate));
  if (artifacts.length === 0) {
    omitted.push({ id: 'artifacts', title: 'Images (toy heat-maps, sample grids)', reason: 'no record lists image artifacts' });
  }
  return { figures, omitted };
}
