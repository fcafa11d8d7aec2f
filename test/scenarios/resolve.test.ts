import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { resolveDocument } from '../../src/scenarios/catalog.js';
import { ScenarioError } from '../../src/scenarios/problems.js';
import { canonicalJson, cellIdOf, isNotSupportedYet } from '../../src/scenarios/resolve.js';

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

  it('unbuilt architectures become skipped cells', () => {
    const document = {
      name: 'unbuilt',
      description: 'probe',
      grid: { datasets: ['sine', 'swirl'], architectures: ['coupling2d'], objectives: ['ml'] },
      measure: { kind: 'train', budget: { iterations: 1 } },
    };
    const cells = resolveDocument(document, '').cells;
    assert.equal(cells.length, 2);
    for (const cell of cells) {
      assert.equal(cell.config, null);
      assert.match(cell.skipReason ?? '', /coupling2d/);
      assert.equal(cell.parameters.dimension, 2);
    }
  });

  it('unsupported settings become skipped cells', () => {
    const document = mnistDocument();
    document.grid.objectives = ['ssm'];
    document.grid.seeds = [0];
    document.variants = [
      { name: 'map', overrides: { matchAfterPreprocessing: true } },
      { name: 'no-map', overrides: { matchAfterPreprocessing: false } },
    ];
    const cells = resolveDocument(document, '').cells;
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
