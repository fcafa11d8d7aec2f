import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseRecord } from '../../src/runner/results.js';
import { parseToyArguments } from '../../src/toys/cli-arguments.js';
import { configurationHash, multimodalRecord, toy2dRecord, type RunContext } from '../../src/toys/record.js';
import { defaultMultimodalConfig } from '../../src/toys/multimodal.js';
import { defaultToy2dConfig } from '../../src/toys/train-2d.js';

describe('toys command-line arguments', () => {
  it('parses the documented example', () => {
    const args = parseToyArguments(['--dataset', 'sine', '--objective', 'dsm', '--iterations', '300', '--seed', '2', '--out=/tmp/out']);
    assert.equal(args.dataset, 'sine');
    assert.equal(args.objective, 'dsm');
    assert.equal(args.iterations, 300);
    assert.equal(args.seed, 2);
    assert.equal(args.out, '/tmp/out');
    assert.equal(args.base, 'gaussian');
    assert.equal(args.batch, null);
  });

  it('rejects invalid values with the option and the value', () => {
    assert.throws(() => parseToyArguments(['--dataset', 'moons']), /--dataset must be one of sine, swirl, checkerboard, multimodal10, received "moons"/);
    assert.throws(() => parseToyArguments(['--dataset', 'sine', '--iterations', '0']), /--iterations must be an integer ≥ 1, received "0"/);
    assert.throws(() => parseToyArguments(['--dataset', 'sine', '--learning-rate', 'fast']), /--learning-rate must be a finite number ≥ 0/);
    assert.throws(() => parseToyArguments(['--objective', 'ml']), /--dataset is required/);
    assert.throws(() => parseToyArguments(['--dataset', 'sine', '--seed']), /--seed needs a value/);
    assert.throws(() => parseToyArguments(['--dataset', 'sine', '--bogus', '1']), /unknown argument "--bogus"/);
    assert.throws(() => parseToyArguments(['--dataset', 'sine', '--seed', '1', '--seed', '2']), /given twice/);
  });

  it('rejects combinations the experiments do not have', () => {
    assert.throws(() => parseToyArguments(['--dataset', 'multimodal10', '--objective', 'dsm']), /ML only/);
    assert.throws(() => parseToyArguments(['--dataset', 'sine', '--mask', 'lu']), /--mask applies to multimodal10 only/);
    assert.throws(() => parseToyArguments(['--dataset', 'multimodal10', '--hidden', '8']), /--hidden applies to the 2-D data sets only/);
    assert.equal(parseToyArguments(['--dataset', 'multimodal10', '--mask', 'lu']).mask, 'lu');
  });

  it('accepts --help without other arguments', () => {
    assert.equal(parseToyArguments(['--help']).help, true);
  });
});

describe('toy result records', () => {
  const context: RunContext = {
    environment: {
      backend: 'wasm',
      backendAttempts: [{ name: 'wasm' }],
      nodeVersion: 'v20',
      packages: {},
      cpuModel: 'test',
      cpuCount: 2,
      platform: 'linux-x64',
      hostname: 'test',
      codeRevision: 'test',
    },
    startedAt: '2025-01-01T00:00:00.000Z',
    finishedAt: '2025-01-01T00:01:00.000Z',
    warmupIterations: 1,
  };

  it('share a hash across seeds only', () => {
    const config = defaultToy2dConfig('sine', 'dsm');
    assert.equal(configurationHash({ ...config, seed: 1 }), configurationHash({ ...config, seed: 2 }));
    assert.notEqual(configurationHash(config), configurationHash({ ...config, learningRate: 1 }));
  });

  it('2-D records carry the metrics and the heat-map and parse as result records', () => {
    const config = { ...defaultToy2dConfig('swirl', 'ssm'), iterations: 3 };
    const metrics = { kl: 0.5, klReference: -3.5, fisher: 1.25, points: 10, nonFinite: 0 };
    const record = toy2dRecord(
      { config, losses: [1, 2, 3], skippedSteps: 0, iterationMs: [10, 20, 30], evaluations: [{ step: 3, metrics }], grid: { resolution: 2, extent: 10, logDensity: new Float64Array(4) }, oracleSeconds: 1 },
      context,
      'swirl-density.png',
    );
    assert.equal(record.cellId, 'swirl/coupling2d/ssm/D2/B2048/seed0');
    assert.deepEqual(record.metrics, { kl: 0.5, klReference: -3.5, fisher: 1.25 });
    assert.deepEqual(record.artifacts, [{ kind: 'density', path: 'swirl-density.png' }]);
    assert.equal(record.timing?.samplesMs.length, 2, 'one warm-up iteration left out');
    assert.equal(record.outcome.status, 'completed');
    const parsed = parseRecord(JSON.stringify(record));
    assert.notEqual(typeof parsed, 'string', String(parsed));
  });

  it('multimodal records carry the test NLL per evaluation', () => {
    const config = { ...defaultMultimodalConfig('lower'), iterations: 2, evaluateEvery: 1 };
    const record = multimodalRecord(
      { config, losses: [5, 4], skippedSteps: 0, iterationMs: [1000, 1000], evaluations: [{ step: 0, iteration: 0, nll: 6 }, { step: 1, iteration: 1, nll: 5 }, { step: 2, iteration: 2, nll: 4 }], finalNll: 4 },
      context,
    );
    assert.equal(record.cellId, 'multimodal10/linear-lower/ml/D10/B2048/seed0');
    assert.equal(record.finalNll?.nllNats, 4);
    assert.ok(Math.abs((record.finalNll?.bitsPerDim ?? 0) - 4 / (10 * Math.LN2)) < 1e-12);
    assert.deepEqual(record.evaluations.map((e) => e.trainingSeconds), [0, 1, 2]);
  });
});
