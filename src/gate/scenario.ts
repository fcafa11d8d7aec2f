/**
 * The gate's scenario file (benchmarks/gate.json): which cells the gate times, how, and how it
 * compares them.
 *
 * The file has two parts. `measurement` defines what is run (cells, batch size, steps, rounds,
 * calibration repetitions). Its hash, together with `GATE_MEASUREMENT_VERSION`, is the scenario
 * hash stored in every baseline, and a baseline with another hash is "not comparable".
 * `comparison` holds policy (confidence level, thresholds, the reference objective of the
 * ratios) and is not hashed, so tuning a threshold keeps the baseline usable.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { OBJECTIVE_NAMES, type ObjectiveName } from '../objectives/objective.js';
import type { ArchitectureName } from '../train/session.js';

/**
 * Version of the measurement procedure (sweep order, calibration kernel, what a sample is).
 * Raise it whenever that procedure changes, so older baselines become "not comparable".
 */
export const GATE_MEASUREMENT_VERSION = 1;

const ARCHITECTURES: readonly ArchitectureName[] = ['fc', 'cnn'];

/** One architecture at one image shape, timed with several objectives. */
export interface GateGroup {
  architecture: ArchitectureName;
  /** Synthetic image shape [H, W, C]; D = H·W·C. */
  imageShape: [number, number, number];
  objectives: ObjectiveName[];
}

/**
 * The clock that times steps and the calibration kernel:
 * - "process-cpu": CPU time of the whole Node process (user + system, all threads), from
 *   `process.cpuUsage()`. Time spent waiting while another process runs on the core is not
 *   counted, which removes most of the noise of a shared machine. It also misses time spent
 *   waiting for a GPU or for I/O.
 * - "wall": elapsed real time, `performance.now()`.
 * - "auto": "process-cpu" on the wasm and cpu backends, where a step is pure CPU work, and "wall"
 *   on every other backend (tfjs-node's thread pool, GPUs). When OpenBLAS computes wasm's
 *   products on several threads, CPU time adds up their work. Idle threads spin only about 1,000
 *   iterations before they sleep (GOMP_SPINCOUNT, see `native-blas.ts`), so the sum still
 *   measures the step's work.
 */
export type GateClockSetting = 'auto' | 'process-cpu' | 'wall';
export type GateClock = Exclude<GateClockSetting, 'auto'>;
const CLOCK_SETTINGS: readonly GateClockSetting[] = ['auto', 'process-cpu', 'wall'];

/** Returns the clock a run uses for `setting` on the backend named `backend` (a `selectBackend` label). */
export function resolveGateClock(setting: GateClockSetting, backend: string): GateClock {
  if (setting !== 'auto') return setting;
  return backend === 'wasm' || backend === 'cpu' ? 'process-cpu' : 'wall';
}

/** The measured part of the scenario, covered by the scenario hash. */
export interface GateMeasurement {
  /** Clock setting for steps and calibration (see `GateClockSetting`); default "auto". */
  clock: GateClockSetting;
  /** Images per training step. */
  batchSize: number;
  /** Seed of every training session (weights, synthetic data, noise). */
  seed: number;
  /** Untimed steps per cell before the first timed one (JIT, kernel set-up, first allocations). */
  warmupSteps: number;
  /** Passes over all cells; each pass calibrates and times `stepsPerRound` steps per cell. */
  rounds: number;
  /** Timed steps per cell per round. */
  stepsPerRound: number;
  /** Calibration kernel runs before each block of steps; their median is the block's unit. */
  calibrationRepetitions: number;
  groups: GateGroup[];
}

/** The comparison policy of the scenario, not covered by the hash. */
export interface GateComparisonPolicy {
  /** Confidence level of the intervals (0.95: a change must be significant at 5%). */
  confidence: number;
  /** Each objective's time is also compared as a ratio to this objective's time at the same D. */
  ratioReference: ObjectiveName;
  /** A cell regresses only if now/baseline exceeds this (and is significant); improvements below 1/threshold. */
  cellThreshold: number;
  /** The same for ratios between objectives. */
  ratioThreshold: number;
  /** Per-cell or per-ratio thresholds by id ("fc/D784/ml", "fc/D784/ssm-vs-ml"). */
  overrides: Record<string, number>;
}

export interface GateScenario {
  name: string;
  description: string;
  /** The file it was read from, as given. */
  file: string;
  measurement: GateMeasurement;
  comparison: GateComparisonPolicy;
}

/** One timed cell: an architecture, an image shape and an objective. */
export interface GateCell {
  /** "fc/D784/ssm": architecture, D, objective. */
  id: string;
  architecture: ArchitectureName;
  imageShape: [number, number, number];
  dimension: number;
  objective: ObjectiveName;
}

/** One ratio between two objectives at the same architecture and D. */
export interface GateRatio {
  /** "fc/D784/ssm-vs-ml". */
  id: string;
  numerator: GateCell;
  denominator: GateCell;
}

/** Returns the id of a cell: "<architecture>/D<D>/<objective>". */
export function cellId(architecture: string, dimension: number, objective: string): string {
  return `${architecture}/D${dimension}/${objective}`;
}

