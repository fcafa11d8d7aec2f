/**
 * Evidence that the timing gate works: runs `bench:check` N times on the unchanged code and M
 * times with a test-only slowdown injected, and counts how often each passed or failed and which
 * objectives the failures named. A good gate passes (nearly) every unchanged run and fails every
 * injected run, naming only the injected objective.
 *
 * Usage: npm run -s build && node dist/src/cli/gate-evidence.js [--unchanged 20] [--injected 20]
 *          [--inject ssm:1.5] [--backend wasm] [--scenario FILE] [--baseline FILE] [--output FILE]
 *
 * The two kinds of run alternate (unchanged, injected, unchanged, …) so a change in the machine's
 * load during the campaign affects both alike. Each run is a separate `bench:check` process, as
 * in CI. It takes about (N + M) times one check, so run it on a quiet machine.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import type { GateComparison } from '../gate/compare.js';
import { describeInjection, parseSlowdownInjection, SLOWDOWN_VARIABLE } from '../gate/injection.js';

interface EvidenceRun {
  kind: 'unchanged' | 'injected';
  index: number;
  exitCode: number | null;
  outcome: string;
  seconds: number;
  /** Ids of the cells and ratios that failed, with their change factor. */
  failures: string[];
  failingObjectives: string[];
  /** The compared cell or ratio whose change was farthest from 1 (either way), as "id ×factor", and how close it came to its threshold. */
  largestChange: string | null;
  /** log(largest change) / log(its threshold): 1 means the change reached the threshold. */
  largestChangeShare: number | null;
}

const EXIT_ERROR = 2;

function main(): number {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        unchanged: { type: 'string', default: '20' },
        injected: { type: 'string', default: '20' },
        inject: { type: 'string', default: 'ssm:1.5' },
        backend: { type: 'string' },
        scenario: { type: 'string' },
        baseline: { type: 'string' },
        output: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`gate-evidence: ${(error as Error).message}\n`);
    return EXIT_ERROR;
  }
  if (values.help) {
    process.stdout.write(
      'Usage: node dist/src/cli/gate-evidence.js [--unchanged N] [--injected M] [--inject objective:factor] ' +
        '[--backend NAME] [--scenario FILE] [--baseline FILE] [--output FILE]\n',
    );
    return 0;
  }
  const unchanged = Number(values.unchanged);
  const injected = Number(values.injected);
  if (![unchanged, injected].every((count) => Number.isSafeInteger(count) && count >= 0) || unchanged + injected === 0) {
    process.stderr.write(
      `gate-evidence: --unchanged and --injected must be integers ≥ 0, not both 0; received ${values.unchanged} and ${values.injected}\n`,
    );
    return EXIT_ERROR;
  }
  let injection;
  try {
    injection = parseSlowdownInjection(values.inject);
  } catch (error) {
    process.stderr.write(`gate-evidence: --inject: ${(error as Error).message}\n`);
    return EXIT_ERROR;
  }
  if (injected > 0 && injection.length === 0) {
    process.stderr.write('gate-evidence: --inject is empty but --injected is above 0; give a slowdown such as ssm:1.5\n');
    return EXIT_ERROR;
  }

  const checkScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bench-check.js');
  const passThrough: string[] = [];
  for (const option of ['backend', 'scenario', 'baseline'] as const) {
    if (values[option] !== undefined) passThrough.push(`--${option}`, values[option] as string);
  }
  const schedule: EvidenceRun['kind'][] = [];
  for (let i = 0; i < Math.max(unchanged, injected); i += 1) {
    if (i < unchanged) schedule.push('unchanged');
    if (i < injected) schedule.push('injected');
  }

  const folder = mkdtempSync(path.join(os.tmpdir(), 'ebflow-gate-evidence-'));
  const runs: EvidenceRun[] = [];
  try {
    schedule.forEach((kind, position) => {
      const index = runs.filter((run) => run.kind === kind).length + 1;
      const file = path.join(folder, `${kind}-${index}.json`);
      const env = { ...process.env };
      delete env[SLOWDOWN_VARIABLE];
      if (kind === 'injected') env[SLOWDOWN_VARIABLE] = values.inject as string;
      const start = performance.now();
      const child = spawnSync(process.execPath, [checkScript, '--output', file, ...passThrough], {
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
        encoding: 'utf8',
      });
      const seconds = (performance.now() - start) / 1000;
      const run = readRun(kind, index, child.status, seconds, file, child.stderr);
      runs.push(run);
      process.stdout.write(
        `[${position + 1}/${schedule.length}] ${kind} #${index}: ${run.outcome} (exit ${run.exitCode}) in ${seconds.toFixed(0)} s` +
          `${run.largestChange === null ? '' : `; largest change ${run.largestChange}`}` +
          `${run.failures.length > 0 ? `; failed: ${run.failures.join(', ')}` : ''}\n`,
      );
    });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }

  const summary = summarise(runs, describeInjection(injection));
  process.stdout.write(`\n${summary}\n`);
  if (values.output !== undefined) {
    writeFileSync(values.output, `${JSON.stringify({ inject: values.inject, runs, summary }, null, 1)}\n`);
  }
  return 0;
}

