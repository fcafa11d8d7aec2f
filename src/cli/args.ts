/**
 * Command-line arguments of `npm run bench`. Parsing only; src/cli/bench.ts acts on them.
 */
import type { BackendRequest } from '../backend/select.js';
import { parseCellFilter, parseShard, type CellFilter, type Shard } from '../runner/selection.js';
import { closestMatch } from '../scenarios/problems.js';

export interface BenchArguments {
  /** Scenario name (a file in benchmarks/) or path; null for the default scenario. */
  scenario: string | null;
  /** Backend request for `selectBackend`, or null to use EBFLOW_BACKEND or automatic selection. */
  backend: string | null;
  shard: Shard | null;
  /** The --only text as given, and its parsed filter. */
  only: { text: string; filter: CellFilter } | null;
  fresh: boolean;
  resultsRoot: string;
  reportsDir: string;
  /** False with --no-report. */
  report: boolean;
  list: boolean;
  help: boolean;
  dryRun: boolean;
  /** Result folders to merge, or null when not merging. */
  merge: string[] | null;
}

/** Thrown for invalid arguments; the message names the argument, the value and the fix. */
export class ArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArgumentError';
  }
}

/**
 * The values of --backend; the same list as BACKEND_REQUESTS of src/backend/select.ts (a test
 * checks this), repeated here so that parsing arguments does not load TensorFlow.js.
 */
export const BACKEND_CHOICES = ['auto', 'gpu', 'node', 'wasm', 'cpu'] as const satisfies readonly BackendRequest[];

const VALUE_OPTIONS = ['--backend', '--shard', '--only', '--results', '--reports'] as const;
const FLAG_OPTIONS = ['--fresh', '--list', '--help', '--dry-run', '--no-report', '--merge'] as const;
const ALL_OPTIONS: readonly string[] = [...VALUE_OPTIONS, ...FLAG_OPTIONS, '-h'];

export const BENCH_USAGE = `Usage: npm run bench -- [scenario] [options]
       npm run bench -- --merge <folder> [<folder> …] [--results <dir>]

Runs a benchmark scenario: a grid of EBFlow training runs ("cells") described by a JSON file, and
writes one result record per cell to <results>/<scenario name>/<cell id>.json. A re-run skips cells
already recorded as completed, diverged or skipped and runs errored or missing cells again.

Arguments:
  scenario              the name of a file in benchmarks/ (without .json) or the path of a
                        scenario file; default: benchmarks/default.json

Options:
  --backend <name>      TensorFlow.js backend: gpu, node, wasm, cpu or auto (default: auto, or the
                        environment variable EBFLOW_BACKEND); auto takes the first that loads, in
                        the order gpu, node, wasm, cpu
  --shard <i>/<n>       run only shard i of n (1-based): with cells sorted by id, cell k (from 0)
                        belongs to shard (k mod n) + 1; the n shards together cover every cell once
  --only <filter>       run only cells whose id contains this text, or matches it when written as
                        /regular expression/ (ids look like mnist/fc/ssm/D784/L2/B100/seed0)
  --fresh               move the scenario's existing results to
                        <results>/<scenario name>.old-<UTC timestamp>/ and start afresh (needed
                        after the scenario or the code changed its hash); nothing is deleted
  --results <dir>       folder of result records (default: results)
  --reports <dir>       folder the reporter writes to after the run (default: reports)
  --no-report           do not call the reporter after the run
  --dry-run             list the cells this run would run (after --shard, --only and resume),
                        then exit without running them
  --merge <folder>…     combine the records of several result folders (for example the shards of a
                        CI matrix or Slurm array) into <results>/<scenario name>/; rejects folders
                        holding different versions (hashes) of one scenario
  --list                list the shipped scenarios with their descriptions and estimated durations
                        (minutes of wall-clock time on a 2-core machine)
  --help, -h            show this help

Environment: EBFLOW_BACKEND chooses the backend as --backend does; EBFLOW_BLAS=off keeps the
wasm backend's matrix products and LU off OpenBLAS, EBFLOW_BLAS=<file> names the library, and
EBFLOW_BLAS_THREADS=<n> sets its threads (default: every core; calls of fewer than 4·10⁷
operations, such as the products and LU of D = 256 steps, run on one). EBFLOW_LU=lapack runs
the LU and inverses with LAPACK's sgetrf and sgetri instead of the recursive routines.
EBFLOW_WASM_THREADS=<n> sets the threads of the wasm backend's element-wise kernels (default:
every core, at most 16; 1 keeps them on one thread). Results are the same on any thread count,
so records are kept when only these settings change; use --fresh or --results to time another
setting.

Units: results report time per iteration in ms, iterations per second (it/s), NLL in nats per
image and bits per dimension. Exit status: 0 when every cell of the run completed, diverged or was
skipped; 1 when a cell errored; 2 for invalid arguments, an invalid scenario or mixed results.`;

