/**
 * The gate's sweep: times every cell of the scenario in one process, in calibration units.
 */
import type { TrainingSession } from '../train/session.js';
import type { CalibrationKernel } from './calibration.js';
import type { GateEnvironment } from './environment.js';
import { busyCompute, type SlowdownInjection } from './injection.js';
import type { GateCellRun, GateRun, GateSamples } from './records.js';
import { listCells, scenarioHash, type GateCell, type GateClock, type GateMeasurement, type GateScenario } from './scenario.js';
import { median } from './statistics.js';

/** Progress of a sweep, for the CLI to print; the sweep itself never prints. */
export type GateSweepEvent =
  | { type: 'cell-ready'; cell: GateCell; warmupSeconds: number }
  | { type: 'cell-unavailable'; cell: GateCell; reason: string }
  | { type: 'cell-errored'; cell: GateCell; message: string }
  | { type: 'round-finished'; round: number; rounds: number; elapsedSeconds: number };

export interface GateSweepOptions {
  scenario: GateScenario;
  environment: GateEnvironment;
  /** Test-only slowdowns (see injection.ts); empty for a real measurement. */
  injection: readonly SlowdownInjection[];
  /** Builds a cell's training session; a throw marks the cell "unavailable" with the error's message. */
  createSession: (cell: GateCell, measurement: GateMeasurement) => Promise<TrainingSession>;
  kernel: CalibrationKernel;
  /** The clock that times steps and calibration (already resolved for the backend). */
  clock: GateClock;
  onEvent?: (event: GateSweepEvent) => void;
  /** Reads `clock` in ms; tests pass a fake. Default `readClock(clock)`. */
  readMeasureClock?: () => number;
  /** Reads elapsed real time in ms; tests pass a fake. Default `performance.now`. */
  readWallClock?: () => number;
}

/** Returns a function that reads `clock` in ms: process CPU time (user + system) or `performance.now()`. */
export function readClock(clock: GateClock): () => number {
  if (clock === 'wall') return () => performance.now();
  return () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  };
}

interface Clocks {
  measure: () => number;
  wall: () => number;
}

interface LiveCell {
  cell: GateCell;
  session: TrainingSession;
  samples: GateSamples;
  /** Injected factor for this cell's objective, or 1. */
  factor: number;
}

/**
 * Runs the scenario once and returns every cell's raw samples.
 *
 * Plan:
 * 1. Build each cell's training session and run its untimed warm-up steps. A cell whose session
 *    cannot be built is recorded as unavailable, one whose step throws as errored; the rest go on.
 * 2. Run the calibration kernel `calibrationRepetitions` times untimed, to warm it up as well.
 * 3. For each round, for each cell: time the kernel `calibrationRepetitions` times and take the
 *    median as the block's unit, then time `stepsPerRound` steps. Each step's sample is its time
 *    divided by that unit, both on `clock`. Rounds interleave the cells, so a burst of load on
 *    the machine touches a few samples of many cells rather than every sample of one cell.
 * 4. Free every session and return the run.
 *
 * With an injected slowdown for the cell's objective, each step is followed, inside the timed
 * region, by busy computation lasting (factor − 1) times the step's own duration on `clock`.
 *
 * Cost: (warmupSteps + rounds·stepsPerRound) steps per cell plus
 * (1 + rounds·cells)·calibrationRepetitions kernel runs.
 */
