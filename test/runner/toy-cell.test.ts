import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend, type BackendSelection } from '../../src/backend/select.js';
import type { IterationEvent, RunEvent } from '../../src/runner/events.js';
import { cellFileName, mergeResults, parseRecord, readResults } from '../../src/runner/results.js';
import { runScenario, type RunOptions } from '../../src/runner/sweep.js';
import { defaultToyTrainers, densityFileName, type ToyTrainers } from '../../src/runner/toy-cell.js';
import { resolveDocument } from '../../src/scenarios/catalog.js';
import type { ResolvedScenario } from '../../src/scenarios/scenario.js';
import type { Toy2dConfig, Toy2dResult } from '../../src/toys/train-2d.js';
import type { ToyStepProgress } from '../../src/toys/training-loop.js';
import { FAKE_ENVIRONMENT } from './fake-session.js';

const folders: string[] = [];
function temporaryFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'ebflow-toys-'));
  folders.push(folder);
  return folder;
}
after(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Resolves a 2-D toy scenario that trains in about a second per cell: 2 blocks, batch 32, 4 iterations. */
function tinyToyScenario(change: (document: Record<string, any>) => void = () => {}): ResolvedScenario {
  const document: Record<string, any> = {
    name: 'toys-tiny',
    description: 'runner test: tiny 2-D toy cells',
    grid: { datasets: ['sine'], architectures: ['coupling2d'], objectives: ['ml', 'ssm'], batchSizes: [32] },
    overrides: { blocks: 2, hidden: 8, evaluationPoints: 200, trainPoints: 300, testPoints: 200 },
    measure: { kind: 'train', budget: { iterations: 4 }, warmupIterations: 1, evaluation: { every: { iterations: 2 } } },
  };
  change(document);
  return resolveDocument(document, 'toys-tiny.json');
}

/** Wraps trainers so a test can count how many cells trained. */
function countingTrainers(inner: ToyTrainers): { trainers: ToyTrainers; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    trainers: {
      train2d: (config, onStep) => {
        calls.push(`${config.dataset}/${config.objective}/seed${config.seed}`);
        return inner.train2d(config, onStep);
      },
      trainMultimodal: (config, onStep) => {
        calls.push(`multimodal10/${config.mask}/seed${config.seed}`);
        return inner.trainMultimodal(config, onStep);
      },
    },
  };
}

/**
 * Returns trainers whose 2-D loop reports the losses of `lossesFor(config)` without training and
 * then returns a fixed result. A NaN loss marks a skipped, non-finite update, and `failWith` makes
 * the loop throw.
 */
function scriptedTrainers(lossesFor: (config: Toy2dConfig) => number[], failWith?: string): ToyTrainers {
  return {
    async train2d(config, onStep) {
      if (failWith) throw new Error(failWith);
      const losses = lossesFor(config);
      losses.forEach((loss, index) => onStep({ iteration: index + 1, loss, skipped: !Number.isFinite(loss), milliseconds: 10 + index } satisfies ToyStepProgress));
      const metrics = { kl: 0.5, klReference: 4.5, fisher: 1.25, points: 10, nonFinite: 0 };
      const result: Toy2dResult = {
        config,
        losses,
        skippedSteps: losses.filter((loss) => !Number.isFinite(loss)).length,
        iterationMs: losses.map((_, index) => 10 + index),
        evaluations: [{ step: losses.length, metrics }],
        grid: { resolution: 4, extent: 1, logDensity: Float64Array.from({ length: 16 }, (_, k) => -k) },
        oracleSeconds: 0.01,
      };
      return result;
    },
    async trainMultimodal() {
      throw new Error('scriptedTrainers: multimodal10 is not scripted');
    },
  };
}

function options(resultsRoot: string, backend: BackendSelection | null, trainers: ToyTrainers, extra: Partial<RunOptions> = {}): RunOptions {
  return {
    resultsRoot,
    backend: backend ?? { name: 'fake', attempts: [{ name: 'fake' }] },
    environment: FAKE_ENVIRONMENT,
    toyTrainers: trainers,
    ...extra,
  };
}