function readRun(kind: EvidenceRun['kind'], index: number, exitCode: number | null, seconds: number, file: string, stderr: string): EvidenceRun {
  try {
    const result = JSON.parse(readFileSync(file, 'utf8')) as { outcome: string; comparison?: GateComparison };
    const comparison = result.comparison;
    return {
      ...(comparison === undefined ? { largestChange: null, largestChangeShare: null } : largestChange(comparison)),
      kind,
      index,
      exitCode,
      outcome: result.outcome,
      seconds,
      failures: (comparison?.failures ?? []).map((failure) =>
        'estimate' in failure ? `${failure.id} ×${failure.estimate.ratio.toPrecision(3)}` : `${failure.id} (${failure.verdict})`,
      ),
      failingObjectives: comparison?.failingObjectives ?? [],
    };
  } catch {
    // bench:check wrote no output file: report its last error line instead.
    const lastLine = stderr.trim().split('\n').pop() ?? '';
    return { kind, index, exitCode, outcome: `error: ${lastLine}`, seconds, failures: [], failingObjectives: [], largestChange: null, largestChangeShare: null };
  }
}

/**
 * Returns the compared cell or ratio whose change came closest to its threshold, either way, as
 * "fc/D784/fdssm ×1.19, 79% of ×1.25" (the share is |log change| / log threshold): on unchanged
 * code this is the margin the gate had against a false alarm.
 */
function largestChange(comparison: GateComparison): Pick<EvidenceRun, 'largestChange' | 'largestChangeShare'> {
  let largest: { id: string; ratio: number; threshold: number; share: number } | null = null;
  for (const entry of [...comparison.cells, ...comparison.ratios]) {
    if (!('estimate' in entry)) continue;
    const share = Math.abs(Math.log(entry.estimate.ratio)) / Math.log(entry.threshold);
    if (largest === null || share > largest.share) {
      largest = { id: entry.id, ratio: entry.estimate.ratio, threshold: entry.threshold, share };
    }
  }
  if (largest === null) return { largestChange: null, largestChangeShare: null };
  return {
    largestChange: `${largest.id} ×${largest.ratio.toPrecision(3)}, ${Math.round(largest.share * 100)}% of ×${largest.threshold}`,
    largestChangeShare: largest.share,
  };
}

/** Returns the campaign's summary: pass and fail counts per kind, and how often each objective was named. */
function summarise(runs: readonly EvidenceRun[], injectionLabel: string): string {
  const lines: string[] = [];
  for (const kind of ['unchanged', 'injected'] as const) {
    const ofKind = runs.filter((run) => run.kind === kind);
    if (ofKind.length === 0) continue;
    const count = (outcome: string): number => ofKind.filter((run) => run.outcome === outcome).length;
    const errors = ofKind.length - count('pass') - count('fail') - count('not-comparable');
    const label = kind === 'injected' ? `injected (${injectionLabel})` : 'unchanged';
    lines.push(
      `${label}: ${ofKind.length} runs, ${count('pass')} passed, ${count('fail')} failed, ` +
        `${count('not-comparable')} not comparable, ${errors} errors; median ${medianSeconds(ofKind).toFixed(0)} s per check`,
    );
    const named = new Map<string, number>();
    for (const run of ofKind) for (const objective of run.failingObjectives) named.set(objective, (named.get(objective) ?? 0) + 1);
    const namedText = [...named.entries()].map(([objective, times]) => `${objective} in ${times}/${ofKind.length}`).join(', ');
    lines.push(`  objectives named by failures: ${namedText === '' ? 'none' : namedText}`);
    const shares = ofKind.flatMap((run) => (run.largestChangeShare === null ? [] : [run.largestChangeShare]));
    if (kind === 'unchanged' && shares.length > 0) {
      // On unchanged code, how close the largest change of each run came to its threshold.
      lines.push(
        `  largest change per run, as a share of its threshold (log scale): median ${Math.round(medianOf(shares) * 100)}%, ` +
          `maximum ${Math.round(Math.max(...shares) * 100)}%`,
      );
    }
  }
  return lines.join('\n');
}

function medianSeconds(runs: readonly EvidenceRun[]): number {
  return medianOf(runs.map((run) => run.seconds));
}

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

process.exitCode = main();
