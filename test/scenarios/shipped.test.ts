import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { OBJECTIVE_NAMES } from '../../src/objectives/objective.js';
import { defaultMultimodalConfig } from '../../src/toys/multimodal.js';
import { defaultToy2dConfig } from '../../src/toys/train-2d.js';
import { benchmarksDirectory, DEFAULT_SCENARIO, loadScenario, shippedScenarioNames } from '../../src/scenarios/catalog.js';
import { OVERRIDE_KEYS, SCENARIO_ARCHITECTURES, SCENARIO_DATASETS } from '../../src/scenarios/scenario.js';
import {
  BUDGET_KEYS,
  DIVERGENCE_KEYS,
  EVALUATION_KEYS,
  EVERY_KEYS,
  FINAL_KEYS,
  GRID_KEYS,
  ROOT_KEYS,
  RUNTIME_MEASURE_KEYS,
  TRAIN_MEASURE_KEYS,
  VARIANT_KEYS,
} from '../../src/scenarios/validate.js';

const EXPECTED_SCENARIOS = [
  'default',
  'fig2a-runtime-vs-size',
  'fig2b-nll-vs-time',
  'glow',
  'multimodal10',
  'runtime-vs-depth',
  'smoke',
  'table2',
  'table4-map-ema',
  'toys-2d',
  'toys-smoke',
];

describe('shipped scenarios', () => {
  it('every expected scenario is shipped', () => {
    const names = shippedScenarioNames();
    for (const name of EXPECTED_SCENARIOS) assert.ok(names.includes(name), `benchmarks/${name}.json is missing`);
    assert.ok(names.includes(DEFAULT_SCENARIO));
  });

  for (const name of EXPECTED_SCENARIOS) {
    it(`${name} validates and resolves`, () => {
      const resolved = loadScenario(name);
      assert.equal(resolved.scenario.name, name, 'the name inside the file differs from the file name');
      assert.ok(resolved.cells.length > 0);
      assert.notEqual(resolved.scenario.estimatedMinutes, null, 'no estimatedMinutes');
      assert.match(resolved.scenario.description, /\b(minutes?|hours?|seconds)\b/, 'the description gives no duration');
    });
  }

  it('paper scenarios name their table or figure', () => {
    for (const name of ['toys-2d', 'multimodal10', 'table2', 'table4-map-ema', 'fig2a-runtime-vs-size', 'fig2b-nll-vs-time', 'glow']) {
      assert.match(loadScenario(name).scenario.description, /(Table|Figure) A?\d/, name);
    }
  });

  it('glow cells have a configuration', () => {
    const cells = loadScenario('glow').cells;
    assert.ok(cells.length > 0);
    for (const cell of cells) {
      assert.equal(cell.skipReason, null, cell.cellId);
      assert.equal(cell.config?.architecture, 'glow', cell.cellId);
    }
  });

  it('toys-2d keeps the paper settings but the budget', () => {
    const resolved = loadScenario('toys-2d');
    assert.equal(resolved.cells.length, 3 * 5 * 3);
    const measure = resolved.scenario.measure;
    assert.equal(measure.kind, 'train');
    assert.ok(measure.kind === 'train' && 'iterations' in measure.budget, 'the budget is not a number of iterations');
    assert.match(resolved.scenario.description, /50 000 iterations/, 'the description must say the paper trains 50 000 iterations');
    for (const cell of resolved.cells) {
      assert.equal(cell.skipReason, null, cell.cellId);
      assert.equal(cell.toy?.kind, 'toy2d', cell.cellId);
      const config = cell.toy?.kind === 'toy2d' ? cell.toy.config : null;
      assert.ok(config);
      const paper = defaultToy2dConfig(config.dataset, config.objective);
      assert.deepEqual({ ...config, iterations: paper.iterations, seed: paper.seed }, paper, cell.cellId);
      assert.equal(config.iterations, measure.budget.iterations);
    }
    assert.deepEqual([...new Set(resolved.cells.map((cell) => cell.parameters.seed))].sort(), [0, 1, 2]);
  });

  it('multimodal10 runs the four masks by ML', () => {
    const resolved = loadScenario('multimodal10');
    assert.deepEqual(resolved.cells.map((cell) => cell.parameters.architecture).sort(), ['linear-full', 'linear-lower', 'linear-lu', 'linear-upper']);
    for (const cell of resolved.cells) {
      assert.equal(cell.parameters.objective, 'ml');
      const config = cell.toy?.kind === 'multimodal10' ? cell.toy.config : null;
      assert.ok(config, cell.cellId);
      assert.deepEqual(config, { ...defaultMultimodalConfig(config.mask), seed: config.seed }, cell.cellId);
    }
  });

  it('default trains MNIST FC with all objectives', () => {
    const resolved = loadScenario(DEFAULT_SCENARIO);
    assert.deepEqual(resolved.cells.map((cell) => cell.parameters.objective).sort(), [...OBJECTIVE_NAMES].sort());
    assert.ok(resolved.cells.every((cell) => cell.config?.dataset === 'mnist' && cell.config.architecture === 'fc'));
    const measure = resolved.scenario.measure;
    assert.equal(measure.kind, 'train');
    assert.ok(measure.kind === 'train' ? 'iterations' in measure.budget : false, 'the budget is not a number of iterations');
    assert.equal(measure.kind === 'train' && measure.final?.split, 'test');
  });

  it('fig2a covers sizes 16 to 40 in steps of 4', () => {
    const resolved = loadScenario('fig2a-runtime-vs-size');
    const sides = new Set(resolved.cells.map((cell) => cell.parameters.imageShape?.[0]));
    assert.deepEqual([...sides].sort((a, b) => (a ?? 0) - (b ?? 0)), [16, 20, 24, 28, 32, 36, 40]);
    assert.equal(resolved.cells.length, 7 * 2 * 2 * 5);
    assert.equal(resolved.scenario.measure.kind, 'runtime');
  });
});

