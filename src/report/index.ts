/**
 * The reporter: turns the result records under a results folder into the tables of Section 5 of
 * the EBFlow paper (Chao et al., NeurIPS 2023) as CSV, its figures (Vega-Lite spec, SVG, PNG), a
 * self-contained index.html and a README.md.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import {
  describeObjectiveTable,
  describeRuntimeTable,
  describeScalingTable,
  describeSpeedUpTable,
  describeTable1,
  describeTable2,
  describeTable4,
} from './agreement.js';
import { loadArtifacts } from './artifacts.js';
import { summarizeSet } from './cells.js';
import { buildComparisonTable, describeComparison } from './compare.js';
import { buildFigures } from './figures.js';
import { renderComparisonHtml, renderComparisonMarkdown, renderHtml, renderMarkdown, type RenderedFigure } from './page.js';
import { loadResults, setLabel, type LoadedResults, type NotComparableScenario, type ResultSet, type SkippedFile } from './records.js';
import { prefixSvgIds, renderSvg, svgToPng } from './render.js';
import { buildScalingTable, buildSpeedUpTable } from './scaling.js';
import { tableToCsv, type ReportTable } from './table.js';
import {
  buildObjectiveTable,
  buildRuntimeTable,
  buildTable1,
  buildTable2,
  buildTable4,
  type TableContext,
} from './tables.js';

export { tableToText, tableToCsv, tableToMarkdown, type ReportTable } from './table.js';
export { loadResults, type LoadedResults } from './records.js';

export interface WriteReportsOptions {
  /** Folder of result records (searched recursively). */
  resultsDir: string;
  /** Folder the report is written to; created when missing. */
  reportsDir: string;
  /** Report only the result sets of this scenario name. */
  scenario?: string;
  /** Write a comparison of these two result folders instead of the report. */
  compare?: [string, string];
  /** Heading of the page and README, for example "Reference report: 2-core AMD EPYC, 2026-12-05"; default "ebflow-bench report". */
  title?: string;
}

export interface WriteReportsResult {
  /** Absolute paths of every file written. */
  files: string[];
  /** The tables written, in page order (the first ones are the per-scenario objective tables). */
  tables: ReportTable[];
  /** Files under the results folder(s) that were not readable records. */
  skipped: SkippedFile[];
  /** Scenario names that occur with more than one scenario hash. */
  notComparable: NotComparableScenario[];
}

function displayPath(folder: string): string {
  const relative = path.relative(process.cwd(), folder);
  return relative === '' ? '.' : relative.startsWith('..') ? folder : relative;
}

/**
 * Writes the report of `resultsDir` to `reportsDir`, or the comparison of two result folders
 * when `compare` is given. Returns the files written.
 *
 * 1. Load records: unreadable files are listed, sets are grouped by scenario name and hash.
 * 2. Summarize each set's cell groups and build the tables, each with generated sentences against
 *    the paper.
 * 3. Build the figures the data supports and render each to SVG and PNG.
 * 4. Write tables/*.csv, figures/*.{vl.json,svg,png}, index.html and README.md.
 *
 * Cost: linear in the records' size, plus one Vega render and one PNG rasterisation per figure.
 * Throws when `scenario` names no result set (the message lists the ones found).
 */