export async function runGateSweep(options: GateSweepOptions): Promise<GateRun> {
  const { scenario, kernel } = options;
  const measurement = scenario.measurement;
  const clocks: Clocks = {
    measure: options.readMeasureClock ?? readClock(options.clock),
    wall: options.readWallClock ?? (() => performance.now()),
  };
  const now = clocks.wall;
  const emit = options.onEvent ?? (() => undefined);
  const startedAt = new Date();
  const sweepStart = now();
  const results = new Map<string, GateCellRun>();
  const live: LiveCell[] = [];

  // 1. Sessions and warm-up.
  for (const cell of listCells(scenario)) {
    let session: TrainingSession;
    try {
      session = await options.createSession(cell, measurement);
    } catch (error) {
      const reason = errorMessage(error);
      results.set(cell.id, { ...identity(cell), status: 'unavailable', reason });
      emit({ type: 'cell-unavailable', cell, reason });
      continue;
    }
    const warmupStart = now();
    try {
      for (let step = 0; step < measurement.warmupSteps; step += 1) {
        await session.step();
      }
    } catch (error) {
      markErrored(cell, session, error, results, emit);
      continue;
    }
    const factor = options.injection.find((injection) => injection.objective === cell.objective)?.factor ?? 1;
    live.push({ cell, session, factor, samples: { stepMs: [], wallMs: [], calibrationMs: [], normalized: [] } });
    emit({ type: 'cell-ready', cell, warmupSeconds: (now() - warmupStart) / 1000 });
  }

  // 2. Kernel warm-up.
  for (let repetition = 0; repetition < measurement.calibrationRepetitions; repetition += 1) {
    await kernel.run();
  }

  // 3. Interleaved rounds of calibration and timed steps.
  let running = live;
  for (let round = 1; round <= measurement.rounds; round += 1) {
    const stillRunning: LiveCell[] = [];
    for (const entry of running) {
      const unit = await calibrate(kernel, measurement.calibrationRepetitions, clocks.measure);
      try {
        for (let step = 0; step < measurement.stepsPerRound; step += 1) {
          const { measured, wall } = await timeStep(entry, clocks);
          entry.samples.stepMs.push(measured);
          entry.samples.wallMs.push(wall);
          entry.samples.calibrationMs.push(unit);
          entry.samples.normalized.push(measured / unit);
        }
        stillRunning.push(entry);
      } catch (error) {
        markErrored(entry.cell, entry.session, error, results, emit);
      }
    }
    running = stillRunning;
    emit({ type: 'round-finished', round, rounds: measurement.rounds, elapsedSeconds: (now() - sweepStart) / 1000 });
  }

  // 4. Clean up and assemble in scenario order.
  for (const entry of running) {
    entry.session.dispose();
    results.set(entry.cell.id, { ...identity(entry.cell), status: 'measured', samples: entry.samples });
  }
  const finishedAt = new Date();
  return {
    scenario: { name: scenario.name, hash: scenarioHash(measurement), file: scenario.file },
    environment: options.environment,
    clock: options.clock,
    calibrationKernel: kernel.description,
    injection: options.injection.map((injection) => ({ ...injection })),
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSeconds: (now() - sweepStart) / 1000,
    cells: listCells(scenario).map((cell) => results.get(cell.id) as GateCellRun),
  };
}

/** Runs the kernel `repetitions` times; returns the median time on `clock`, ms. */
async function calibrate(kernel: CalibrationKernel, repetitions: number, clock: () => number): Promise<number> {
  const times: number[] = [];
  for (let repetition = 0; repetition < repetitions; repetition += 1) {
    const start = clock();
    await kernel.run();
    times.push(clock() - start);
  }
  return median(times);
}

/** Times one step on both clocks, with the injected busy work inside the timed region; returns ms. */
async function timeStep(entry: LiveCell, clocks: Clocks): Promise<{ measured: number; wall: number }> {
  const wallStart = clocks.wall();
  const start = clocks.measure();
  await entry.session.step();
  if (entry.factor > 1) {
    busyCompute((entry.factor - 1) * (clocks.measure() - start), clocks.measure);
  }
  const measured = clocks.measure() - start;
  return { measured, wall: clocks.wall() - wallStart };
}

function markErrored(
  cell: GateCell,
  session: TrainingSession,
  error: unknown,
  results: Map<string, GateCellRun>,
  emit: (event: GateSweepEvent) => void,
): void {
  const message = errorMessage(error);
  try {
    session.dispose();
  } catch {
    // A session that failed mid-step may fail to free its tensors too; the first error is the one to report.
  }
  results.set(cell.id, { ...identity(cell), status: 'errored', message });
  emit({ type: 'cell-errored', cell, message });
}

function identity(cell: GateCell): GateCell {
  return { id: cell.id, architecture: cell.architecture, imageShape: [...cell.imageShape], dimension: cell.dimension, objective: cell.objective };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