/**
 * Parses the arguments after `npm run bench --`. Accepts "--option value" and "--option=value".
 * Throws ArgumentError naming the bad argument or value.
 */
export function parseBenchArguments(argv: readonly string[]): BenchArguments {
  const result: BenchArguments = {
    scenario: null,
    backend: null,
    shard: null,
    only: null,
    fresh: false,
    resultsRoot: 'results',
    reportsDir: 'reports',
    report: true,
    list: false,
    help: false,
    dryRun: false,
    merge: null,
  };
  const seen = new Set<string>();

  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    if (!argument.startsWith('-') || argument === '-') {
      if (result.merge !== null) result.merge.push(argument);
      else if (result.scenario === null) result.scenario = argument;
      else {
        throw new ArgumentError(
          `unexpected argument "${argument}": a scenario ("${result.scenario}") was already given; pass one scenario per run`,
        );
      }
      continue;
    }

    const equals = argument.indexOf('=');
    const option = equals >= 0 ? argument.slice(0, equals) : argument;
    if (!ALL_OPTIONS.includes(option)) {
      const suggestion = closestMatch(option, ALL_OPTIONS);
      throw new ArgumentError(`unknown option "${option}"${suggestion ? `; did you mean ${suggestion}?` : ''}. Run with --help to see every option.`);
    }
    if (seen.has(option) && option !== '-h' && option !== '--help') {
      throw new ArgumentError(`option ${option} was given twice; give it once`);
    }
    seen.add(option);

    if ((FLAG_OPTIONS as readonly string[]).includes(option) || option === '-h') {
      if (equals >= 0) throw new ArgumentError(`option ${option} takes no value, but "${argument}" gives one; write ${option} alone`);
      applyFlag(result, option);
      continue;
    }

    let value: string;
    if (equals >= 0) value = argument.slice(equals + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && ALL_OPTIONS.includes(next.split('=')[0]))) {
        throw new ArgumentError(`option ${option} needs a value; see --help`);
      }
      value = next;
      i += 1;
    }
    applyValue(result, option, value);
  }

  checkCombinations(result);
  return result;
}

function applyFlag(result: BenchArguments, option: string): void {
  switch (option) {
    case '--fresh':
      result.fresh = true;
      break;
    case '--list':
      result.list = true;
      break;
    case '--help':
    case '-h':
      result.help = true;
      break;
    case '--dry-run':
      result.dryRun = true;
      break;
    case '--no-report':
      result.report = false;
      break;
    case '--merge':
      result.merge = [];
      break;
  }
}

function applyValue(result: BenchArguments, option: string, value: string): void {
  switch (option) {
    case '--backend': {
      const normalized = value.trim().toLowerCase();
      if (!(BACKEND_CHOICES as readonly string[]).includes(normalized)) {
        throw new ArgumentError(`--backend: unknown backend "${value}"; use one of ${BACKEND_CHOICES.join(', ')}`);
      }
      result.backend = normalized;
      break;
    }
    case '--shard':
      try {
        result.shard = parseShard(value);
      } catch (error) {
        throw new ArgumentError((error as Error).message);
      }
      break;
    case '--only':
      try {
        result.only = { text: value, filter: parseCellFilter(value) };
      } catch (error) {
        throw new ArgumentError((error as Error).message);
      }
      break;
    case '--results':
    case '--reports':
      if (value.trim() === '') throw new ArgumentError(`${option}: empty folder name; give a folder path`);
      if (option === '--results') result.resultsRoot = value;
      else result.reportsDir = value;
      break;
  }
}

function checkCombinations(result: BenchArguments): void {
  if (result.help || result.list) return;
  if (result.merge !== null) {
    if (result.scenario !== null) {
      throw new ArgumentError(`--merge combines result folders and takes no scenario, but "${result.scenario}" was given before it; remove it`);
    }
    if (result.merge.length === 0) throw new ArgumentError('--merge needs at least one result folder, such as --merge shard-1/results shard-2/results');
    const conflicting = [
      result.shard && '--shard',
      result.only && '--only',
      result.fresh && '--fresh',
      result.dryRun && '--dry-run',
      result.backend && '--backend',
    ].filter(Boolean);
    if (conflicting.length > 0) {
      throw new ArgumentError(`--merge runs no cells, so ${conflicting.join(' and ')} cannot be used with it; remove ${conflicting.length > 1 ? 'them' : 'it'}`);
    }
  }
}
