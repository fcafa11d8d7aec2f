/**
 * The gate's data: one sweep over the scenario's cells (`GateRun`), and the committed baseline
 * built from several runs (`GateBaseline`). Both are plain JSON.
 */
import type { ObjectiveName } from '../objectives/objective.js';
import type { ArchitectureName } from '../train/session.js';
import type { GateEnvironment } from './environment.js';
import type { SlowdownInjection } from './injection.js';
import type { GateClock } from './scenario.js';

export const GATE_BASELINE_FORMAT = 'ebflow-bench/gate-baseline';
export const GATE_BASELINE_SCHEMA_VERSION = 1;

/** The raw samples of one measured cell; the arrays are parallel, one entry per timed step. */
export interface GateSamples {
  /** Time of each timed step on the run's clock, ms (including injected work, if any). */
  stepMs: number[];
  /** Elapsed real time of each timed step, ms: for orientation, never compared. */
  wallMs: number[];
  /** Median calibration kernel time of the block the step belongs to, on the run's clock, ms. */
  calibrationMs: number[];
  /** stepMs / calibrationMs: the step's time in calibration units. */
  normalized: number[];
}

interface GateCellIdentity {
  id: string;
  architecture: ArchitectureName;
  imageShape: [number, number, number];
  dimension: number;
  objective: ObjectiveName;
}

/** One cell of one run: measured, unavailable (no session could be built) or errored (a step threw). */
export type GateCellRun = GateCellIdentity &
  (
    | { status: 'measured'; samples: GateSamples }
    | { status: 'unavailable'; reason: string }
    | { status: 'errored'; message: string }
  );

/** One sweep over all cells of the scenario. */
export interface GateRun {
  scenario: { name: string; hash: string; file: string };
  environment: GateEnvironment;
  /** The clock of `stepMs` and `calibrationMs` (the scenario's setting resolved for the backend). */
  clock: GateClock;
  /** Description of the calibration kernel's work. */
  calibrationKernel: string;
  /** The test-only slowdown that was active (empty for a real measurement). */
  injection: SlowdownInjection[];
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  cells: GateCellRun[];
}

/** A reader's summary of one cell over the baseline's runs; the comparison recomputes it. */
export interface GateBaselineCellSummary {
  /** Median normalised time of each run, in run order (null where the run did not measure the cell). */
  runMedians: (number | null)[];
  /** Index of the run whose median is the median of `runMedians`: that run's samples are the reference. */
  referenceRun: number;
  /** That run's median normalised time and median step time, ms. */
  medianNormalized: number;
  medianStepMs: number;
}

/** The committed baseline: several full runs on one machine, backend and scenario. */
export interface GateBaseline {
  format: typeof GATE_BASELINE_FORMAT;
  schemaVersion: typeof GATE_BASELINE_SCHEMA_VERSION;
  scenario: { name: string; hash: string; file: string };
  /** The environment of the first run; every run shares its backend and machine. */
  environment: GateEnvironment;
  recordedAt: string;
  runs: GateRun[];
  summary: Record<string, GateBaselineCellSummary>;
}
