/**
 * Building, writing and reading the gate's baselines: results/baselines/<scenario name>.<machine>.<cpu>.json
 * for one CPU (model name, vendor, family and model number), <scenario name>.<machine>.json for
 * one CPU model name, and <scenario name>.json, read on CPUs without their own.
 *
 * A baseline keeps every sample of several full runs. For each cell the reference is the run
 * whose median normalised time is the median over the runs, so one unlucky run (a busy
 * neighbour, a slow start) never becomes the yardstick. For each ratio between objectives the
 * reference run is chosen the same way from the runs' ratios, which keeps both objectives of a
 * ratio from one run.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { readFirstProcessor } from '../platform/cpuinfo.js';

import {
  GATE_BASELINE_FORMAT,
  GATE_BASELINE_SCHEMA_VERSION,
  type GateBaseline,
  type GateBaselineCellSummary,
  type GateCellRun,
  type GateRun,
  type GateSamples,
} from './records.js';
import { median } from './statistics.js';

/** Minimum number of runs in a baseline. With three, one outlying run cannot be the median. */
export const MIN_BASELINE_RUNS = 3;

/** Error raised when a baseline file cannot be used; the CLI picks its exit code from `code`. */
export class GateBaselineError extends Error {
  constructor(
    message: string,
    /** missing: no file; invalid: unreadable or malformed; other-schema: written by another version of the gate. */
    readonly code: 'missing' | 'invalid' | 'other-schema',
  ) {
    super(message);
    this.name = 'GateBaselineError';
  }
}

/**
 * Returns the file-name form of a CPU model: lower-case letters and digits, every other run of
 * characters one '-' ("Intel(R) Xeon(R) Processor" becomes "intel-r-xeon-r-processor"), or
 * "unknown-cpu" when nothing is left.
 */
export function machineKey(cpuModel: string): string {
  const key = cpuModel
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return key === '' ? 'unknown-cpu' : key;
}

/** Returns the CPU model this process runs on, as the gate records it (`os.cpus()[0].model`). */
export function currentCpuModel(): string {
  const cpus = os.cpus();
  return cpus.length > 0 ? cpus[0].model.trim() : 'unknown';
}

/**
 * Returns the vendor, family and model number of this machine's CPU, such as "GenuineIntel
 * family 6 model 207", from the first processor of `cpuinfoPath`, or null where that file or
 * its fields are missing (outside Linux). Virtual machines can name different CPUs alike: a
 * 2-vCPU Xeon of model 207 and an older one were both "Intel(R) Xeon(R) Processor", and the
 * newer one ran the gate's FC steps in ×0.63–0.85 the units of the older one's baseline.
 */
export function currentCpuSignature(cpuinfoPath = '/proc/cpuinfo'): string | null {
  const fields = readFirstProcessor(cpuinfoPath);
  const vendor = fields?.get('vendor_id');
  const family = fields?.get('cpu family');
  const model = fields?.get('model');
  if (vendor === undefined || family === undefined || model === undefined) return null;
  return `${vendor} family ${family} model ${model}`;
}

/** Returns the file-name form of a CPU signature: "GenuineIntel family 6 model 207" becomes "genuineintel-6-207". */
export function signatureKey(signature: string): string {
  return machineKey(signature.replace(/\b(family|model)\b/g, ''));
}

/**
 * Returns the baseline path of a scenario for one CPU: results/baselines/<name>.<machine key>.<signature key>.json
 * under `root`, or the CPU model's path when the signature is null.
 */
export function cpuBaselinePath(scenarioName: string, cpuModel: string, cpuSignature: string | null, root = '.'): string {
  if (cpuSignature === null) return machineBaselinePath(scenarioName, cpuModel, root);
  return path.join(root, 'results', 'baselines', `${scenarioName}.${machineKey(cpuModel)}.${signatureKey(cpuSignature)}.json`);
}

/** Returns the baseline path of a scenario for one CPU model: results/baselines/<name>.<machine key>.json under `root`. */
export function machineBaselinePath(scenarioName: string, cpuModel: string, root = '.'): string {
  return path.join(root, 'results', 'baselines', `${scenarioName}.${machineKey(cpuModel)}.json`);
}

/** Returns the baseline path shared by CPU models without their own: results/baselines/<name>.json under `root`. */
export function sharedBaselinePath(scenarioName: string, root = '.'): string {
  return path.join(root, 'results', 'baselines', `${scenarioName}.json`);
}

