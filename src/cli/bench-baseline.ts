/**
 * `npm run bench:baseline`: records the gate's baseline from several runs of the gate scenario,
 * each in a fresh Node process as `bench:check` runs, and writes
 * results/baselines/<scenario name>.<machine>.<cpu>.json for this CPU. See docs/ci-gate.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { buildBaseline, cpuBaselinePath, currentCpuModel, currentCpuSignature, MIN_BASELINE_RUNS, writeBaseline } from '../gate/baseline.js';
import { parseSlowdownInjection, SLOWDOWN_VARIABLE } from '../gate/injection.js';
import type { GateBaseline, GateRun } from '../gate/records.js';
import { loadGateScenario, type GateScenario } from '../gate/scenario.js';
import { describeSweepEvent, renderBaselineSummary } from '../gate/table.js';

const USAGE = `Usage: npm run bench:baseline -- [options]

Runs the gate scenario several times, each in a fresh process, and writes the baseline that
npm run bench:check compares with on this CPU. For each cell the baseline's reference is
the run with the median time, so it is never taken from a single run.

Options:
  --runs N          number of runs, at least ${MIN_BASELINE_RUNS} (default 3)
  --scenario FILE   gate scenario (default benchmarks/gate.json)
  --backend NAME    auto, gpu, node, wasm or cpu (default: $EBFLOW_BACKEND, else auto)
  --output FILE     where to write it (default
                    results/baselines/<scenario name>.<machine>.<cpu>.json, where <machine> is
                    this CPU model's name and <cpu> its vendor, family and model number from
                    /proc/cpuinfo, in lower case with '-' for other characters, for example
                    gate.intel-r-xeon-r-processor.genuineintel-6-207.json; without
                    /proc/cpuinfo, results/baselines/<scenario name>.<machine>.json). On a CPU
                    without its own file, bench:check reads the file of its model name, else
                    results/baselines/<scenario name>.json, and reports it "not comparable"
                    (exit 3) when another CPU recorded it, unless run with --allow-other-cpu
  --help            print this text

Commit the written file. Exit codes: 0 written, 2 invalid input or a failed run.`;

const EXIT_WRITTEN = 0;
const EXIT_ERROR = 2;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        runs: { type: 'string', default: '3' },
        scenario: { type: 'string', default: 'benchmarks/gate.json' },
        backend: { type: 'string' },
        output: { type: 'string' },
        'child-run': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`bench:baseline: ${(error as Error).message}\n\n${USAGE}\n`);
    return EXIT_ERROR;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_WRITTEN;
  }

  let scenario: GateScenario;
  try {
    const injection = parseSlowdownInjection(process.env[SLOWDOWN_VARIABLE]);
    if (injection.length > 0) {
      throw new RangeError(`${SLOWDOWN_VARIABLE} is set, which would record a test-only slowdown into the baseline; unset it and run again`);
    }
    scenario = loadGateScenario(values.scenario);
  } catch (error) {
    process.stderr.write(`bench:baseline: ${(error as Error).message}\n`);
    return EXIT_ERROR;
  }

  // Internal mode: the parent process starts one child per run with --child-run FILE.
  const childOutput = values['child-run'];
  if (childOutput !== undefined) {
    return runOnce(scenario, values.backend, childOutput);
  }

  const runs = Number(values.runs);
  if (!Number.isSafeInteger(runs) || runs < MIN_BASELINE_RUNS) {
    process.stderr.write(`bench:baseline: --runs must be an integer ≥ ${MIN_BASELINE_RUNS}, received ${JSON.stringify(values.runs)}\n`);
    return EXIT_ERROR;
  }
  const ownPath = cpuBaselinePath(scenario.name, currentCpuModel(), currentCpuSignature());
  const output = values.output ?? ownPath;
  const results: GateRun[] = [];
  const folder = mkdtempSync(path.join(os.tmpdir(), 'ebflow-gate-baseline-'));
  try {
    for (let index = 1; index <= runs; index += 1) {
      process.stderr.write(`bench:baseline: run ${index}/${runs}\n`);
      const file = path.join(folder, `run-${index}.json`);
      const args = [fileURLToPath(import.meta.url), '--child-run', file, '--scenario', values.scenario];
      if (values.backend !== undefined) args.push('--backend', values.backend);
      const child = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
      if (child.status !== 0) {
        process.stderr.write(`bench:baseline: run ${index} failed (exit status ${child.status ?? child.signal}); nothing was written\n`);
        return EXIT_ERROR;
      }
      results.push(JSON.parse(readFileSync(file, 'utf8')) as GateRun);
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }

  let baseline: GateBaseline;
  try {
    baseline = buildBaseline(results);
  } catch (error) {
    process.stderr.write(`bench:baseline: ${(error as Error).message}\n`);
    return EXIT_ERROR;
  }
  writeBaseline(output, baseline);
  const use = values.output === undefined || path.resolve(output) === path.resolve(ownPath)
    ? 'commit it, and bench:check compares with it on this CPU'
    : `bench:check compares with it when run with --baseline ${output} (by default it reads ${ownPath} on this CPU)`;
  process.stdout.write(`${renderBaselineSummary(baseline, scenario)}\nWrote ${output}; ${use}.\n`);
  return EXIT_WRITTEN;
}

/** Runs one sweep in this process and writes the run as JSON to `file`. */
async function runOnce(scenario: GateScenario, backendRequest: string | undefined, file: string): Promise<number> {
  try {
    // Imported here so the parent process, which only starts children, never loads tfjs.
    const { backendRequestFromEnv, selectBackend } = await import('../backend/select.js');
    const { measureGateRun } = await import('../gate/measure.js');
    const backend = await selectBackend(backendRequest ?? backendRequestFromEnv());
    const run = await measureGateRun({
      scenario,
      backend,
      injection: [],
      onEvent: (event) => process.stderr.write(`${describeSweepEvent(event)}\n`),
    });
    writeFileSync(file, JSON.stringify(run));
    process.stderr.write(`bench:baseline: run took ${run.durationSeconds.toFixed(1)} s\n`);
    return EXIT_WRITTEN;
  } catch (error) {
    // A backend request that cannot be met names its value and fix, which a stack trace would bury.
    const detail = error instanceof Error && error.name === 'BackendRequestError' ? error.message : (error as Error).stack ?? String(error);
    process.stderr.write(`bench:baseline: the run failed: ${detail}\n`);
    return EXIT_ERROR;
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench:baseline: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = EXIT_ERROR;
  },
);
