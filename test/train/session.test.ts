import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';

import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

import { loadCifar10 } from '../../src/data/cifar10.js';
import { resolveTrainingConfig, type TrainingConfigInput } from '../../src/train/config.js';
import { createTrainingSession, type EbflowTrainingSession } from '../../src/train/session-impl.js';
import { writeFixtureBatches } from '../data/cifar10-fixture.js';

/** Runs `count` steps and returns their losses. */
async function losses(session: EbflowTrainingSession, count: number): Promise<number[]> {
  const values: number[] = [];
  for (let i = 0; i < count; i++) values.push((await session.step()).loss);
  return values;
}

function syntheticConfig(change: Partial<TrainingConfigInput> = {}) {
  return resolveTrainingConfig({
    dataset: 'synthetic',
    architecture: 'fc',
    objective: 'dsm',
    imageShape: [6, 6, 1],
    batchSize: 100,
    ...change,
  });
}

describe('training session', () => {
  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('wasm');
    await tf.ready();
  });

  it('repeats losses with the same seed', async () => {
    for (const objective of ['dsm', 'ssm', 'fdssm', 'ml', 'sml'] as const) {
      const first = await createTrainingSession(syntheticConfig({ objective, seed: 4 }));
      const second = await createTrainingSession(syntheticConfig({ objective, seed: 4 }));
      const other = await createTrainingSession(syntheticConfig({ objective, seed: 5 }));
      const a = await losses(first, 4);
      assert.deepEqual(await losses(second, 4), a, `${objective} with the same seed`);
      assert.notDeepEqual(await losses(other, 4), a, `${objective} with another seed`);
      assert.ok(a.every(Number.isFinite), `${objective} losses ${a}`);
      [first, second, other].forEach((s) => s.dispose());
    }
  });

  it('reports steps, phases and the schedule', async () => {
    // 1,000 synthetic training images in batches of 100: epoch 2 starts at iteration 10.
    const session = await createTrainingSession(syntheticConfig({ learningRate: 1e-3, decay: 0.5, milestones: 3 }));
    assert.equal(session.iterationsPerEpoch, 10);
    const results = [];
    for (let i = 0; i < 11; i++) results.push(await session.step());
    assert.deepEqual(
      results.map((r) => r.step),
      Array.from({ length: 11 }, (_, i) => i + 1),
    );
    assert.equal(results[9].learningRate, 1e-3);
    assert.equal(results[10].learningRate, 5e-4);
    for (const phase of ['preprocess', 'prepare', 'forwardBackward', 'update'] as const) {
      assert.ok((results[0].phases[phase] ?? -1) >= 0, `phase ${phase} timed`);
    }
    assert.ok(results.every((r) => r.finite && Number.isFinite(r.gradientNorm)));
    session.dispose();
  });

  it('leaks no tensors across steps and evaluations', async () => {
    for (const objective of ['dsm', 'ssm', 'fdssm', 'ml', 'sml'] as const) {
      const session = await createTrainingSession(syntheticConfig({ objective, gradientClip: 1 }));
      await session.step();
      const before = tf.memory().numTensors;
      await session.step();
      await session.evaluate('validation', 50);
      await session.step();
      assert.equal(tf.memory().numTensors, before, `${objective}: tensors after steps`);
      session.dispose();
    }
  });

  it('frees every tensor on dispose', async () => {
    const before = tf.memory().numTensors;
    const session = await createTrainingSession(syntheticConfig());
    await session.step();
    session.dispose();
    assert.equal(tf.memory().numTensors, before);
    await assert.rejects(session.step(), /step\(\) called after dispose\(\)/);
  });

  it('skips non-finite updates and keeps the values', async () => {
    const session = await createTrainingSession(syntheticConfig());
    await session.step();
    const state = session.getState();
    state.parameters[1][0] = Number.NaN;
    session.setState(state);

    const result = await session.step();
    assert.equal(result.finite, false);
    assert.ok(Number.isNaN(result.loss), `loss ${result.loss}`);
    assert.equal(result.step, 1, 'no optimiser update counted');
    assert.equal(session.nonFiniteSteps, 1);
    assert.equal(session.iteration, 2);
    const after = session.getState();
    assert.ok(Number.isNaN(after.parameters[1][0]), 'the NaN parameter is not zeroed');
    assert.deepEqual(after.parameters[0], state.parameters[0], 'no parameter moved');
    assert.deepEqual(after.optimizer.squareAverages, state.optimizer.squareAverages, 'no optimiser state moved');
    session.dispose();
  });

  it('resumes exactly from a saved state', async () => {
    const config = syntheticConfig({ objective: 'fdssm', seed: 9 });
    const original = await createTrainingSession(config);
    await losses(original, 3);
    const state = original.getState();
    const expected = await losses(original, 3);

    const resumed = await createTrainingSession(config);
    resumed.setState(state);
    assert.deepEqual(await losses(resumed, 3), expected);
    original.dispose();
    resumed.dispose();
  });

  it('evaluates with the EMA weights', async () => {
    const withEma = await createTrainingSession(syntheticConfig({ learningRate: 1e-2, seed: 2 }));
    const withoutEma = await createTrainingSession(syntheticConfig({ learningRate: 1e-2, seed: 2, emaDecay: null }));
    await losses(withEma, 3);
    await losses(withoutEma, 3);
    // Same weights and the same stream position, so only the evaluated weights differ.
    const ema = await withEma.evaluate('test', 100);
    const raw = await withoutEma.evaluate('test', 100);
    assert.notEqual(ema.nllNats, raw.nllNats);
    assert.deepEqual(withEma.getState().parameters, withoutEma.getState().parameters, 'evaluation restores the live weights');
    withEma.dispose();
    withoutEma.dispose();
  });

  it('rejects a backend other than the running one', async () => {
    await assert.rejects(createTrainingSession(syntheticConfig(), { backend: 'cpu' }), /selected backend "cpu" but tfjs runs on "wasm"/);
  });

  it('shuffles and augments CIFAR-10', async () => {
    // Eight records per file: 32 training images, so one epoch is four batches of 8.
    const folder = await mkdtemp(join(tmpdir(), 'ebflow-session-cifar-'));
    try {
      await writeFixtureBatches(folder, 8);
      const dataset = await loadCifar10({ directory: folder, recordsPerFile: 8 });
      const config = resolveTrainingConfig({ dataset: 'cifar10', architecture: 'cnn', objective: 'dsm', batchSize: 8, seed: 3 });
      const first = await createTrainingSession(config, { dataset });
      const second = await createTrainingSession(config, { dataset });
      const a = await losses(first, 2);
      assert.deepEqual(await losses(second, 2), a);
      assert.ok(a.every(Number.isFinite), `losses ${a}`);
      assert.equal(first.iterationsPerEpoch, 4);

      const order = first.getState().epochOrder;
      assert.ok(order !== null, 'CIFAR-10 has a data order');
      assert.deepEqual([...order].sort((x, y) => x - y), Array.from({ length: 32 }, (_, i) => i));
      assert.notDeepEqual([...order], Array.from({ length: 32 }, (_, i) => i));
      first.dispose();
      second.dispose();
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('lowers the MNIST test NLL', async () => {
    // 100 FDSSM steps with the reference's MNIST FC settings. The initial model (W = −I) is far
    // from the data, so the test NLL of the EMA weights falls to a fraction of its initial value.
    const session = await createTrainingSession(
      resolveTrainingConfig({ dataset: 'mnist', architecture: 'fc', objective: 'fdssm', seed: 0 }),
    );
    const testImages = 200;
    const initial = await session.evaluate('test', testImages);
    const trainingLosses = await losses(session, 100);
    const trained = await session.evaluate('test', testImages);
    const summary = `test NLL ${initial.nllNats.toFixed(1)} → ${trained.nllNats.toFixed(1)} nats (${initial.bitsPerDim.toFixed(3)} → ${trained.bitsPerDim.toFixed(3)} bits/dim)`;
    assert.ok(trainingLosses.every(Number.isFinite), 'finite losses');
    assert.equal(initial.nonFinite, 0);
    assert.equal(trained.nonFinite, 0);
    assert.equal(trained.images, testImages);
    assert.ok(trained.nllNats < initial.nllNats / 4, summary);
    assert.equal(session.getState().epochOrder, null, 'MNIST keeps file order');
    console.log(`MNIST FC FDSSM, 100 steps: ${summary}`);
    session.dispose();
  });
});
