import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { CalibrationKernel } from '../../src/gate/calibration.js';
import type { GateCellRun } from '../../src/gate/records.js';
import { parseGateScenario, scenarioHash, type GateCell } from '../../src/gate/scenario.js';
import { runGateSweep, type GateSweepEvent } from '../../src/gate/sweep.js';
import type { StepResult, TrainingSession } from '../../src/train/session.js';
import { makeEnvironment } from './fixtures.js';

const scenario = parseGateScenario(
  {
    name: 'sweep-test',
    measurement: {
      batchSize: 4,
      seed: 0,
      warmupSteps: 2,
      rounds: 3,
      stepsPerRound: 2,
      calibrationRepetitions: 3,
      groups: [
        { architecture: 'fc', imageShape: [2, 2, 1], objectives: ['ml', 'ssm'] },
        { architecture: 'cnn', imageShape: [4, 4, 1], objectives: ['dsm'] },
      ],
    },
  },
  'sweep-test.json',
);

/**
 * Creates a virtual measuring clock in ms that advances 0.001 ms per reading plus whatever the
 * fakes add, and a wall clock that runs twice as fast (as on a machine shared with another process).
 */
function makeClock() {
  const state = { time: 0 };
  return {
    state,
    clockOptions: {
      clock: 'process-cpu' as const,
      readMeasureClock: (): number => (state.time += 0.001),
      readWallClock: (): number => 2 * state.time,
    },
  };
}

interface Fakes {
  log: string[];
  steps: Map<string, number>;
  disposed: string[];
}

function makeFakes(clock: { state: { time: number } }, stepMs: (cell: GateCell) => number, failAtStep?: { id: string; step: number }) {
  const fakes: Fakes = { log: [], steps: new Map(), disposed: [] };
  const kernel: CalibrationKernel = {
    description: 'fake kernel',
    async run() {
      fakes.log.push('calibrate');
      clock.state.time += 5;
    },
    dispose() {},
  };
  const createSession = async (cell: GateCell): Promise<TrainingSession> => {
    if (cell.architecture === 'cnn') throw new RangeError('architecture "cnn" is not available yet');
    fakes.steps.set(cell.id, 0);
    return {
      config: {} as TrainingSession['config'],
      iterationsPerEpoch: 1,
      async step(): Promise<StepResult> {
        const count = (fakes.steps.get(cell.id) ?? 0) + 1;
        fakes.steps.set(cell.id, count);
        fakes.log.push(`step ${cell.id}`);
        if (failAtStep !== undefined && failAtStep.id === cell.id && failAtStep.step === count) throw new Error('out of memory');
        clock.state.time += stepMs(cell);
        return { loss: 0, finite: true, step: count, phases: {} };
      },
      async evaluate() {
        throw new Error('not used');
      },
      dispose() {
        fakes.disposed.push(cell.id);
      },
    };
  };
  return { fakes, kernel, createSession };
}

function measured(cells: GateCellRun[], id: string) {
  const cell = cells.find((entry) => entry.id === id);
  assert.ok(cell !== undefined, `${id} is missing`);
  assert.ok(cell.status === 'measured', `${id} is ${cell.status}`);
  return cell.samples;
}

test('sweep calibrates before each block', async () => {
  const clock = makeClock();
  const { fakes, kernel, createSession } = makeFakes(clock, (cell) => (cell.objective === 'ml' ? 40 : 20));
  const events: GateSweepEvent[] = [];
  const run = await runGateSweep({ scenario, environment: makeEnvironment(), injection: [], createSession, kernel, ...clock.clockOptions, onEvent: (e) => events.push(e) });

  // Warm-up: 2 untimed steps per cell, then 3 kernel runs, then per round and cell 3 + 2.
  const block = (id: string) => ['calibrate', 'calibrate', 'calibrate', `step ${id}`, `step ${id}`];
  const expected = [
    'step fc/D4/ml', 'step fc/D4/ml', 'step fc/D4/ssm', 'step fc/D4/ssm',
    'calibrate', 'calibrate', 'calibrate',
    ...block('fc/D4/ml'), ...block('fc/D4/ssm'),
    ...block('fc/D4/ml'), ...block('fc/D4/ssm'),
    ...block('fc/D4/ml'), ...block('fc/D4/ssm'),
  ];
  assert.deepEqual(fakes.log, expected);

  const ml = measured(run.cells, 'fc/D4/ml');
  assert.equal(ml.stepMs.length, 6);
  ml.calibrationMs.forEach((value) => assert.ok(Math.abs(value - 5) < 0.01, `calibration ${value}`));
  ml.stepMs.forEach((value, i) => {
    assert.ok(Math.abs(value - 40) < 0.01, `step ${value}`);
    assert.ok(Math.abs(ml.wallMs[i] - 80) < 0.02, `wall ${ml.wallMs[i]}`);
    assert.ok(Math.abs(ml.normalized[i] - value / ml.calibrationMs[i]) < 1e-12);
  });
  assert.equal(run.clock, 'process-cpu');
  assert.equal(run.scenario.hash, scenarioHash(scenario.measurement));
  assert.deepEqual(fakes.disposed.sort(), ['fc/D4/ml', 'fc/D4/ssm']);
  assert.deepEqual(events.filter((e) => e.type === 'round-finished').map((e) => e.type === 'round-finished' && e.round), [1, 2, 3]);
});

test('sweep records unavailable and errored cells', async () => {
  const clock = makeClock();
  const { fakes, kernel, createSession } = makeFakes(clock, () => 10, { id: 'fc/D4/ssm', step: 4 });
  const events: GateSweepEvent[] = [];
  const run = await runGateSweep({ scenario, environment: makeEnvironment(), injection: [], createSession, kernel, ...clock.clockOptions, onEvent: (e) => events.push(e) });

  const cnn = run.cells.find((cell) => cell.id === 'cnn/D16/dsm');
  assert.equal(cnn?.status, 'unavailable');
  assert.ok(cnn?.status === 'unavailable');
  assert.match(cnn.reason, /not available yet/);
  const ssm = run.cells.find((cell) => cell.id === 'fc/D4/ssm');
  assert.ok(ssm?.status === 'errored');
  assert.equal(ssm.message, 'out of memory');
  assert.equal(fakes.steps.get('fc/D4/ssm'), 4);
  assert.ok(fakes.disposed.includes('fc/D4/ssm'));
  assert.equal(measured(run.cells, 'fc/D4/ml').stepMs.length, 6);
  assert.deepEqual(events.filter((e) => e.type === 'cell-unavailable' || e.type === 'cell-errored').map((e) => e.type), ['cell-unavailable', 'cell-errored']);
});

test('sweep injects the slowdown into one objective', async () => {
  const clock = makeClock();
  const { kernel, createSession } = makeFakes(clock, () => 10);
  const run = await runGateSweep({
    scenario,
    environment: makeEnvironment(),
    injection: [{ objective: 'ssm', factor: 1.5 }],
    createSession,
    kernel,
    ...clock.clockOptions,
  });
  assert.deepEqual(run.injection, [{ objective: 'ssm', factor: 1.5 }]);
  for (const value of measured(run.cells, 'fc/D4/ssm').stepMs) assert.ok(value >= 15 && value < 15.1, `ssm step ${value}`);
  for (const value of measured(run.cells, 'fc/D4/ml').stepMs) assert.ok(value >= 10 && value < 10.1, `ml step ${value}`);
});