/**
 * Returns the baseline `bench:check` compares with when none is named: the one recorded on this
 * CPU (`cpuBaselinePath`) when it exists, else the one recorded on this CPU model name, else the
 * shared one. Timing ratios between objectives differ between CPU models: with the same code, a
 * small ML step took ×1.49 the units on an Intel Xeon that it took on an AMD EPYC. So a baseline
 * from the same CPU is the fair yardstick.
 */
export function defaultBaselinePath(
  scenarioName: string,
  root = '.',
  cpuModel = currentCpuModel(),
  cpuSignature: string | null = currentCpuSignature(),
): string {
  const candidates = [cpuBaselinePath(scenarioName, cpuModel, cpuSignature, root), machineBaselinePath(scenarioName, cpuModel, root)];
  return candidates.find((file) => existsSync(file)) ?? sharedBaselinePath(scenarioName, root);
}

/**
 * Builds a baseline from at least `MIN_BASELINE_RUNS` runs of one scenario on one backend. Throws
 * a RangeError when there are too few runs, when their scenario hashes or backends differ, or when
 * a run had a slowdown injected. O(total samples).
 */
export function buildBaseline(runs: readonly GateRun[], recordedAt: Date = new Date()): GateBaseline {
  if (runs.length < MIN_BASELINE_RUNS) {
    throw new RangeError(`gate baseline: received ${runs.length} run(s); a baseline needs at least ${MIN_BASELINE_RUNS}`);
  }
  const first = runs[0];
  runs.forEach((run, index) => {
    if (run.scenario.hash !== first.scenario.hash) {
      throw new RangeError(`gate baseline: run ${index} has scenario hash ${run.scenario.hash}, run 0 has ${first.scenario.hash}; record all runs from one scenario`);
    }
    if (run.environment.backend !== first.environment.backend) {
      throw new RangeError(`gate baseline: run ${index} used backend ${run.environment.backend}, run 0 used ${first.environment.backend}; record all runs on one backend`);
    }
    if (run.injection.length > 0) {
      throw new RangeError(`gate baseline: run ${index} had a test-only slowdown injected; unset EBFLOW_INJECT_SLOWDOWN and record again`);
    }
  });

  const summary: Record<string, GateBaselineCellSummary> = {};
  for (const cell of first.cells) {
    const runMedians = runs.map((run) => {
      const samples = measuredSamples(run, cell.id);
      return samples === null ? null : median(samples.normalized);
    });
    const referenceRun = medianIndex(runMedians);
    if (referenceRun === null) continue;
    const samples = measuredSamples(runs[referenceRun], cell.id) as GateSamples;
    summary[cell.id] = {
      runMedians,
      referenceRun,
      medianNormalized: median(samples.normalized),
      medianStepMs: median(samples.stepMs),
    };
  }

  return {
    format: GATE_BASELINE_FORMAT,
    schemaVersion: GATE_BASELINE_SCHEMA_VERSION,
    scenario: { ...first.scenario },
    environment: { ...first.environment },
    recordedAt: recordedAt.toISOString(),
    runs: runs.map((run) => run),
    summary,
  };
}

/** Returns the samples of a cell in a run, or null when the run did not measure it. */
export function measuredSamples(run: GateRun, id: string): GateSamples | null {
  const cell = run.cells.find((entry) => entry.id === id);
  return cell !== undefined && cell.status === 'measured' ? cell.samples : null;
}

/**
 * Returns the index of the median of the non-null values (the lower middle one for an even
 * count), or null when every value is null. Ties keep the earlier index.
 */
export function medianIndex(values: readonly (number | null)[]): number | null {
  const present = values
    .map((value, index) => ({ value, index }))
    .filter((entry): entry is { value: number; index: number } => entry.value !== null)
    .sort((a, b) => a.value - b.value || a.index - b.index);
  if (present.length === 0) return null;
  return present[(present.length - 1) >> 1].index;
}

/** Returns the reference samples of a cell (the median run's), or null when no run measured it. */
export function referenceCellSamples(baseline: GateBaseline, id: string): { run: number; samples: GateSamples } | null {
  const run = medianIndex(baseline.runs.map((entry) => {
    const samples = measuredSamples(entry, id);
    return samples === null ? null : median(samples.normalized);
  }));
  if (run === null) return null;
  return { run, samples: measuredSamples(baseline.runs[run], id) as GateSamples };
}

