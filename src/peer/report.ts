/**
 * Writes a peer comparison: a CSV row per cell, a plain-text table, a Vega-Lite chart (spec and
 * SVG), a JSON file with every raw sample and, when the cells span three sizes D or more, the
 * fitted exponents of time in D (`scaling.ts`).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { stringify } from 'csv-stringify/sync';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

import type { PeerComparisonReport } from './bench.js';
import { peerScalingCsv, peerScalingFits } from './scaling.js';
import type { CellComparison } from './sweep.js';

export const PEER_REPORT_FILES = {
  csv: 'peer-comparison.csv',
  json: 'peer-comparison.json',
  spec: 'peer-comparison.vl.json',
  svg: 'peer-comparison.svg',
  /** Written only when some family of cells spans `MIN_SCALING_POINTS` sizes D or more. */
  scaling: 'peer-scaling.csv',
} as const;

/** The machine's only fonts are DejaVu; naming one keeps the SVG's text metrics stable. */
const CHART_FONT = 'DejaVu Sans';

function fixed(value: number | null, digits: number): string {
  return value === null ? '' : value.toFixed(digits);
}

function peerMedian(comparison: CellComparison, threads: number): number | null {
  return comparison.peer.find((series) => series.threads === threads)?.medianMs ?? null;
}

function dimension(comparison: CellComparison): number {
  const [height, width, channels] = comparison.cell.imageShape;
  return height * width * channels;
}

/**
 * Returns the CSV text: a header and one row per cell; empty fields for missing figures. Columns
 * added later go at the end, so older readers find the others where they were.
 */
export function peerComparisonCsv(report: PeerComparisonReport): string {
  const threadColumns = report.peerThreads.map((threads) => `peer_${threads}t_median_ms`);
  const header = [
    'arch', 'objective', 'image_shape', 'D', 'L', 'batch',
    'ours_median_ms', ...threadColumns, 'peer_best_ms', 'peer_best_threads', 'ratio_ours_over_peer',
    'warmup', 'iterations', 'rounds', 'machine', 'cpu_count', 'backend', 'peer_engine', 'peer_version', 'peer_blas',
    'peer_omp_wait_policy', 'ours_blas', 'ours_kernel_threads', 'ours_lapack_threads',
  ];
  const rows = report.comparisons.map((comparison) => [
    comparison.cell.arch,
    comparison.cell.objective,
    comparison.cell.imageShape.join('x'),
    dimension(comparison),
    comparison.cell.depth,
    comparison.cell.batch,
    fixed(comparison.ours.medianMs, 3),
    ...report.peerThreads.map((threads) => fixed(peerMedian(comparison, threads), 3)),
    fixed(comparison.betterPeer?.medianMs ?? null, 3),
    comparison.betterPeer?.threads ?? '',
    fixed(comparison.ratio, 3),
    report.timing.warmup,
    report.timing.iterations,
    report.timing.rounds,
    report.machine.cpuModel,
    report.machine.cpuCount,
    report.ours.backend,
    report.peer?.engine ?? '',
    report.peer?.version ?? '',
    report.peer?.blas ?? '',
    report.peer?.ompWaitPolicy ?? '',
    report.ours.blas ?? '',
    report.ours.kernelThreads ?? '',
    report.ours.lapackThreads ?? '',
  ]);
  return stringify([header, ...rows]);
}