export async function writeReports(options: WriteReportsOptions): Promise<WriteReportsResult> {
  const reportsDir = path.resolve(options.reportsDir);
  if (options.compare !== undefined) {
    return writeComparison(options.compare, reportsDir);
  }

  const loaded = await loadResults(options.resultsDir);
  const sets = selectSets(loaded, options.scenario);
  const selected: LoadedResults = {
    ...loaded,
    sets,
    notComparable: loaded.notComparable.filter((entry) => sets.some((set) => set.scenarioName === entry.scenarioName)),
  };
  const labelOf = (set: ResultSet): string => setLabel(set, selected);
  const context: TableContext = { cells: sets.flatMap(summarizeSet), labelOf };

  const tables = buildTables(context, sets);
  const artifacts = await loadArtifacts(selected);
  const { figures, omitted } = buildFigures(context, artifacts);

  const files: string[] = [];
  const write = async (relative: string, content: string | Buffer): Promise<void> => {
    const file = path.join(reportsDir, relative);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
    files.push(file);
  };

  for (const table of tables) {
    await write(path.join('tables', table.file), tableToCsv(table));
  }

  const rendered: RenderedFigure[] = [];
  for (const figure of figures) {
    const specFile = `figures/${figure.id}.vl.json`;
    const svgFile = `figures/${figure.id}.svg`;
    const pngFile = `figures/${figure.id}.png`;
    const svg = await renderSvg(figure.id, figure.spec);
    await write(specFile, `${JSON.stringify(figure.spec, null, 2)}\n`);
    await write(svgFile, svg);
    await write(pngFile, svgToPng(svg));
    rendered.push({ definition: figure, svg: prefixSvgIds(svg, `figure-${figure.id}`), specFile, svgFile, pngFile });
  }

  const reportCommand = [
    'npm run report --',
    `--results ${displayPath(loaded.resultsDir)}`,
    `--out ${displayPath(reportsDir)}`,
    options.scenario !== undefined ? `--scenario ${options.scenario}` : '',
    options.title !== undefined ? `--title ${JSON.stringify(options.title)}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  const pageInput = {
    title: options.title ?? 'ebflow-bench report',
    generatedAt: new Date().toISOString(),
    reportCommand,
    loaded: selected,
    sets,
    labelOf,
    tables,
    figures: rendered,
    omitted,
  };
  await write('index.html', renderHtml(pageInput));
  await write('README.md', renderMarkdown(pageInput));

  return { files, tables, skipped: loaded.skipped, notComparable: selected.notComparable };
}

function selectSets(loaded: LoadedResults, scenario: string | undefined): ResultSet[] {
  if (scenario === undefined) {
    return loaded.sets;
  }
  const sets = loaded.sets.filter((set) => set.scenarioName === scenario);
  if (sets.length === 0) {
    const available = [...new Set(loaded.sets.map((set) => set.scenarioName))];
    throw new Error(
      `report: no results for scenario "${scenario}" under ${loaded.resultsDir}; ` +
        (available.length > 0 ? `found ${available.join(', ')}.` : 'the folder has no result records.') +
        ' Pass one of those names to --scenario, or leave it out to report every scenario.',
    );
  }
  return sets;
}

/** Builds every table in page order and fills in its sentences against the paper. */
function buildTables(context: TableContext, sets: ResultSet[]): ReportTable[] {
  const objectiveTables = sets.map((set) => buildObjectiveTable(context, set));
  for (const table of objectiveTables) {
    table.agreement = describeObjectiveTable(table);
  }
  const table1 = buildTable1(context);
  table1.agreement = describeTable1(table1);
  const table2 = buildTable2(context);
  table2.agreement = describeTable2(table2);
  const table4 = buildTable4(context);
  table4.agreement = describeTable4(table4);
  const runtime = buildRuntimeTable(context);
  runtime.agreement = describeRuntimeTable(runtime);
  const scaling = buildScalingTable(context);
  scaling.agreement = describeScalingTable(scaling);
  const speedUps = buildSpeedUpTable(context);
  speedUps.agreement = describeSpeedUpTable(speedUps);
  return [...objectiveTables, table1, table2, table4, runtime, scaling, speedUps];
}

async function writeComparison([folderA, folderB]: [string, string], reportsDir: string): Promise<WriteReportsResult> {
  const [a, b] = await Promise.all([loadResults(folderA), loadResults(folderB)]);
  const table = buildComparisonTable(a, b);
  table.agreement = describeComparison(table);
  const generatedAt = new Date().toISOString();
  const command = `npm run report -- --compare ${displayPath(a.resultsDir)} ${displayPath(b.resultsDir)} --out ${displayPath(reportsDir)}`;

  await mkdir(reportsDir, { recursive: true });
  const files = [path.join(reportsDir, 'comparison.csv'), path.join(reportsDir, 'comparison.md'), path.join(reportsDir, 'comparison.html')];
  await writeFile(files[0], tableToCsv(table));
  await writeFile(files[1], renderComparisonMarkdown(table, generatedAt, command));
  await writeFile(files[2], renderComparisonHtml(table, generatedAt, command));
  return {
    files,
    tables: [table],
    skipped: [...a.skipped, ...b.skipped],
    notComparable: [...a.notComparable, ...b.notComparable],
  };
}