describe('scenario JSON Schema', () => {
  const schema = JSON.parse(readFileSync(join(benchmarksDirectory(), 'scenario.schema.json'), 'utf8'));

  it('every property has a description', () => {
    const missing: string[] = [];
    const visit = (node: unknown, path: string): void => {
      if (typeof node !== 'object' || node === null) return;
      const object = node as Record<string, unknown>;
      if (object.properties && typeof object.properties === 'object') {
        for (const [key, child] of Object.entries(object.properties as Record<string, Record<string, unknown>>)) {
          if (typeof child.description !== 'string' || child.description.length === 0) missing.push(`${path}.${key}`);
        }
      }
      for (const [key, child] of Object.entries(object)) visit(child, `${path}.${key}`);
    };
    visit(schema, '$');
    assert.deepEqual(missing, []);
  });

  it('schema keys match the validator', () => {
    const keys = (node: { properties: object }): string[] => Object.keys(node.properties).sort();
    const defs = schema.$defs;
    const train = defs.trainMeasure.properties;
    assert.deepEqual(keys(schema), [...ROOT_KEYS].sort());
    assert.deepEqual(keys(schema.properties.grid), [...GRID_KEYS].sort());
    assert.deepEqual(keys(schema.properties.variants.items), [...VARIANT_KEYS].sort());
    assert.deepEqual(keys(schema.properties.divergence), [...DIVERGENCE_KEYS].sort());
    assert.deepEqual(keys(defs.overrides), [...OVERRIDE_KEYS].sort());
    assert.deepEqual(keys(defs.runtimeMeasure), [...RUNTIME_MEASURE_KEYS].sort());
    assert.deepEqual(keys(defs.trainMeasure), [...TRAIN_MEASURE_KEYS].sort());
    assert.deepEqual(keys(train.budget), [...BUDGET_KEYS].sort());
    assert.deepEqual(keys(train.evaluation), [...EVALUATION_KEYS].sort());
    assert.deepEqual(keys(train.evaluation.properties.every), [...EVERY_KEYS].sort());
    assert.deepEqual(keys(train.final.oneOf[2]), [...FINAL_KEYS].sort());
  });

  it('schema enums match the validator', () => {
    const grid = schema.properties.grid.properties;
    assert.deepEqual(grid.datasets.items.enum, [...SCENARIO_DATASETS]);
    assert.deepEqual(grid.architectures.items.enum, [...SCENARIO_ARCHITECTURES]);
    assert.deepEqual(grid.objectives.items.enum, [...OBJECTIVE_NAMES]);
  });
});
