import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { loadScenario, resolveDocument } from '../../src/scenarios/catalog.js';
import { ScenarioError } from '../../src/scenarios/problems.js';
import { canonicalJson, cellIdOf, isNotSupportedYet } from '../../src/scenarios/resolve.js';
import { defaultMultimodalConfig } from '../../src/toys/multimodal.js';
import { defaultToy2dConfig } from '../../src/toys/train-2d.js';
import { resolveTrainingConfig, type TrainingConfigInput } from '../../src/train/config.js';
import type { TrainingConfig } from '../../src/train/session.js';

function mnistDocument(): Record<string, any> {
  return {
    name: 'resolve-probe',
    description: 'probe',
    grid: { datasets: ['mnist'], architectures: ['fc'], objectives: ['ml', 'ssm', 'fdssm'], seeds: [0, 1] },
    measure: { kind: 'train', budget: { iterations: 2 } },
  };
}

describe('resolveScenario cells', () => {
  it('one cell per grid point, sorted', () => {
    const resolved = resolveDocument(mnistDocument(), 'probe.json');
    assert.equal(resolved.cells.length, 3 * 2);
    const ids = resolved.cells.map((cell) => cell.cellId);
    assert.deepEqual(ids, [...ids].sort());
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(ids.includes('mnist/fc/ssm/D784/L2/B100/seed1'), ids.join(', '));
  });

  it('paper defaults fill the configuration', () => {
    const resolved = resolveDocument(mnistDocument(), '');
    const fdssm = resolved.cells.find((cell) => cell.cellId === 'mnist/fc/fdssm/D784/L2/B100/seed0');
    assert.ok(fdssm?.config);
    assert.equal(fdssm.config.learningRate, 1e-4);
    assert.equal(fdssm.config.batchSize, 100);
    assert.equal(fdssm.config.depth, 2);
    assert.equal(fdssm.config.emaDecay, 0.999);
    assert.equal(fdssm.config.gradientClip, 5);
    assert.equal(fdssm.config.logitScale, 0.5);
    assert.deepEqual(fdssm.config.imageShape, [28, 28, 1]);
    assert.equal(fdssm.parameters.batchSize, 100);
  });

  it('overrides and variants apply in order', () => {
    const document = mnistDocument();
    document.grid.objectives = ['dsm'];
    document.grid.seeds = [0];
    document.overrides = { learningRate: 0.5, sigma: 0.3 };
    document.variants = [
      { name: 'fast', overrides: { learningRate: 0.9 } },
      { name: 'plain', overrides: {} },
    ];
    const cells = resolveDocument(document, '').cells;
    assert.deepEqual(
      cells.map((cell) => [cell.cellId, cell.config?.learningRate, cell.config?.sigma]),
      [
        ['mnist/fc/dsm/D784/L2/B100/seed0/fast', 0.9, 0.3],
        ['mnist/fc/dsm/D784/L2/B100/seed0/plain', 0.5, 0.3],
      ],
    );
  });

  it('engine overrides reach the config', () => {
    const document = mnistDocument();
    document.grid.objectives = ['dsm'];
    document.grid.seeds = [0];
    document.overrides = { workers: 2, optimizer: 'adam', spectralNorm: false };
    const [parallel] = resolveDocument(document, '').cells;
    assert.equal(parallel.config?.workers, 2);
    assert.equal(parallel.config?.optimizer, 'adam');
    assert.equal(parallel.config?.spectralNorm, false);

    document.overrides = { microbatchSize: 25 };
    const [split] = resolveDocument(document, '').cells;
    assert.equal(split.config?.microbatchSize, 25);

    document.overrides = { workers: 3, optimizer: 'sgd', microbatchSize: 0 };
    assert.throws(
      () => resolveDocument(document, ''),
      (error: ScenarioError) => ['workers', 'optimizer', 'microbatchSize'].every((key) => error.problems.some((p) => p.path === `$.overrides.${key}`)),
    );
  });

  it('explicit dimensions become image shapes', () => {
    const document = {
      name: 'dims',
      description: 'probe',
      grid: { datasets: ['synthetic'], architectures: ['fc'], objectives: ['dsm'], dimensions: [48, 50], channels: [3] },
      measure: { kind: 'runtime' },
    };
    assert.throws(() => resolveDocument(document, ''), (error: ScenarioError) => error.problems.some((p) => p.path === '$.grid.dimensions[1]'));
    document.grid.dimensions = [48, 30];
    const cells = resolveDocument(document, '').cells;
    assert.deepEqual(
      cells.map((cell) => [cell.cellId, cell.config?.imageShape]),
      [
        ['synthetic/fc/dsm/D30c3-1x10/L2/B100/seed0', [1, 10, 3]],
        ['synthetic/fc/dsm/D48c3/L2/B100/seed0', [4, 4, 3]],
      ],
    );
  });

  it('unsupported settings become skipped cells', () => {
    const document = mnistDocument();
    document.grid.objectives = ['ssm'];
    document.grid.seeds = [0];
    document.variants = [
      { name: 'map', overrides: { matchAfterPreprocessing: true } },
      { name: 'no-map', overrides: { matchAfterPreprocessing: false } },
    ];
    // A resolver that does not support MaP off yet, as the training configuration once did.
    const resolver = (input: TrainingConfigInput): TrainingConfig => {
      if (input.matchAfterPreprocessing === false) throw new RangeError('matchAfterPreprocessing = false is not supported yet');
      return resolveTrainingConfig(input);
    };
    const cells = resolveDocument(document, '', resolver).cells;
    const byVariant = Object.fromEntries(cells.map((cell) => [cell.parameters.variant, cell]));
    assert.notEqual(byVariant.map.config, null);
    assert.equal(byVariant['no-map'].config, null);
    assert.match(byVariant['no-map'].skipReason ?? '', /matchAfterPreprocessing/);
  });

  it('config rejection reported with its path', () => {
    const document = mnistDocument();
    document.grid.batchSizes = [100, 60000];
    assert.throws(
      () => resolveDocument(document, 'probe.json'),
      (error: ScenarioError) => {
        assert.ok(error instanceof ScenarioError);
        const problem = error.problems.find((p) => p.path === '$.grid');
        assert.ok(problem, error.message);
        assert.match(problem.found, /B60000/);
        assert.match(problem.fix, /batchSize/);
        return true;
      },
    );
  });

  it('injected resolver failure names the variant', () => {
    const document = mnistDocument();
    document.variants = [{ name: 'broken', overrides: {} }];
    const resolver = (): never => {
      throw new RangeError('training config: impossible');
    };
    assert.throws(
      () => resolveDocument(document, '', resolver),
      (error: ScenarioError) => error.problems.length === 6 && error.problems.every((p) => p.path === '$.variants[0]'),
    );
  });

  it('not-supported errors recognised', () => {
    assert.equal(isNotSupportedYet(new RangeError('x is not supported yet; use y')), true);
    assert.equal(isNotSupportedYet(new RangeError('x is impossible')), false);
    assert.equal(isNotSupportedYet('not supported yet'), false);
  });
});

