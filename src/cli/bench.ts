/**
 * `npm run bench`: run a benchmark scenario and print its progress and a summary table.
 *
 * The only module of the benchmark path that prints: progress and warnings go to stderr, the
 * summary table to stdout. See BENCH_USAGE in args.ts for the options.
 */
import { pathToFileURL } from 'node:url';

import type { RunEvent } from '../runner/events.js';
import { ResultsLock, ResultsLockError } from '../runner/lock.js';
import { checkBlasRequest } from '../tensor/native-blas.js';
import { requestedKernelThreads } from '../tensor/threads/pool.js';
import { mergeResults, MixedHashError } from '../runner/results.js';
import { planRun, runScenario, ScenarioChangedError, type CellSummary } from '../runner/sweep.js';
import { DEFAULT_SCENARIO, loadScenario, shippedScenarioNames } from '../scenarios/catalog.js';
import { ScenarioError } from '../scenarios/problems.js';
import type { ResolvedScenario } from '../scenarios/scenario.js';
import { ArgumentError, BACKEND_CHOICES, BENCH_USAGE, parseBenchArguments, type BenchArguments } from './args.js';
import {
  describeOutcome,
  formatIterationTime,
  formatMedianConfidence,
  formatMinutes,
  formatNumber,
  formatSeconds,
  summaryTable,
} from './format.js';

/** Exit status when a cell of the run errored. */
export const EXIT_CELL_ERRORED = 1;
/** Exit status for invalid arguments, an invalid scenario, mixed results or no usable backend. */
export const EXIT_USAGE = 2;

/** Seconds between two progress lines of one cell. */
const PROGRESS_INTERVAL_SECONDS = 10;

/** The reporter's entry point, loaded if src/report/index.ts exists. */
type WriteReports = (options: { resultsDir: string; reportsDir: string; scenario?: string }) => Promise<{ files: string[] }>;

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/** Runs the command with `argv` (the arguments after `--`) and returns the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  let args: BenchArguments;
  try {
    args = parseBenchArguments(argv);
  } catch (error) {
    if (!(error instanceof ArgumentError)) throw error;
    log(`bench: ${error.message}`);
    return EXIT_USAGE;
  }
  if (args.help) {
    process.stdout.write(`${BENCH_USAGE}\n`);
    return 0;
  }
  if (args.list) {
    process.stdout.write(`${listScenarios()}\n`);
    return 0;
  }
  if (args.merge) return merge(args);

  const environmentProblem = checkEnvironmentRequests(args);
  if (environmentProblem !== null) {
    log(`bench: ${environmentProblem}`);
    return EXIT_USAGE;
  }

  let resolved: ResolvedScenario;
  try {
    resolved = loadScenario(args.scenario ?? DEFAULT_SCENARIO);
  } catch (error) {
    log(`bench: ${(error as Error).message}`);
    return EXIT_USAGE;
  }

  if (args.dryRun) return dryRun(args, resolved);
  return run(args, resolved);
}

async function run(args: BenchArguments, resolved: ResolvedScenario): Promise<number> {
  let backend;
  try {
    // Loaded here, so --help, --list and --dry-run do not initialise TensorFlow.js.
    const { backendRequestFromEnv, selectBackend } = await import('../backend/select.js');
    backend = await selectBackend(args.backend ?? backendRequestFromEnv());
  } catch (error) {
    log(`bench: ${(error as Error).message}`);
    return EXIT_USAGE;
  }
  const failed = backend.attempts.filter((attempt) => attempt.error !== undefined);
  log(
    `backend: ${backend.name} (${backend.packageName})` +
      (failed.length > 0 ? `; not used: ${failed.map((attempt) => `${attempt.name}: ${attempt.error}`).join('; ')}` : ''),
  );
  const { describeBlas } = await import('../tensor/native-blas.js');
  log(describeBlas(backend.blas));
  log(`kernel threads: ${backend.kernelThreads.threads} (${backend.kernelThreads.reason})`);
  log(`LAPACK threads: ${backend.lapackThreads.threads} (${backend.lapackThreads.reason})`);

  let acquired;
  try {
    acquired = ResultsLock.acquire(args.resultsRoot, resolved.scenario.name, args.shard);
  } catch (error) {
    if (!(error instanceof ResultsLockError)) throw error;
    log(`bench: ${error.message}`);
    return EXIT_USAGE;
  }
  for (const file of acquired.replaced) log(`warning: replaced the stale lock ${file} of a run that no longer exists`);

  const progress = new ProgressPrinter();
  let summary;
  try {
    summary = await runScenario(resolved, {
      resultsRoot: args.resultsRoot,
      backend,
      shard: args.shard,
      only: args.only?.filter ?? null,
      fresh: args.fresh,
      onEvent: (event) => progress.print(event),
    });
  } catch (error) {
    if (error instanceof ScenarioChangedError) {
      log(`bench: ${error.message}`);
      return EXIT_USAGE;
    }
    throw error;
  } finally {
    acquired.lock.release();
  }

  if (summary.cells.length === 0) {
    log(`no cell of scenario "${resolved.scenario.name}" matches${args.only ? ` --only ${args.only.text}` : ''}${args.shard ? ` in shard ${args.shard.index}/${args.shard.count}` : ''}`);
    // A filter that selects nothing is almost always a typo, and CI should notice it. A shard may
    // be empty while other shards hold the matching cells.
    if (args.only && !args.shard) {
      log(`bench: --only ${args.only.text} selects no cell; list the cell ids with --dry-run and no --only, and match part of one.`);
      return EXIT_USAGE;
    }
  } else {
    process.stdout.write(`\n${summaryTable(summary.cells)}\n`);
    const metrics = toyMetricsTable(summary.cells);
    if (metrics !== null) process.stdout.write(`\n${metrics}\n`);
  }
  log(`records: ${summary.folder}`);

  if (args.report) await callReporter(args, resolved.scenario.name);
  return summary.erroredNow > 0 ? EXIT_CELL_ERRORED : 0;
}

/**
 * Checks the environment variables that choose the engine before anything runs, so a typo fails
 * a dry run too. Returns the problem with its fix, or null.
 */
