/**
 * Synthetic gate runs for the comparison tests: log-normal step times around a fixed centre per
 * cell, with chosen slowdown factors, noise and sample counts. No training code runs.
 */
import { buildBaseline } from '../../src/gate/baseline.js';
import type { GateEnvironment } from '../../src/gate/environment.js';
import type { GateBaseline, GateCellRun, GateRun } from '../../src/gate/records.js';
import { listCells, parseGateScenario, scenarioHash, type GateScenario } from '../../src/gate/scenario.js';
import { RandomStream } from '../../src/random/stream.js';

/** Returns a small scenario: FC at D = 196 and 784 with ml, ssm and dsm (6 cells, 4 ratios to ml). */
export function makeScenario(comparison: Record<string, unknown> = {}): GateScenario {
  return parseGateScenario(
    {
      name: 'test-gate',
      measurement: {
        batchSize: 8,
        seed: 0,
        warmupSteps: 1,
        rounds: 4,
        stepsPerRound: 3,
        calibrationRepetitions: 3,
        groups: [
          { architecture: 'fc', imageShape: [14, 14, 1], objectives: ['ml', 'ssm', 'dsm'] },
          { architecture: 'fc', imageShape: [28, 28, 1], objectives: ['ml', 'ssm', 'dsm'] },
        ],
      },
      comparison,
    },
    'test-gate.json',
  );
}

export function makeEnvironment(backend = 'wasm'): GateEnvironment {
  return {
    backend,
    backendPackage: `@tensorflow/tfjs-backend-${backend}`,
    cpuModel: 'Test CPU',
    cpuCount: 2,
    platform: 'linux',
    architecture: 'x64',
    nodeVersion: '20.0.0',
    tfjsCoreVersion: '4.22.0',
    codeRevision: 'test',
  };
}

export interface RunOptions {
  seed: number;
  /** Multiplies a cell's times (by cell id); 1 elsewhere. */
  factors?: Record<string, number>;
  /** Standard deviation of the log times (0.05 is a quiet machine). */
  noise?: number;
  /** Samples per cell. */
  samples?: number;
  /** Exact normalised samples for some cells (by id), in place of random ones. */
  exact?: Record<string, number[]>;
  /** Cell ids recorded as unavailable. */
  unavailable?: string[];
  backend?: string;
  /** Overrides the run's scenario hash. */
  hash?: string;
}

/** Centre of a cell's time in calibration units: objectives differ, and time grows with D. */
function centre(objective: string, dimension: number): number {
  const perObjective: Record<string, number> = { ml: 40, sml: 30, ssm: 20, dsm: 8, fdssm: 6 };
  return perObjective[objective] * (dimension / 196);
}

export function makeRun(scenario: GateScenario, options: RunOptions): GateRun {
  const random = new RandomStream(options.seed);
  const noise = options.noise ?? 0.05;
  const count = options.samples ?? 12;
  const cells: GateCellRun[] = listCells(scenario).map((cell) => {
    if (options.unavailable?.includes(cell.id)) {
      return { ...cell, status: 'unavailable' as const, reason: 'test: architecture not available' };
    }
    const factor = options.factors?.[cell.id] ?? 1;
    const normalized: number[] = [];
    const calibrationMs: number[] = [];
    const stepMs: number[] = [];
    const exact = options.exact?.[cell.id];
    for (let i = 0; i < (exact?.length ?? count); i += 1) {
      const value = exact !== undefined ? exact[i] : centre(cell.objective, cell.dimension) * factor * Math.exp(noise * random.normal());
      // The machine's speed varies 2x between blocks; the normalised value does not see it.
      const unit = 5 * (1 + random.uniform());
      normalized.push(value);
      calibrationMs.push(unit);
      stepMs.push(value * unit);
    }
    return { ...cell, status: 'measured', samples: { stepMs, wallMs: stepMs.map((value) => value * 2), calibrationMs, normalized } };
  });
  return {
    scenario: { name: scenario.name, hash: options.hash ?? scenarioHash(scenario.measurement), file: scenario.file },
    environment: makeEnvironment(options.backend),
    clock: 'process-cpu',
    calibrationKernel: 'test kernel',
    injection: [],
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:01:00.000Z',
    durationSeconds: 60,
    cells,
  };
}

/** Builds a baseline from three runs with seeds 101, 102 and 103 and the given options. */
export function makeBaseline(scenario: GateScenario, options: Partial<RunOptions> = {}): GateBaseline {
  const runs = [101, 102, 103].map((seed) => makeRun(scenario, { ...options, seed }));
  return buildBaseline(runs, new Date('2026-01-01T00:00:00Z'));
}