/** Returns the id of a ratio: "<numerator cell id>-vs-<denominator objective>". */
export function ratioId(numerator: GateCell, denominator: GateCell): string {
  return `${numerator.id}-vs-${denominator.objective}`;
}

/** Lists the scenario's cells in sweep order (groups in file order, objectives in group order). */
export function listCells(scenario: GateScenario): GateCell[] {
  const cells: GateCell[] = [];
  for (const group of scenario.measurement.groups) {
    const dimension = group.imageShape[0] * group.imageShape[1] * group.imageShape[2];
    for (const objective of group.objectives) {
      cells.push({
        id: cellId(group.architecture, dimension, objective),
        architecture: group.architecture,
        imageShape: [...group.imageShape],
        dimension,
        objective,
      });
    }
  }
  return cells;
}

/** Lists every objective / reference-objective ratio of the groups that time the reference. */
export function listRatios(scenario: GateScenario): GateRatio[] {
  const cells = listCells(scenario);
  const reference = scenario.comparison.ratioReference;
  const ratios: GateRatio[] = [];
  for (const denominator of cells.filter((cell) => cell.objective === reference)) {
    const sameGroup = cells.filter(
      (cell) => cell.architecture === denominator.architecture && cell.dimension === denominator.dimension && cell.objective !== reference,
    );
    for (const numerator of sameGroup) {
      ratios.push({ id: ratioId(numerator, denominator), numerator, denominator });
    }
  }
  return ratios;
}

/** Returns the threshold of a cell or ratio id: its override, or the scenario's default. */
export function thresholdFor(scenario: GateScenario, id: string, kind: 'cell' | 'ratio'): number {
  const override = scenario.comparison.overrides[id];
  if (override !== undefined) return override;
  return kind === 'cell' ? scenario.comparison.cellThreshold : scenario.comparison.ratioThreshold;
}

/**
 * Returns the scenario hash: SHA-256 (hex) of `GATE_MEASUREMENT_VERSION` and the `measurement`
 * part serialised with sorted keys. Name, description and comparison policy are left out. O(size).
 */
export function scenarioHash(measurement: GateMeasurement): string {
  const canonical = canonicalJson({ gateMeasurementVersion: GATE_MEASUREMENT_VERSION, measurement });
  return createHash('sha256').update(canonical).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Reads and checks a scenario file; throws a RangeError naming the file, the key and the fix. */
export function loadGateScenario(file: string): GateScenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new RangeError(`gate scenario: cannot read ${file} (${(error as Error).message}); pass an existing file with --scenario`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new RangeError(`gate scenario: ${file} is not valid JSON (${(error as Error).message})`);
  }
  return parseGateScenario(parsed, file);
}

/**
 * Checks a parsed scenario object and fills the defaults of `comparison`. Throws a RangeError
 * that names the file, the key, the value received and what is allowed.
 */
export function parseGateScenario(input: unknown, file: string): GateScenario {
  const fail = (key: string, value: unknown, allowed: string): never => {
    throw new RangeError(`gate scenario ${file}: ${key} must be ${allowed}, received ${JSON.stringify(value)}`);
  };
  const root = asObject(input, 'the top level', fail);
  rejectUnknownKeys(root, ['$comment', 'name', 'description', 'measurement', 'comparison'], 'the top level', file);
  const name = root.name;
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/i.test(name)) {
    fail('name', name, 'a file-name-safe string such as "gate" (letters, digits, ".", "_", "-")');
  }
  const description = root.description ?? '';
  if (typeof description !== 'string') fail('description', description, 'a string');

  const measurement = parseMeasurement(asObject(root.measurement, 'measurement', fail), file, fail);
  const comparison = parseComparison(root.comparison === undefined ? {} : asObject(root.comparison, 'comparison', fail), file, fail);

  const scenario: GateScenario = { name: name as string, description: description as string, file, measurement, comparison };
  const ids = new Set([...listCells(scenario).map((cell) => cell.id), ...listRatios(scenario).map((ratio) => ratio.id)]);
  for (const id of Object.keys(comparison.overrides)) {
    if (!ids.has(id)) {
      throw new RangeError(
        `gate scenario ${file}: comparison.overrides names "${id}", but no cell or ratio has that id (not found); ` +
          `known ids are ${[...ids].join(', ')}`,
      );
    }
  }
  return scenario;
}

type Fail = (key: string, value: unknown, allowed: string) => never;