function checkEnvironmentRequests(args: BenchArguments): string | null {
  const backend = process.env.EBFLOW_BACKEND?.trim().toLowerCase() ?? '';
  if (args.backend === null && backend !== '' && !(BACKEND_CHOICES as readonly string[]).includes(backend)) {
    return `invalid EBFLOW_BACKEND "${process.env.EBFLOW_BACKEND}"; set it to one of ${BACKEND_CHOICES.join(', ')}, or unset it`;
  }
  const kernelThreads = requestedKernelThreads();
  if (typeof kernelThreads === 'string') return kernelThreads;
  // EBFLOW_BLAS and EBFLOW_BLAS_THREADS are checked by the loader's own rules.
  return checkBlasRequest();
}

function dryRun(args: BenchArguments, resolved: ResolvedScenario): number {
  let plan;
  try {
    plan = planRun(resolved, {
      resultsRoot: args.resultsRoot,
      shard: args.shard,
      only: args.only?.filter ?? null,
      // --fresh would move the old results aside, so every selected cell would run.
      ignoreExisting: args.fresh,
      onWarning: (message) => log(`warning: ${message}`),
    });
  } catch (error) {
    if (!(error instanceof ScenarioChangedError)) throw error;
    log(`bench: ${error.message}`);
    return EXIT_USAGE;
  }
  log(
    `scenario ${resolved.scenario.name} (hash ${resolved.hash.slice(0, 12)}…): ${resolved.cells.length} cells, ` +
      `${plan.selected.length} selected, ${plan.kept.size} already recorded, ${plan.toRun.length} would run`,
  );
  for (const cell of plan.toRun) {
    process.stdout.write(`${cell.cellId}${cell.skipReason ? `  (skipped: ${cell.skipReason})` : ''}\n`);
  }
  // The same rule as a real run: a filter that selects nothing is a typo, unless a shard is empty.
  if (args.only && !args.shard && plan.selected.length === 0) {
    log(`bench: --only ${args.only.text} selects no cell; list the cell ids with --dry-run and no --only, and match part of one.`);
    return EXIT_USAGE;
  }
  return 0;
}