/**
 * Returns the reference samples of a ratio between two cells: those of the run whose ratio of
 * medians is the median over the runs that measured both, or null when none did.
 */
export function referenceRatioSamples(
  baseline: GateBaseline,
  numeratorId: string,
  denominatorId: string,
): { run: number; numerator: GateSamples; denominator: GateSamples } | null {
  const ratios = baseline.runs.map((run) => {
    const numerator = measuredSamples(run, numeratorId);
    const denominator = measuredSamples(run, denominatorId);
    if (numerator === null || denominator === null) return null;
    return median(numerator.normalized) / median(denominator.normalized);
  });
  const run = medianIndex(ratios);
  if (run === null) return null;
  return {
    run,
    numerator: measuredSamples(baseline.runs[run], numeratorId) as GateSamples,
    denominator: measuredSamples(baseline.runs[run], denominatorId) as GateSamples,
  };
}

/** Writes the baseline as indented JSON, creating the folder. */
export function writeBaseline(file: string, baseline: GateBaseline): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(baseline, null, 1)}\n`);
}

/**
 * Reads and checks a baseline file. Throws a GateBaselineError with code "missing" when the file
 * does not exist, "other-schema" when another format version wrote it, and "invalid" when it is
 * not a well-formed baseline (the message names the first bad field).
 */
export function readBaseline(file: string): GateBaseline {
  if (!existsSync(file)) {
    throw new GateBaselineError(`gate baseline: no baseline at ${file}; record one with "npm run bench:baseline -- --output ${file}" and commit it`, 'missing');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new GateBaselineError(`gate baseline: ${file} is not valid JSON (${(error as Error).message}); record it again with "npm run bench:baseline"`, 'invalid');
  }
  const invalid = (what: string): never => {
    throw new GateBaselineError(`gate baseline: ${file} is malformed: ${what}; record it again with "npm run bench:baseline"`, 'invalid');
  };
  if (parsed === null || typeof parsed !== 'object') invalid('the top level is not an object');
  const root = parsed as Record<string, unknown>;
  if (root.format !== GATE_BASELINE_FORMAT) invalid(`format is ${JSON.stringify(root.format)}, expected "${GATE_BASELINE_FORMAT}"`);
  if (root.schemaVersion !== GATE_BASELINE_SCHEMA_VERSION) {
    throw new GateBaselineError(
      `gate baseline: ${file} has schema version ${JSON.stringify(root.schemaVersion)}, this gate reads version ${GATE_BASELINE_SCHEMA_VERSION}; ` +
        'record a new baseline with "npm run bench:baseline"',
      'other-schema',
    );
  }
  const scenario = root.scenario as Record<string, unknown> | undefined;
  if (typeof scenario?.hash !== 'string' || typeof scenario.name !== 'string') invalid('scenario.name or scenario.hash is missing');
  const environment = root.environment as Record<string, unknown> | undefined;
  if (typeof environment?.backend !== 'string') invalid('environment.backend is missing');
  if (!Array.isArray(root.runs) || root.runs.length === 0) invalid('runs is not a non-empty array');
  (root.runs as unknown[]).forEach((run, runIndex) => checkRun(run, `runs[${runIndex}]`, invalid));
  return parsed as GateBaseline;
}

function checkRun(value: unknown, where: string, invalid: (what: string) => never): void {
  const run = value as Record<string, unknown> | null;
  if (run === null || typeof run !== 'object' || !Array.isArray(run.cells)) invalid(`${where}.cells is not an array`);
  (run!.cells as unknown[]).forEach((entry, cellIndex) => {
    const cell = entry as GateCellRun | null;
    const at = `${where}.cells[${cellIndex}]`;
    if (cell === null || typeof cell !== 'object' || typeof cell.id !== 'string') invalid(`${at}.id is missing`);
    if (cell!.status !== 'measured') return;
    const samples = cell!.samples as GateSamples | undefined;
    const arrays = [samples?.stepMs, samples?.wallMs, samples?.calibrationMs, samples?.normalized];
    if (!arrays.every((array) => Array.isArray(array) && array.every((v) => typeof v === 'number' && Number.isFinite(v) && v > 0))) {
      invalid(`${at} (${cell!.id}) has samples that are not arrays of positive finite numbers`);
    }
    if (!arrays.every((array) => array!.length === arrays[0]!.length) || arrays[0]!.length === 0) {
      invalid(`${at} (${cell!.id}) has sample arrays of different or zero lengths`);
    }
  });
}