describe('toy cells with the real toy loops', () => {
  let backend: BackendSelection;
  before(async () => {
    backend = await selectBackend('wasm');
  });

  it('trains, evaluates and records 2-D cells', async () => {
    const root = temporaryFolder();
    const resolved = tinyToyScenario();
    const { trainers, calls } = countingTrainers(defaultToyTrainers(backend.name));
    const events: RunEvent[] = [];
    const tensorsBefore = tf.memory().numTensors;
    const summary = await runScenario(resolved, options(root, backend, trainers, { onEvent: (event) => events.push(event) }));

    assert.equal(tf.memory().numTensors, tensorsBefore, 'the toy cells leaked tensors');
    assert.deepEqual(calls.sort(), ['sine/ml/seed0', 'sine/ssm/seed0']);
    assert.deepEqual(summary.cells.map((cell) => cell.cellId), ['sine/coupling2d/ml/D2/B32/seed0', 'sine/coupling2d/ssm/D2/B32/seed0']);
    for (const { record, cellId } of summary.cells) {
      assert.deepEqual(record.outcome, { status: 'completed' }, cellId);
      assert.equal(record.config, null);
      assert.equal(record.measure, 'train');
      assert.equal(record.parameters.batchSize, 32);
      assert.equal(record.losses.length, 4);
      assert.ok(record.losses.every(Number.isFinite), `losses ${record.losses}`);
      assert.equal(record.timing?.warmupIterations, 1);
      assert.equal(record.timing?.samplesMs.length, 3, 'the warm-up iteration must be left out of the samples');
      assert.ok((record.timing?.medianMs ?? 0) > 0);
      assert.ok((record.memory?.peakTensorBytes ?? 0) > 0);
      for (const key of ['kl', 'klReference', 'fisher'] as const) {
        assert.ok(Number.isFinite(record.metrics?.[key]), `${cellId}: metrics.${key} = ${record.metrics?.[key]}`);
      }
      assert.ok((record.metrics?.fisher ?? -1) >= 0);
      assert.deepEqual(record.toy?.history.map((point) => point.step), [0, 2, 4]);
      assert.deepEqual(record.artifacts, [{ kind: 'density', path: densityFileName(cellId) }]);
      const png = readFileSync(join(summary.folder, densityFileName(cellId)));
      assert.deepEqual([...png.subarray(0, 8)], PNG_SIGNATURE);
    }

    const iterations = events.filter((event): event is IterationEvent => event.type === 'iteration' && event.cellId === 'sine/coupling2d/ml/D2/B32/seed0');
    assert.deepEqual(iterations.map((event) => `${event.phase} ${event.index}/${event.plannedIterations}`), ['warmup 1/3', 'timed 1/3', 'timed 2/3', 'timed 3/3']);
    assert.ok(iterations.every((event) => Number.isFinite(event.loss) && event.cellEtaSeconds !== null && event.scenarioEtaSeconds !== null));
    assert.equal(iterations.at(-1)?.cellEtaSeconds, 0);

    // The records on disk read back with their metrics.
    const stored = readResults(summary.folder);
    assert.equal(stored.length, 2);
    assert.ok(stored.every((record) => Number.isFinite(record.metrics?.kl)));
  });

  it('resume skips completed toy cells', async () => {
    const root = temporaryFolder();
    const resolved = tinyToyScenario((document) => {
      document.grid.objectives = ['ml', 'dsm'];
    });
    const first = countingTrainers(defaultToyTrainers(backend.name));
    const initial = await runScenario(resolved, options(root, backend, first.trainers));
    assert.equal(first.calls.length, 2);

    const second = countingTrainers(defaultToyTrainers(backend.name));
    const events: RunEvent[] = [];
    const resumed = await runScenario(resolved, options(root, backend, second.trainers, { onEvent: (event) => events.push(event) }));
    assert.deepEqual(second.calls, [], 'a completed toy cell trained again');
    assert.ok(resumed.cells.every((cell) => !cell.ranNow));
    assert.equal(events.filter((event) => event.type === 'cell-resumed').length, 2);
    assert.deepEqual(
      resumed.cells.map((cell) => cell.record.metrics?.kl),
      initial.cells.map((cell) => cell.record.metrics?.kl),
    );

    // A lost record runs again; the other stays.
    unlinkSync(join(initial.folder, cellFileName('sine/coupling2d/dsm/D2/B32/seed0')));
    const third = countingTrainers(defaultToyTrainers(backend.name));
    const repaired = await runScenario(resolved, options(root, backend, third.trainers));
    assert.deepEqual(third.calls, ['sine/dsm/seed0']);
    assert.deepEqual(repaired.cells.map((cell) => cell.ranNow), [true, false]);
  });

  it('records multimodal10 cells with their NLL', async () => {
    const root = temporaryFolder();
    const resolved = resolveDocument(
      {
        name: 'multimodal-tiny',
        description: 'runner test: tiny multimodal10 cell',
        grid: { datasets: ['multimodal10'], architectures: ['linear-lower'], objectives: ['ml'], batchSizes: [32] },
        overrides: { blocks: 2, evaluationPoints: 50, trainPoints: 200, testPoints: 100 },
        measure: { kind: 'train', budget: { iterations: 3 }, evaluation: { every: { iterations: 2 } } },
      },
      '',
    );
    const tensorsBefore = tf.memory().numTensors;
    const summary = await runScenario(resolved, options(root, backend, defaultToyTrainers(backend.name)));
    assert.equal(tf.memory().numTensors, tensorsBefore, 'the multimodal10 cell leaked tensors');
    const [{ record }] = summary.cells;
    assert.equal(record.cellId, 'multimodal10/linear-lower/ml/D10/B32/seed0');
    assert.deepEqual(record.outcome, { status: 'completed' });
    assert.equal(record.losses.length, 3);
    assert.equal(record.timing?.samplesMs.length, 3);
    assert.deepEqual(record.evaluations.map((point) => [point.step, point.result.split, point.result.images]), [
      [0, 'test', 50],
      [2, 'test', 50],
      [3, 'test', 50],
    ]);
    assert.ok(Number.isFinite(record.finalNll?.nllNats), `final NLL ${record.finalNll?.nllNats}`);
    assert.equal(record.metrics, undefined);
    assert.equal(record.artifacts, undefined);
    assert.deepEqual(readdirSync(summary.folder).sort(), ['multimodal10_linear-lower_ml_D10_B32_seed0.json', 'scenario.json']);
  });
});