function merge(args: BenchArguments): number {
  try {
    const summary = mergeResults(args.merge ?? [], args.resultsRoot);
    for (const skipped of summary.skippedFiles) log(`warning: ignoring ${skipped.file}: ${skipped.reason}`);
    for (const scenario of summary.scenarios) {
      for (const missing of scenario.missingArtifacts) {
        log(`warning: ${missing.cellId} names ${missing.path}, which is not next to its source record; merged the record without it`);
      }
      log(
        `merged scenario ${scenario.name} (hash ${scenario.hash.slice(0, 12)}…): ${scenario.records} records in ${scenario.folder}` +
          (scenario.duplicates.length > 0 ? `; ${scenario.duplicates.length} cells appeared more than once, kept the best outcome: ${scenario.duplicates.join(', ')}` : ''),
      );
    }
    if (summary.scenarios.length === 0) log('merge: no result records found in the given folders');
    return 0;
  } catch (error) {
    log(`bench: ${(error as Error).message}`);
    return error instanceof MixedHashError || (error as Error).message.startsWith('merge:') ? EXIT_USAGE : 1;
  }
}

/**
 * Renders the final metrics of the 2-D toy cells (the quantities of Table 1 of EBFlow, Chao et
 * al., NeurIPS 2023) as a table, or returns null when no cell has them.
 */