function parseMeasurement(raw: Record<string, unknown>, file: string, fail: Fail): GateMeasurement {
  rejectUnknownKeys(
    raw,
    ['clock', 'batchSize', 'seed', 'warmupSteps', 'rounds', 'stepsPerRound', 'calibrationRepetitions', 'groups'],
    'measurement',
    file,
  );
  const integer = (key: keyof GateMeasurement, minimum: number): number => {
    const value = raw[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
      fail(`measurement.${key}`, value, `an integer ≥ ${minimum}`);
    }
    return value as number;
  };
  const clock = raw.clock ?? 'auto';
  if (!CLOCK_SETTINGS.includes(clock as GateClockSetting)) {
    fail('measurement.clock', clock, `one of ${CLOCK_SETTINGS.map((c) => `"${c}"`).join(', ')}`);
  }
  const measurement: GateMeasurement = {
    clock: clock as GateClockSetting,
    batchSize: integer('batchSize', 1),
    seed: integer('seed', 0),
    warmupSteps: integer('warmupSteps', 0),
    rounds: integer('rounds', 1),
    stepsPerRound: integer('stepsPerRound', 1),
    calibrationRepetitions: integer('calibrationRepetitions', 1),
    groups: [],
  };
  if (measurement.rounds * measurement.stepsPerRound < 4) {
    fail('measurement.rounds × measurement.stepsPerRound', measurement.rounds * measurement.stepsPerRound, 'at least 4 (fewer samples can never show a significant change)');
  }
  if (!Array.isArray(raw.groups) || raw.groups.length === 0) {
    fail('measurement.groups', raw.groups, 'a non-empty array of { architecture, imageShape, objectives }');
  }
  const seen = new Set<string>();
  (raw.groups as unknown[]).forEach((entry, index) => {
    const key = `measurement.groups[${index}]`;
    const group = asObject(entry, key, fail);
    rejectUnknownKeys(group, ['architecture', 'imageShape', 'objectives'], key, file);
    if (!ARCHITECTURES.includes(group.architecture as ArchitectureName)) {
      fail(`${key}.architecture`, group.architecture, `one of ${ARCHITECTURES.map((a) => `"${a}"`).join(', ')}`);
    }
    const shape = group.imageShape;
    if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((n) => Number.isSafeInteger(n) && n >= 1)) {
      fail(`${key}.imageShape`, shape, '[H, W, C] with three positive integers');
    }
    const objectives = group.objectives;
    if (!Array.isArray(objectives) || objectives.length === 0 || !objectives.every((o) => OBJECTIVE_NAMES.includes(o as ObjectiveName))) {
      fail(`${key}.objectives`, objectives, `a non-empty array of ${OBJECTIVE_NAMES.map((o) => `"${o}"`).join(', ')}`);
    }
    if (new Set(objectives as string[]).size !== (objectives as string[]).length) {
      fail(`${key}.objectives`, objectives, 'a list without repeated objectives');
    }
    const imageShape = shape as [number, number, number];
    const groupKey = `${group.architecture as string}/D${imageShape[0] * imageShape[1] * imageShape[2]}`;
    if (seen.has(groupKey)) {
      fail(`${key}`, groupKey, 'a new architecture and D (another group already has them, and cell ids must be unique)');
    }
    seen.add(groupKey);
    measurement.groups.push({
      architecture: group.architecture as ArchitectureName,
      imageShape: [imageShape[0], imageShape[1], imageShape[2]],
      objectives: [...(objectives as ObjectiveName[])],
    });
  });
  return measurement;
}

function parseComparison(raw: Record<string, unknown>, file: string, fail: Fail): GateComparisonPolicy {
  rejectUnknownKeys(raw, ['confidence', 'ratioReference', 'cellThreshold', 'ratioThreshold', 'overrides'], 'comparison', file);
  const threshold = (key: string, value: unknown): number => {
    if (typeof value !== 'number' || !(Number.isFinite(value) && value > 1)) {
      fail(key, value, 'a number > 1 (a factor such as 1.25)');
    }
    return value as number;
  };
  const confidence = raw.confidence ?? 0.95;
  if (typeof confidence !== 'number' || !(confidence >= 0.8 && confidence < 1)) {
    fail('comparison.confidence', confidence, 'a number in [0.8, 1), such as 0.95');
  }
  const ratioReference = raw.ratioReference ?? 'ml';
  if (!OBJECTIVE_NAMES.includes(ratioReference as ObjectiveName)) {
    fail('comparison.ratioReference', ratioReference, `one of ${OBJECTIVE_NAMES.map((o) => `"${o}"`).join(', ')}`);
  }
  const overridesRaw = raw.overrides === undefined ? {} : asObject(raw.overrides, 'comparison.overrides', fail);
  const overrides: Record<string, number> = {};
  for (const [id, value] of Object.entries(overridesRaw)) {
    overrides[id] = threshold(`comparison.overrides["${id}"]`, value);
  }
  return {
    confidence: confidence as number,
    ratioReference: ratioReference as ObjectiveName,
    cellThreshold: threshold('comparison.cellThreshold', raw.cellThreshold ?? 1.25),
    ratioThreshold: threshold('comparison.ratioThreshold', raw.ratioThreshold ?? 1.25),
    overrides,
  };
}

function asObject(value: unknown, key: string, fail: Fail): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail(key, value, 'an object');
  }
  return value as Record<string, unknown>;
}

function rejectUnknownKeys(object: Record<string, unknown>, known: readonly string[], where: string, file: string): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) {
      throw new RangeError(`gate scenario ${file}: unknown key "${key}" in ${where}; known keys are ${known.join(', ')}`);
    }
  }
}