function toyDocument(): Record<string, any> {
  return {
    name: 'toy-probe',
    description: 'probe',
    grid: { datasets: ['sine', 'checkerboard'], architectures: ['coupling2d'], objectives: ['ml', 'fdssm'], seeds: [0, 2] },
    measure: { kind: 'train', budget: { iterations: 40 }, warmupIterations: 2, evaluation: { every: { iterations: 10 } } },
  };
}

describe('resolveScenario toy cells', () => {
  it('authors settings fill 2-D cells', () => {
    const cells = resolveDocument(toyDocument(), '').cells;
    assert.equal(cells.length, 2 * 2 * 2);
    const checkerboard = cells.find((cell) => cell.cellId === 'checkerboard/coupling2d/fdssm/D2/B10000/seed2');
    assert.ok(checkerboard, cells.map((cell) => cell.cellId).join(', '));
    assert.equal(checkerboard.config, null);
    assert.equal(checkerboard.skipReason, null);
    assert.equal(checkerboard.toy?.kind, 'toy2d');
    const expected = { ...defaultToy2dConfig('checkerboard', 'fdssm'), iterations: 40, seed: 2, evaluateEvery: 10 };
    assert.deepEqual(checkerboard.toy?.config, expected);
    // The authors' checkerboard FDSSM is the one configuration with weight normalisation.
    assert.equal(expected.weightNorm, true);
    assert.equal(checkerboard.parameters.batchSize, 10_000);
    assert.equal(checkerboard.parameters.imageShape, null);
    assert.equal(checkerboard.parameters.dimension, 2);
    assert.ok(cells.some((cell) => cell.cellId === 'sine/coupling2d/ml/D2/B2048/seed0'));
  });

  it('toy overrides and batch apply', () => {
    const document = toyDocument();
    document.grid = { datasets: ['swirl'], architectures: ['coupling2d'], objectives: ['sml'], batchSizes: [64] };
    document.overrides = { learningRate: 3e-3, gradientClip: null, emaDecay: null, base: 'laplace', blocks: 2, hidden: 8, evaluationPoints: 200 };
    document.variants = [
      { name: 'small', overrides: { testPoints: 300, trainPoints: 400, dataSeed: 5, noiseStd: 0.5, networkInit: 'uniform', chunkRows: 32, epsilon: 0.2 } },
    ];
    const [cell] = resolveDocument(document, '').cells;
    assert.equal(cell.cellId, 'swirl/coupling2d/sml/D2/B64/seed0/small');
    const config = cell.toy?.kind === 'toy2d' ? cell.toy.config : null;
    assert.ok(config);
    assert.equal(config.batchSize, 64);
    assert.equal(config.learningRate, 3e-3);
    assert.equal(config.gradientClip, 0, 'null must turn the toy clipping off (0)');
    assert.equal(config.emaDecay, null);
    assert.equal(config.base, 'laplace');
    assert.equal(config.blocks, 2);
    assert.equal(config.hidden, 8);
    assert.equal(config.evaluationPoints, 200);
    assert.equal(config.testPoints, 300);
    assert.equal(config.trainPoints, 400);
    assert.equal(config.dataSeed, 5);
    assert.equal(config.noiseStd, 0.5);
    assert.equal(config.networkInit, 'uniform');
    assert.equal(config.chunkRows, 32);
    assert.equal(config.epsilon, 0.2);
  });

  it('multimodal10 cells per mask', () => {
    const document = {
      name: 'multimodal-probe',
      description: 'probe',
      grid: { datasets: ['multimodal10'], architectures: ['linear-lu', 'linear-full'], objectives: ['ml'] },
      overrides: { blocks: 3, evaluationPoints: 100 },
      measure: { kind: 'train', budget: { iterations: 7 } },
    };
    const cells = resolveDocument(document, '').cells;
    assert.deepEqual(cells.map((cell) => cell.cellId), ['multimodal10/linear-full/ml/D10/B2048/seed0', 'multimodal10/linear-lu/ml/D10/B2048/seed0']);
    const lu = cells[1].toy;
    assert.equal(lu?.kind, 'multimodal10');
    assert.deepEqual(lu?.config, { ...defaultMultimodalConfig('lu'), iterations: 7, evaluateEvery: 0, blocks: 3, evaluationPoints: 100 });
  });

  it('evaluation points above test points rejected', () => {
    const document = toyDocument();
    document.variants = [{ name: 'few', overrides: { testPoints: 50 } }];
    assert.throws(
      () => resolveDocument(document, ''),
      (error: ScenarioError) => {
        const problem = error.problems.find((p) => p.path === '$.variants[0].overrides.testPoints');
        assert.ok(problem, error.message);
        assert.match(problem.fix, /evaluationPoints/);
        return true;
      },
    );
  });

  it('toy configuration changes the hash', () => {
    const base = resolveDocument(toyDocument(), '').hash;
    const changed = toyDocument();
    changed.overrides = { hidden: 32 };
    const warmup = toyDocument();
    warmup.measure.warmupIterations = 3;
    assert.notEqual(resolveDocument(changed, '').hash, base);
    assert.notEqual(resolveDocument(warmup, '').hash, base);
  });
});