function toyMetricsTable(cells: readonly CellSummary[]): string | null {
  const rows = cells
    .filter(({ record }) => record.metrics !== undefined)
    .map(({ cellId, record }) => [
      cellId,
      formatNumber(record.metrics?.kl ?? null, 4),
      formatNumber(record.metrics?.klReference ?? null, 4),
      formatNumber(record.metrics?.fisher ?? null, 4),
      record.artifacts?.[0]?.path ?? '–',
    ]);
  if (rows.length === 0) return null;
  const header = ['toy cell', 'KL nats', "authors' KL nats", 'Fisher', 'heat-map'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const render = (row: string[]): string =>
    row.map((cell, column) => (column >= 1 && column <= 3 ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join('  ').trimEnd();
  return [render(header), render(widths.map((width) => '-'.repeat(width))), ...rows.map(render)].join('\n');
}

function listScenarios(): string {
  const lines: string[] = ['Shipped scenarios (benchmarks/*.json); minutes are rough wall-clock estimates on a 2-core machine:', ''];
  for (const name of shippedScenarioNames()) {
    try {
      const resolved = loadScenario(name);
      lines.push(`${name}  (${resolved.cells.length} cells, ${formatMinutes(resolved.scenario.estimatedMinutes)})${name === DEFAULT_SCENARIO ? '  [default]' : ''}`);
      lines.push(...wrap(resolved.scenario.description, 96).map((line) => `    ${line}`));
    } catch (error) {
      const problems = error instanceof ScenarioError ? `${error.problems.length} problem(s)` : (error as Error).message;
      lines.push(`${name}  (invalid: ${problems}; run npm run bench -- ${name} to see them)`);
    }
    lines.push('');
  }
  return lines.join('\n').trimEnd();
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

async function callReporter(args: BenchArguments, scenario: string): Promise<void> {
  let writeReports: WriteReports | undefined;
  // A variable specifier keeps tsc from requiring the reporter to exist at build time.
  const specifier = '../report/index.js';
  try {
    const module = (await import(specifier)) as { writeReports?: WriteReports };
    writeReports = module.writeReports;
  } catch (error) {
    log(`warning: the reporter could not be loaded (${(error as Error).message.split('\n')[0]}); records stay in ${args.resultsRoot}, run npm run report later`);
    return;
  }
  if (typeof writeReports !== 'function') {
    log('warning: src/report/index.ts exports no writeReports function; no report was written');
    return;
  }
  try {
    const { files } = await writeReports({ resultsDir: args.resultsRoot, reportsDir: args.reportsDir, scenario });
    const index = files.find((file) => file.endsWith('index.html'));
    log(`reports: ${files.length} files written to ${args.reportsDir}${index ? `; open ${index}` : ''}`);
  } catch (error) {
    log(`warning: the reporter failed: ${(error as Error).message}; the records are complete, run npm run report to retry`);
  }
}

/** Turns run events into progress lines, at most one iteration line per cell every 10 s. */
class ProgressPrinter {
  private lastIterationLine = 0;

  print(event: RunEvent): void {
    switch (event.type) {
      case 'scenario-start': {
        if (event.movedAsideTo) log(`moved the previous results to ${event.movedAsideTo}`);
        const shard = event.shard ? ` in shard ${event.shard.index}/${event.shard.count}` : '';
        log(
          `scenario ${event.scenario} (hash ${event.hash.slice(0, 12)}…): ${event.totalCells} cells, ${event.selectedCells} selected${shard}, ` +
            `${event.alreadyRecorded} already recorded, ${event.toRun} to run; records go to ${event.folder}`,
        );
        break;
      }
      case 'cell-resumed':
        // The scenario-start line already counts the cells kept from earlier runs.
        break;
      case 'cell-start': {
        const plan =
          event.measure === 'runtime'
            ? `runtime, ${event.plannedIterations} timed iterations${event.plannedSeconds ? ` (cap ${event.plannedSeconds} s)` : ''}`
            : `train, ${event.plannedIterations !== null ? `${event.plannedIterations} iterations` : event.plannedSeconds !== null ? `${event.plannedSeconds} s of training` : 'epoch budget'}`;
        log(`[${event.index}/${event.count}] ${event.cellId} (${plan})`);
        this.lastIterationLine = performance.now();
        break;
      }
      case 'iteration': {
        const now = performance.now();
        const last = event.plannedIterations !== null && event.phase === 'timed' && event.index === event.plannedIterations;
        if (!last && now - this.lastIterationLine < PROGRESS_INTERVAL_SECONDS * 1000) break;
        this.lastIterationLine = now;
        const position = `${event.phase === 'warmup' ? 'warm-up ' : 'it '}${event.index}${event.phase === 'timed' && event.plannedIterations !== null ? `/${event.plannedIterations}` : ''}`;
        const eta = [
          event.cellEtaSeconds !== null ? `cell ETA ${formatSeconds(event.cellEtaSeconds)}` : null,
          event.scenarioEtaSeconds !== null ? `run ETA ${formatSeconds(event.scenarioEtaSeconds)}` : null,
        ].filter(Boolean);
        log(`  ${position}  loss ${formatNumber(event.loss, 6)}  ${formatIterationTime(event.stepMs)}${eta.length > 0 ? `  ${eta.join('  ')}` : ''}`);
        break;
      }
      case 'evaluation': {
        const { point } = event;
        log(
          `  ${event.kind === 'final' ? 'final ' : ''}NLL on ${point.result.images} ${point.result.split} images at step ${point.step}: ` +
            `${formatNumber(point.result.nllNats, 6)} nats, ${formatNumber(point.result.bitsPerDim, 4)} bits/dim` +
            `${point.result.nonFinite > 0 ? `, ${point.result.nonFinite} non-finite left out` : ''} (${formatSeconds(event.seconds)})`,
        );
        break;
      }
      case 'cell-end': {
        const { record } = event;
        const timing = record.timing;
        const speed = timing
          ? `; median ${formatIterationTime(timing.medianMs)} (${formatMedianConfidence(timing)}), ${formatNumber(1000 / timing.medianMs, 3)} it/s`
          : '';
        log(`  -> ${describeOutcome(record)}${speed} (cell took ${formatSeconds(event.wallSeconds)})`);
        if (record.metrics) {
          log(
            `  KL ${formatNumber(record.metrics.kl ?? null, 4)} nats, the authors' KL-type quantity ${formatNumber(record.metrics.klReference ?? null, 4)} nats, ` +
              `Fisher divergence ${formatNumber(record.metrics.fisher ?? null, 4)}${record.artifacts?.[0] ? `; heat-map ${record.artifacts[0].path}` : ''}`,
          );
        } else if (record.toy && record.finalNll) {
          log(`  test NLL ${formatNumber(record.finalNll.nllNats, 6)} nats per point on ${record.finalNll.images} points`);
        }
        break;
      }
      case 'warning':
        log(`warning${event.cellId ? ` [${event.cellId}]` : ''}: ${event.message}`);
        break;
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (status) => {
      process.exitCode = status;
    },
    (error: unknown) => {
      log(`bench: unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      process.exitCode = EXIT_CELL_ERRORED;
    },
  );
}