describe('toy cells with scripted loops', () => {
  it('divergence stops the loop', async () => {
    const root = temporaryFolder();
    const resolved = tinyToyScenario((document) => {
      document.grid.objectives = ['dsm'];
      document.measure = { kind: 'train', budget: { iterations: 6 } };
      document.divergence = { maxConsecutiveNonFinite: 1 };
    });
    const trainers = scriptedTrainers(() => [3, Number.NaN, 2, Number.NaN, Number.POSITIVE_INFINITY, Number.NaN]);
    const summary = await runScenario(resolved, options(root, null, trainers));
    const [{ record }] = summary.cells;
    // The second run of non-finite updates (iterations 4 and 5) exceeds the limit of 1.
    assert.deepEqual(record.outcome, { status: 'diverged', step: 4, firstNonFiniteValue: 'NaN' });
    assert.equal(record.losses.length, 5, 'the loop must stop at the iteration that exceeded the limit');
    assert.equal(record.nonFiniteLosses, 3);
    assert.equal(record.toy?.skippedSteps, 3);
    assert.equal(record.metrics, undefined);
    assert.equal(existsSync(join(summary.folder, densityFileName(record.cellId))), false);
  });

  it('failing loop records the error and reruns', async () => {
    const root = temporaryFolder();
    const resolved = tinyToyScenario((document) => {
      document.grid.objectives = ['fdssm'];
    });
    const failed = await runScenario(resolved, options(root, null, scriptedTrainers(() => [], 'toy loop: injected failure')));
    assert.deepEqual(failed.cells[0].record.outcome, { status: 'errored', message: 'toy loop: injected failure' });
    assert.equal(failed.erroredNow, 1);

    const rerun = await runScenario(resolved, options(root, null, scriptedTrainers(() => [1, 2, 3, 4])));
    const { record, ranNow } = rerun.cells[0];
    assert.equal(ranNow, true, 'an errored toy cell must run again');
    assert.deepEqual(record.outcome, { status: 'completed' });
    assert.deepEqual(record.metrics, { kl: 0.5, klReference: 4.5, fisher: 1.25 });
    assert.deepEqual(record.timing?.samplesMs, [11, 12, 13]);
  });

  it('shards split toy cells', async () => {
    const resolved = tinyToyScenario((document) => {
      document.grid.objectives = ['ml', 'sml', 'dsm'];
      document.grid.seeds = [0, 1];
    });
    const trainers = scriptedTrainers(() => [1, 2]);
    const roots = [temporaryFolder(), temporaryFolder()];
    const shards = [];
    for (const [index, root] of roots.entries()) {
      shards.push(await runScenario(resolved, options(root, null, trainers, { shard: { index: index + 1, count: 2 } })));
    }
    const ids = shards.flatMap((summary) => summary.cells.map((cell) => cell.cellId));
    assert.equal(ids.length, 6);
    assert.deepEqual([...ids].sort(), resolved.cells.map((cell) => cell.cellId));

    // Merging copies each heat-map with its record.
    const merged = temporaryFolder();
    const result = mergeResults(roots, merged);
    assert.equal(result.scenarios[0].records, 6);
    assert.deepEqual(result.scenarios[0].missingArtifacts, []);
    for (const id of ids) assert.ok(existsSync(join(merged, 'toys-tiny', densityFileName(id))), `${id}: heat-map not merged`);
  });

  it('merge reports a missing heat-map', async () => {
    const root = temporaryFolder();
    const resolved = tinyToyScenario((document) => {
      document.grid.objectives = ['ml'];
    });
    const summary = await runScenario(resolved, options(root, null, scriptedTrainers(() => [1, 2])));
    const cellId = summary.cells[0].cellId;
    unlinkSync(join(summary.folder, densityFileName(cellId)));
    const result = mergeResults([root], temporaryFolder());
    assert.deepEqual(result.scenarios[0].missingArtifacts, [{ cellId, path: densityFileName(cellId) }]);
  });
});

describe('toy records on disk', () => {
  it('non-finite metrics read back as NaN', () => {
    const record = {
      schemaVersion: 1,
      scenario: { name: 'x', hash: 'h', file: '' },
      cellId: 'sine/coupling2d/ml/D2/B32/seed0',
      outcome: { status: 'diverged', step: 4, firstNonFiniteValue: 'log-density not finite at 3 evaluation points' },
      losses: [1, null],
      metrics: { kl: null, klReference: null, fisher: 0.5 },
    };
    const parsed = parseRecord(JSON.stringify(record));
    assert.ok(typeof parsed !== 'string', String(parsed));
    assert.ok(Number.isNaN(parsed.metrics?.kl));
    assert.ok(Number.isNaN(parsed.metrics?.klReference));
    assert.equal(parsed.metrics?.fisher, 0.5);
  });
});