/** Returns the comparison as an aligned plain-text table, one line per cell, for the terminal. */
export function formatPeerTable(report: PeerComparisonReport): string {
  const engine = report.peer?.engine ?? 'peer';
  const header = [
    'cell', `ours (${report.ours.backend}) ms`,
    ...report.peerThreads.map((threads) => `${engine} ${threads}t ms`),
    `best ${engine} ms`, `ours/${engine}`,
  ];
  const rows = report.comparisons.map((comparison) => [
    comparison.cellId,
    fixed(comparison.ours.medianMs, 1) || 'failed',
    ...report.peerThreads.map((threads) => fixed(peerMedian(comparison, threads), 1) || '-'),
    comparison.betterPeer === null ? '-' : `${comparison.betterPeer.medianMs.toFixed(1)} (${comparison.betterPeer.threads}t)`,
    comparison.ratio === null ? '-' : `${comparison.ratio.toFixed(2)}x`,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const render = (cells: string[]): string =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  return [render(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(render)].join('\n');
}

/**
 * Returns a Vega-Lite spec: median step time per objective, one bar per side (ours, and the
 * peer at each thread count), one panel per architecture and input shape, log-scaled ms.
 */
export function peerChartSpec(report: PeerComparisonReport): TopLevelSpec {
  const engine = report.peer?.engine ?? 'peer';
  const values = report.comparisons.flatMap((comparison) => {
    const panel = `${comparison.cell.arch.toUpperCase()} ${comparison.cell.imageShape.join('×')} L${comparison.cell.depth}`;
    const bars = [{ side: `ours (${report.ours.backend})`, medianMs: comparison.ours.medianMs }];
    for (const series of comparison.peer) {
      bars.push({ side: `${engine}, ${series.threads} thread${series.threads === 1 ? '' : 's'}`, medianMs: series.medianMs });
    }
    return bars
      .filter((bar) => bar.medianMs !== null)
      .map((bar) => ({ panel, objective: comparison.cell.objective, ...bar }));
  });

  const rounds = `${report.timing.rounds} interleaved round${report.timing.rounds === 1 ? '' : 's'}`;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `Median training-step time, ours against ${engine}`,
      subtitle: `batch ${report.comparisons[0]?.cell.batch ?? '?'}, ${rounds} of ` +
        `${report.timing.iterations} timed steps, ${report.machine.cpuModel} (${report.machine.cpuCount} CPUs)`,
    },
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', title: null } },
    spec: {
      width: 260,
      height: 220,
      mark: 'bar',
      encoding: {
        x: { field: 'objective', type: 'nominal', sort: ['ml', 'sml', 'ssm', 'dsm', 'fdssm'], title: 'objective' },
        xOffset: { field: 'side', type: 'nominal' },
        y: { field: 'medianMs', type: 'quantitative', stack: null, scale: { type: 'log' }, title: 'median step time (ms, log scale)' },
        color: { field: 'side', type: 'nominal', title: null },
        tooltip: [
          { field: 'side', type: 'nominal' },
          { field: 'objective', type: 'nominal' },
          { field: 'medianMs', type: 'quantitative', format: '.1f', title: 'median ms' },
        ],
      },
    },
    // Vega-Lite cuts legend labels at 160 px by default, which shortened "ours (wasm+openblas)".
    config: { font: CHART_FONT, legend: { orient: 'bottom', labelLimit: 400 } },
  };
}

/** Renders a Vega-Lite spec to SVG text headlessly (no canvas, no network). */
export async function renderVegaLiteSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * The paths `writePeerReport` wrote. `scaling` is present only when there were exponents to fit.
 * `keptComparison`, the JSON of the comparison left in place, is present when a run without
 * timings of the peer went to `WITHOUT_PEER_FOLDER`.
 */
export type PeerReportPaths = Omit<Record<keyof typeof PEER_REPORT_FILES, string>, 'scaling'> & { scaling?: string; keptComparison?: string };

/** The subfolder for the report of a run without timings of the peer, when the folder has a comparison with them. */
export const WITHOUT_PEER_FOLDER = 'without-peer';

/**
 * Writes the report files into `directory` (created when missing) and returns their paths: the
 * CSV, JSON, spec and SVG always, `peer-scaling.csv` when `peerScalingFits` finds a family (and
 * otherwise it removes an older `peer-scaling.csv` from the folder). A report without a median
 * of the peer (it never started, or every run of it failed) does not replace a comparison that
 * has one, nor a JSON file it cannot parse: it goes to the subfolder `WITHOUT_PEER_FOLDER` instead.
 */
export async function writePeerReport(report: PeerComparisonReport, directory: string): Promise<PeerReportPaths> {
  const existing = join(directory, PEER_REPORT_FILES.json);
  const previous = await readPreviousReport(existing);
  // A file that is there but cannot be read may be a comparison cut short, so it is kept too.
  const keepExisting = !hasPeerTimings(report) && (previous === 'unreadable' || hasPeerTimings(previous));
  const target = keepExisting ? join(directory, WITHOUT_PEER_FOLDER) : directory;
  await mkdir(target, { recursive: true });
  const paths: PeerReportPaths = {
    csv: join(target, PEER_REPORT_FILES.csv),
    json: join(target, PEER_REPORT_FILES.json),
    spec: join(target, PEER_REPORT_FILES.spec),
    svg: join(target, PEER_REPORT_FILES.svg),
    ...(keepExisting ? { keptComparison: existing } : {}),
  };
  const spec = peerChartSpec(report);
  await writeFile(paths.csv, peerComparisonCsv(report));
  await writeFile(paths.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(paths.spec, `${JSON.stringify(spec, null, 2)}\n`);
  await writeFile(paths.svg, await renderVegaLiteSvg(spec));
  const fits = peerScalingFits(report);
  const scalingFile = join(target, PEER_REPORT_FILES.scaling);
  if (fits.length > 0) {
    paths.scaling = scalingFile;
    await writeFile(scalingFile, peerScalingCsv(fits));
  } else {
    // A fit from an earlier run into this folder would otherwise sit beside reports it does not describe.
    await rm(scalingFile, { force: true });
  }
  return paths;
}

/** Returns the report stored in `path`: null when the file is missing, 'unreadable' when it is not valid JSON. */
async function readPreviousReport(path: string): Promise<Partial<PeerComparisonReport> | null | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  try {
    return JSON.parse(text) as Partial<PeerComparisonReport>;
  } catch {
    return 'unreadable';
  }
}

/** Returns whether `report` has a median of the peer for some cell; false for null and 'unreadable'. */
function hasPeerTimings(report: Partial<PeerComparisonReport> | null | 'unreadable'): boolean {
  if (report === null || report === 'unreadable' || report.peer === null || report.peer === undefined) return false;
  if (!Array.isArray(report.comparisons)) return false;
  return report.comparisons.some((comparison) => Array.isArray(comparison.peer) && comparison.peer.some((series) => typeof series.medianMs === 'number'));
}
