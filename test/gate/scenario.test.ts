import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  listCells,
  listRatios,
  loadGateScenario,
  parseGateScenario,
  resolveGateClock,
  scenarioHash,
  thresholdFor,
} from '../../src/gate/scenario.js';

function validInput(): Record<string, any> {
  return {
    name: 'demo',
    measurement: {
      batchSize: 8,
      seed: 0,
      warmupSteps: 1,
      rounds: 2,
      stepsPerRound: 2,
      calibrationRepetitions: 3,
      groups: [
        { architecture: 'fc', imageShape: [14, 14, 1], objectives: ['ml', 'ssm'] },
        { architecture: 'cnn', imageShape: [8, 8, 1], objectives: ['dsm', 'ml'] },
      ],
    },
    comparison: { cellThreshold: 1.3, overrides: { 'fc/D196/ssm': 1.6 } },
  };
}

test('committed gate scenario loads', () => {
  const scenario = loadGateScenario('benchmarks/gate.json');
  const cells = listCells(scenario);
  assert.equal(scenario.name, 'gate');
  assert.ok(cells.length >= 5);
  assert.equal(new Set(cells.map((cell) => cell.id)).size, cells.length);
  assert.ok(listRatios(scenario).every((ratio) => ratio.denominator.objective === scenario.comparison.ratioReference));
});

test('scenario lists cells and ratios', () => {
  const scenario = parseGateScenario(validInput(), 'demo.json');
  assert.deepEqual(
    listCells(scenario).map((cell) => cell.id),
    ['fc/D196/ml', 'fc/D196/ssm', 'cnn/D64/dsm', 'cnn/D64/ml'],
  );
  assert.deepEqual(
    listRatios(scenario).map((ratio) => ratio.id),
    ['fc/D196/ssm-vs-ml', 'cnn/D64/dsm-vs-ml'],
  );
  assert.equal(scenario.comparison.confidence, 0.95);
  assert.equal(scenario.measurement.clock, 'auto');
  assert.equal(thresholdFor(scenario, 'fc/D196/ssm', 'cell'), 1.6);
  assert.equal(thresholdFor(scenario, 'fc/D196/ml', 'cell'), 1.3);
  assert.equal(thresholdFor(scenario, 'fc/D196/ssm-vs-ml', 'ratio'), 1.25);
});

test('scenario hash covers only the measurement', () => {
  const base = parseGateScenario(validInput(), 'demo.json');
  const policy = validInput();
  policy.name = 'renamed';
  policy.description = 'other words';
  policy.comparison = { cellThreshold: 2, confidence: 0.99 };
  const reordered = validInput();
  reordered.measurement = Object.fromEntries(Object.entries(reordered.measurement).reverse());
  const changed = validInput();
  changed.measurement.batchSize = 16;

  const hash = scenarioHash(base.measurement);
  assert.match(hash, /^[0-9a-f]{64}$/);
  assert.equal(scenarioHash(parseGateScenario(policy, 'demo.json').measurement), hash);
  assert.equal(scenarioHash(parseGateScenario(reordered, 'demo.json').measurement), hash);
  assert.notEqual(scenarioHash(parseGateScenario(changed, 'demo.json').measurement), hash);
});

test('clock setting resolves per backend', () => {
  assert.equal(resolveGateClock('auto', 'wasm'), 'process-cpu');
  assert.equal(resolveGateClock('auto', 'cpu'), 'process-cpu');
  assert.equal(resolveGateClock('auto', 'tensorflow-gpu'), 'wall');
  assert.equal(resolveGateClock('auto', 'tensorflow'), 'wall');
  assert.equal(resolveGateClock('wall', 'wasm'), 'wall');
  assert.equal(resolveGateClock('process-cpu', 'tensorflow'), 'process-cpu');
});

test('scenario rejects invalid files', () => {
  const cases: [(input: Record<string, any>) => void, RegExp][] = [
    [(input) => (input.extra = 1), /unknown key "extra" in the top level/],
    [(input) => (input.name = 'a/b'), /name must be a file-name-safe string/],
    [(input) => (input.measurement.clock = 'cpu'), /measurement\.clock must be one of "auto", "process-cpu", "wall"/],
    [(input) => (input.measurement.rounds = 0), /measurement\.rounds must be an integer ≥ 1, received 0/],
    [(input) => (input.measurement.stepsPerRound = 1), /at least 4/],
    [(input) => (input.measurement.groups[0].architecture = 'glow'), /architecture must be one of "fc", "cnn"/],
    [(input) => (input.measurement.groups[0].imageShape = [14, 14]), /imageShape must be \[H, W, C\]/],
    [(input) => (input.measurement.groups[0].objectives = ['ml', 'ml']), /without repeated objectives/],
    [
      (input) => {
        input.measurement.groups[1].architecture = 'fc';
        input.measurement.groups[1].imageShape = [14, 14, 1];
      },
      /another group already has them/,
    ],
    [(input) => (input.comparison.cellThreshold = 1), /cellThreshold must be a number > 1/],
    [(input) => (input.comparison.overrides = { 'fc/D784/ssm': 1.5 }), /names "fc\/D784\/ssm", but no cell or ratio has that id/],
    [(input) => (input.comparison.confidence = 0.5), /confidence must be a number in \[0\.8, 1\)/],
  ];
  for (const [mutate, message] of cases) {
    const input = validInput();
    mutate(input);
    assert.throws(() => parseGateScenario(input, 'demo.json'), message, String(message));
  }
  assert.throws(() => loadGateScenario('no/such/file.json'), /cannot read no\/such\/file\.json/);
});