describe('scenario hash', () => {
  it('stable across key order and description', () => {
    const first = resolveDocument(mnistDocument(), 'a.json');
    const reordered = mnistDocument();
    const shuffled = { measure: reordered.measure, grid: reordered.grid, description: 'another text', name: reordered.name, estimatedMinutes: 9 };
    const second = resolveDocument(shuffled, 'b.json');
    assert.match(first.hash, /^[0-9a-f]{64}$/);
    assert.equal(second.hash, first.hash);
  });

  it('changes with measure, grid or overrides', () => {
    const base = resolveDocument(mnistDocument(), '').hash;
    const budget = mnistDocument();
    budget.measure.budget = { iterations: 3 };
    const seeds = mnistDocument();
    seeds.grid.seeds = [0];
    const overrides = mnistDocument();
    overrides.overrides = { learningRate: 2e-4 };
    const divergence = mnistDocument();
    divergence.divergence = { maxConsecutiveNonFinite: 2 };
    const hashes = [budget, seeds, overrides, divergence].map((document) => resolveDocument(document, '').hash);
    for (const hash of hashes) assert.notEqual(hash, base);
    assert.equal(new Set(hashes).size, hashes.length);
  });

  it('canonical JSON sorts keys', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: null, c: 'x' }], e: undefined }), '{"a":[{"c":"x","d":null}],"b":1}');
  });
});

describe('cellIdOf', () => {
  it('formats every part', () => {
    const id = cellIdOf({
      dataset: 'synthetic',
      architecture: 'fc',
      objective: 'ssm',
      dimension: 768,
      imageShape: [16, 16, 3],
      depth: 4,
      batchSize: 32,
      seed: 7,
      variant: 'ema',
    });
    assert.equal(id, 'synthetic/fc/ssm/D768c3/L4/B32/seed7/ema');
  });
});

describe('loadScenario with malformed JSON', () => {
  it('keeps position, line and column', () => {
    const folder = mkdtempSync(join(tmpdir(), 'ebflow-scenario-json-'));
    try {
      const file = join(folder, 'truncated.json');
      // The missing comma after "smoke-like" sits on line 3; the parser stops at the next key.
      writeFileSync(file, '{\n  "$schema": "./scenario.schema.json",\n  "name": "smoke-like"\n  "grid": {}\n}\n');
      assert.throws(
        () => loadScenario(file),
        (error: unknown) => {
          assert.ok(error instanceof ScenarioError);
          assert.equal(error.problems.length, 1);
          // Node 20 gives the position only, to which the loader adds line and column; later Node versions give both.
          assert.match(error.problems[0]!.found, /^unparsable JSON: .*position \d+.*\(line 4,? column 3\)$/);
          assert.equal(error.problems[0]!.found.match(/\(line /g)?.length, 1);
          assert.match(error.message, /fix: fix the JSON syntax at that position/);
          return true;
        },
      );
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
