/**
 * `npm run bench:check`: the timing regression gate. Times the gate scenario once and compares
 * it with the committed baseline; see docs/ci-gate.md.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { currentCpuModel, currentCpuSignature, defaultBaselinePath, GateBaselineError, readBaseline } from '../gate/baseline.js';
import { comparabilityProblems, compareWithBaseline, GATE_EXIT_CODES, type GateComparison } from '../gate/compare.js';
import { describeInjection, parseSlowdownInjection, SLOWDOWN_VARIABLE } from '../gate/injection.js';
import type { GateBaseline, GateRun } from '../gate/records.js';
import { loadGateScenario, scenarioHash, type GateScenario } from '../gate/scenario.js';
import { describeSweepEvent, renderGateReport } from '../gate/table.js';

const USAGE = `Usage: npm run bench:check -- [options]

Times the gate scenario once and compares it with the committed baseline.

Options:
  --scenario FILE         gate scenario (default benchmarks/gate.json)
  --baseline FILE         baseline to compare with (default: this CPU's,
                          results/baselines/<scenario name>.<machine>.<cpu>.json, when it
                          exists, else its model name's, <scenario name>.<machine>.json, else
                          results/baselines/<scenario name>.json; each is "not comparable"
                          when another CPU recorded it; see npm run bench:baseline -- --help)
  --backend NAME          auto, gpu, node, wasm or cpu (default: $EBFLOW_BACKEND, else auto)
  --fail-on-improvement   also fail on a significant improvement beyond its threshold,
                          so the baseline gets refreshed
  --allow-other-cpu       compare with a baseline recorded on another CPU (by default
                          that is "not comparable", exit 3: ratios between objectives differ
                          between CPUs, which gives false alarms)
  --output FILE           also write the run and the comparison as JSON to FILE
  --help                  print this text

Exit codes: 0 pass, 1 regression (or improvement with --fail-on-improvement, or a cell no
longer measured), 2 invalid input or error, 3 baseline not comparable (other scenario hash,
backend, CPU or baseline schema).

Test only: ${SLOWDOWN_VARIABLE}=ssm:1.5 makes every SSM step of the sweep about 1.5x as long.`;

/** The JSON that --output writes: the outcome and, when the sweep ran, the run and the comparison. */
interface CheckOutput {
  exitCode: number;
  outcome: GateComparison['outcome'] | 'error';
  message?: string;
  comparison?: GateComparison;
  run?: GateRun;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        scenario: { type: 'string', default: 'benchmarks/gate.json' },
        baseline: { type: 'string' },
        backend: { type: 'string' },
        'fail-on-improvement': { type: 'boolean', default: false },
        'allow-other-cpu': { type: 'boolean', default: false },
        output: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`bench:check: ${(error as Error).message}\n\n${USAGE}\n`);
    return GATE_EXIT_CODES.error;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return GATE_EXIT_CODES.pass;
  }
  const output = values.output;
  const finish = (result: CheckOutput): number => {
    if (output !== undefined) writeFileSync(output, `${JSON.stringify(result, null, 1)}\n`);
    return result.exitCode;
  };
  const fail = (message: string, exitCode: number = GATE_EXIT_CODES.error): number => {
    process.stderr.write(`bench:check: ${message}\n`);
    return finish({ exitCode, outcome: exitCode === GATE_EXIT_CODES.notComparable ? 'not-comparable' : 'error', message });
  };

  // 1. Inputs: the test-only switch, the scenario and the baseline.
  let scenario: GateScenario;
  let baseline: GateBaseline;
  let baselineFile: string;
  let injection;
  try {
    injection = parseSlowdownInjection(process.env[SLOWDOWN_VARIABLE]);
    scenario = loadGateScenario(values.scenario);
    baselineFile = values.baseline ?? defaultBaselinePath(scenario.name);
    baseline = readBaseline(baselineFile);
  } catch (error) {
    if (error instanceof GateBaselineError && error.code === 'other-schema') {
      return fail(`NOT COMPARABLE: ${error.message}`, GATE_EXIT_CODES.notComparable);
    }
    return fail((error as Error).message);
  }
  if (injection.length > 0) {
    process.stderr.write(
      `bench:check: WARNING: ${SLOWDOWN_VARIABLE} is set (${describeInjection(injection)}); this is a test-only slowdown, never use it in CI\n`,
    );
  }

  // 2. Backend, and an early exit when the baseline cannot be compared anyway. The training code
  // is imported only now, so a module that fails to load is reported as an error (exit 2), never
  // as a regression.
  let backend;
  let measureGateRun;
  let selectBackend;
  let backendRequestFromEnv;
  let computeLabel;
  try {
    ({ backendRequestFromEnv, computeLabel, selectBackend } = await import('../backend/select.js'));
    ({ measureGateRun } = await import('../gate/measure.js'));
  } catch (error) {
    return fail(`cannot load the training code: ${(error as Error).stack ?? String(error)}`);
  }
  try {
    backend = await selectBackend(values.backend ?? backendRequestFromEnv());
  } catch (error) {
    // An unknown or unusable backend is an input problem: its message names the value and the fix.
    return fail(`cannot select the backend: ${(error as Error).message}`);
  }
  const problems = comparabilityProblems(baseline, {
    scenarioHash: scenarioHash(scenario.measurement),
    backend: computeLabel(backend),
    cpuModel: currentCpuModel(),
    cpuSignature: currentCpuSignature(),
    allowOtherCpu: values['allow-other-cpu'],
  });
  if (problems.length > 0) {
    return fail(`NOT COMPARABLE with ${baselineFile}:\n${problems.map((p) => `- ${p}`).join('\n')}`, GATE_EXIT_CODES.notComparable);
  }

  // 3. Measure, compare, report.
  process.stderr.write(`bench:check: timing ${scenario.file} on ${computeLabel(backend)}, comparing with ${baselineFile}\n`);
  let run: GateRun;
  try {
    run = await measureGateRun({
      scenario,
      backend,
      injection,
      onEvent: (event) => process.stderr.write(`${describeSweepEvent(event)}\n`),
    });
  } catch (error) {
    return fail(`the sweep failed: ${(error as Error).stack ?? String(error)}`);
  }
  const comparison = compareWithBaseline(scenario, baseline, run, {
    failOnImprovement: values['fail-on-improvement'],
    allowOtherCpu: values['allow-other-cpu'],
  });
  process.stdout.write(`${renderGateReport(comparison)}\n`);
  process.stderr.write(`bench:check: the sweep took ${run.durationSeconds.toFixed(1)} s\n`);
  return finish({ exitCode: comparison.exitCode, outcome: comparison.outcome, comparison, run });
}

// A crash outside `main` (for example in a timer) must not exit with 1, which reads as "regression".
const exitOnCrash = (error: unknown): void => {
  process.stderr.write(`bench:check: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(GATE_EXIT_CODES.error);
};
process.on('uncaughtException', exitOnCrash);
process.on('unhandledRejection', exitOnCrash);

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench:check: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = GATE_EXIT_CODES.error;
  },
);
