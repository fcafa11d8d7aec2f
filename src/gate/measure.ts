/**
 * One complete gate run on the real training code: backend already selected, calibration kernel
 * built, sweep run, kernel freed. `bench:check` and `bench:baseline` both measure through it.
 */
import { computeLabel, type BackendSelection } from '../backend/select.js';
import { resolveTrainingConfig } from '../train/config.js';
import { createTrainingSession } from '../train/session-impl.js';
import type { TrainingSession } from '../train/session.js';
import { createCalibrationKernel } from './calibration.js';
import { collectGateEnvironment } from './environment.js';
import type { SlowdownInjection } from './injection.js';
import type { GateRun } from './records.js';
import { resolveGateClock, type GateCell, type GateMeasurement, type GateScenario } from './scenario.js';
import { runGateSweep, type GateSweepEvent } from './sweep.js';

/**
 * Builds the training session of one gate cell: synthetic 8-bit images of the cell's shape, the
 * scenario's batch size and seed, and the reference's defaults for everything else. Throws what
 * `resolveTrainingConfig` or `createTrainingSession` throws (for example for an architecture that
 * is not available), which the sweep records as "unavailable".
 */
export async function createGateSession(cell: GateCell, measurement: GateMeasurement): Promise<TrainingSession> {
  const config = resolveTrainingConfig({
    dataset: 'synthetic',
    architecture: cell.architecture,
    objective: cell.objective,
    imageShape: [...cell.imageShape],
    batchSize: measurement.batchSize,
    seed: measurement.seed,
  });
  return createTrainingSession(config);
}

/**
 * Runs the scenario once on the backend tfjs currently uses, labelled `backend` (from
 * `selectBackend`), and returns the run. Cost: see `runGateSweep`.
 */
export async function measureGateRun(options: {
  scenario: GateScenario;
  backend: BackendSelection;
  injection: readonly SlowdownInjection[];
  onEvent?: (event: GateSweepEvent) => void;
}): Promise<GateRun> {
  const kernel = createCalibrationKernel();
  try {
    return await runGateSweep({
      scenario: options.scenario,
      environment: collectGateEnvironment(computeLabel(options.backend), options.backend.packageName),
      injection: options.injection,
      createSession: createGateSession,
      kernel,
      clock: resolveGateClock(options.scenario.measurement.clock, options.backend.name),
      onEvent: options.onEvent,
    });
  } finally {
    kernel.dispose();
  }
}
