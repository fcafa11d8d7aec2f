import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

import { preprocess } from '../../src/data/preprocess.js';
import type { EnergyFlow } from '../../src/models/energy-flow.js';
import { GlowFlow } from '../../src/models/glow.js';
import { getObjective } from '../../src/objectives/index.js';
import type { ObjectiveName, ObjectiveOptions } from '../../src/objectives/objective.js';
import { RandomStream } from '../../src/random/stream.js';
import { resolveTrainingConfig, type TrainingConfigInput } from '../../src/train/config.js';
import { accumulateGradients } from '../../src/train/microbatch.js';
import {
  createModel,
  createTrainingSession,
  loadCheckpointModel,
  loadDataset,
  resumeTrainingSession,
  type EbflowTrainingSession,
} from '../../src/train/session-impl.js';
import type { TrainingConfig } from '../../src/train/session.js';

/** A Glow of 2 blocks × 2 steps, width 8, on 8×8×1 synthetic images: about 3,000 parameters. */
function tinyGlow(change: Partial<TrainingConfigInput> = {}): TrainingConfig {
  return resolveTrainingConfig({
    dataset: 'synthetic',
    architecture: 'glow',
    objective: 'dsm',
    imageShape: [8, 8, 1],
    glowBlockSize: 2,
    glowWidth: 8,
    batchSize: 4,
    ...change,
  });
}

function glowOf(session: EbflowTrainingSession): GlowFlow {
  assert.ok(session.model instanceof GlowFlow, 'the session model is a GlowFlow');
  return session.model;
}

/** Largest |a − b| over every element of every pair, and the largest |b|. */
function maxDifference(actual: Float32Array[], expected: Float32Array[]): { difference: number; scale: number } {
  let difference = 0;
  let scale = 0;
  expected.forEach((values, i) => {
    values.forEach((value, j) => {
      difference = Math.max(difference, Math.abs(actual[i][j] - value));
      scale = Math.max(scale, Math.abs(value));
    });
  });
  return { difference, scale };
}

/**
 * Compares the full-batch gradient of `objective` on `model` with the microbatched one, on a
 * preprocessed batch of `batch` random images with its prepared noise or directions.
 */
async function compareMicrobatched(
  model: EnergyFlow,
  objectiveName: ObjectiveName,
  options: ObjectiveOptions,
  batch: number,
  microbatchSize: number,
): Promise<{ lossFull: number; lossMicro: number; difference: number; scale: number; leaked: number }> {
  const tensorsBefore = tf.memory().numTensors;
  const random = new RandomStream(11);
  const objective = getObjective(objectiveName);
  const pixels = tf.tensor(Float32Array.from(random.uniformArray(batch * model.sampleShape.reduce((a, b) => a * b, 1)), (u) => Math.floor(u * 256)), [
    batch,
    ...model.sampleShape,
  ]);
  const { x, logDet } = preprocess(pixels, random, 1.0);
  logDet.dispose();
  const prepared = tf.tidy(() => objective.prepare(model, x, random, options));
  const lossOf = (rows: tf.Tensor, preparedRows: typeof prepared): tf.Scalar => objective.loss(model, rows, preparedRows, options);

  const full = tf.variableGrads(() => lossOf(x, prepared), model.variables);
  const lossFull = (await full.value.data())[0];
  const fullGradients = model.variables.map((v) => (full.grads[v.name] === undefined ? new Float32Array(v.size) : (full.grads[v.name].dataSync() as Float32Array)));
  const micro = await accumulateGradients(lossOf, model.variables, x, prepared, microbatchSize);
  const microGradients = micro.gradients.map((g) => g.dataSync() as Float32Array);
  const { difference, scale } = maxDifference(microGradients, fullGradients);

  tf.dispose([pixels, x, full.value, ...Object.values(full.grads), ...Object.values(prepared), ...micro.gradients]);
  return { lossFull, lossMicro: micro.loss, difference, scale, leaked: tf.memory().numTensors - tensorsBefore };
}

describe('glow training session', () => {
  let folder = '';

  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('wasm');
    await tf.ready();
    folder = await mkdtemp(join(tmpdir(), 'ebflow-glow-'));
  });

  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('config fills the MNIST Glow defaults', () => {
    const dsm = resolveTrainingConfig({ dataset: 'mnist', architecture: 'glow', objective: 'dsm' });
    assert.equal(dsm.optimizer, 'adam');
    assert.equal(dsm.learningRate, 1e-5);
    assert.equal(dsm.batchSize, 100);
    assert.equal(dsm.decay, 1.0);
    assert.equal(dsm.weightDecay, 0);
    assert.equal(dsm.gradientClip, 500);
    assert.equal(dsm.energyWeight, 0.1);
    assert.equal(dsm.logitScale, 1.0);
    assert.equal(dsm.sigma, 0.1);
    assert.equal(dsm.slices, 1);
    assert.equal(dsm.emaDecay, 0.999);
    assert.equal(dsm.microbatchSize, 8);
    assert.equal(dsm.glowBlockSize, 16);
    assert.equal(dsm.glowWidth, 512);
    assert.equal(dsm.spectralNorm, false);
    const ssm = resolveTrainingConfig({ dataset: 'mnist', architecture: 'glow', objective: 'ssm' });
    assert.equal(ssm.microbatchSize, 3);
    assert.equal(tinyGlow({ batchSize: 2 }).microbatchSize, 2, 'the default microbatch never exceeds the batch');
  });

  it('config keeps fc and cnn on RMSprop without microbatches', () => {
    const fc = resolveTrainingConfig({ dataset: 'mnist', architecture: 'fc', objective: 'ssm' });
    assert.equal(fc.optimizer, 'rmsprop');
    assert.equal(fc.microbatchSize, fc.batchSize);
    assert.equal(fc.glowBlockSize, undefined);
    assert.equal(fc.glowWidth, undefined);
    const adam = resolveTrainingConfig({ dataset: 'mnist', architecture: 'cnn', objective: 'dsm', optimizer: 'adam', microbatchSize: 25 });
    assert.equal(adam.optimizer, 'adam');
    assert.equal(adam.microbatchSize, 25);
  });

  it('config rejects unsupported glow runs', () => {
    const base = { dataset: 'mnist', architecture: 'glow', objective: 'dsm' } as const;
    assert.throws(() => resolveTrainingConfig({ ...base, dataset: 'cifar10' }), /architecture "glow" has the settings of the MNIST Glow runs only/);
    assert.throws(() => resolveTrainingConfig({ ...base, objective: 'sml' }), /trains with objective "ml", "ssm", "dsm", received "sml"/);
    assert.throws(() => resolveTrainingConfig({ ...base, objective: 'fdssm' }), /received "fdssm"/);
    assert.throws(() => resolveTrainingConfig({ ...base, objective: 'ssm', matchAfterPreprocessing: false }), /matchAfterPreprocessing must be true/);
    assert.throws(() => resolveTrainingConfig({ ...base, workers: 2 }), /workers 2 cannot be combined with microbatchSize 8/);
    assert.throws(() => resolveTrainingConfig({ ...base, workers: 2, microbatchSize: 100 }), /computes its gradient on the calling thread only/);
    assert.throws(() => resolveTrainingConfig({ ...base, glowWidth: 0 }), /glowWidth must be an integer ≥ 1, received 0/);
    assert.throws(() => resolveTrainingConfig({ ...base, glowBlockSize: 2.5 }), /glowBlockSize must be an integer ≥ 1, received 2.5/);
    assert.throws(
      () => resolveTrainingConfig({ dataset: 'synthetic', architecture: 'glow', objective: 'dsm', imageShape: [6, 6, 1] }),
      /H and W must be multiples of 4/,
    );
  });

  it('config rejects bad optimizer and microbatch options', () => {
    const base = { dataset: 'mnist', architecture: 'fc', objective: 'ssm' } as const;
    assert.throws(() => resolveTrainingConfig({ ...base, glowWidth: 8 }), /glowWidth configures the Glow model, but architecture is "fc"/);
    assert.throws(() => resolveTrainingConfig({ ...base, optimizer: 'sgd' as never }), /unknown optimizer "sgd"; use "rmsprop" or "adam"/);
    assert.throws(() => resolveTrainingConfig({ ...base, microbatchSize: 101 }), /microbatchSize 101 exceeds batchSize 100/);
    assert.throws(() => resolveTrainingConfig({ ...base, microbatchSize: 0 }), /microbatchSize must be an integer ≥ 1, received 0/);
    assert.throws(() => resolveTrainingConfig({ ...base, workers: 2, microbatchSize: 50 }), /workers 2 cannot be combined with microbatchSize 50/);
  });

  it('session initialises ActNorm on 50 validation images', async () => {
    const config = tinyGlow();
    const session = await createTrainingSession(config);
    try {
      const glow = glowOf(session);
      assert.ok(glow.initialized, 'every ActNorm is initialised before the first step');

      // Rebuild the same draws by hand: model, synthetic data, then the preprocessing noise.
      const random = new RandomStream(config.seed);
      const reference = createModel(config, random) as GlowFlow;
      const dataset = await loadDataset(config, random);
      const pixels = tf.tensor4d(Float32Array.from(dataset.batch('validation', Array.from({ length: 50 }, (_, i) => i))), [50, 8, 8, 1]);
      const { x, logDet } = preprocess(pixels, random, config.logitScale);
      reference.initialize(x);
      tf.dispose([pixels, x, logDet]);
      assert.deepEqual(glow.getState(), reference.getState());
      assert.ok(glow.getState().actNorms[0].logScale.some((s) => s !== 0), 'the first ActNorm has a non-zero log-scale');
      reference.dispose();
    } finally {
      session.dispose();
    }
  });

  for (const objective of ['dsm', 'ssm', 'ml'] as const) {
    it(`tiny glow trains ${objective} with finite losses`, async () => {
      const session = await createTrainingSession(tinyGlow({ objective, microbatchSize: 3 }));
      try {
        const before = session.model.variables.map((v) => Float32Array.from(v.dataSync() as Float32Array));
        for (let i = 0; i < 3; i++) {
          const result = await session.step();
          assert.ok(result.finite, `step ${i + 1} is finite (loss ${result.loss}, gradient norm ${result.gradientNorm})`);
          assert.ok(Number.isFinite(result.loss), `step ${i + 1} loss ${result.loss}`);
          assert.equal(result.step, i + 1);
        }
        const after = session.model.variables.map((v) => v.dataSync() as Float32Array);
        const { difference } = maxDifference(after, before);
        assert.ok(difference > 0, 'the parameters moved');
        const nll = await session.evaluate('validation', 8);
        assert.ok(Number.isFinite(nll.nllNats), `validation NLL ${nll.nllNats}`);
      } finally {
        session.dispose();
      }
    });
  }

  it('glow session does not leak tensors', async () => {
    const tensorsBefore = tf.memory().numTensors;
    const session = await createTrainingSession(tinyGlow({ objective: 'ssm', microbatchSize: 3 }));
    await session.step();
    await session.evaluate('validation', 4);
    session.dispose();
    assert.equal(tf.memory().numTensors, tensorsBefore);
  });

  it('microbatched glow gradient equals the full one', async () => {
    const config = tinyGlow();
    const model = createModel(config, new RandomStream(3)) as GlowFlow;
    try {
      const base: ObjectiveOptions = { sigma: 0.1, epsilon: 0.1, slices: 1, energyWeight: 0.1, channels: 1, explicitDerivatives: true };
      const cases: [ObjectiveName, ObjectiveOptions][] = [
        ['dsm', base],
        ['ssm', base],
        ['ssm', { ...base, slices: 2 }],
        ['ml', base],
      ];
      for (const [objective, options] of cases) {
        const result = await compareMicrobatched(model, objective, options, 6, 4);
        const label = `${objective} with ${options.slices} slice(s)`;
        assert.ok(Math.abs(result.lossMicro - result.lossFull) <= 1e-5 * Math.max(1, Math.abs(result.lossFull)), `${label}: loss ${result.lossMicro} vs ${result.lossFull}`);
        assert.ok(result.scale > 0, `${label}: the gradient is not zero`);
        assert.ok(result.difference <= 1e-4 * result.scale, `${label}: gradients differ by ${result.difference} at scale ${result.scale}`);
        assert.equal(result.leaked, 0, `${label}: tensors left behind`);
      }
    } finally {
      model.dispose();
    }
  });

  it('microbatched fc gradient equals the full one', async () => {
    const config = resolveTrainingConfig({ dataset: 'synthetic', architecture: 'fc', objective: 'ssm', imageShape: [4, 4, 1], batchSize: 10 });
    const model = createModel(config, new RandomStream(5));
    try {
      const options: ObjectiveOptions = { sigma: 1, epsilon: 1, slices: 1, energyWeight: 0, channels: 1, explicitDerivatives: true };
      for (const objective of ['ssm', 'dsm', 'ml'] as const) {
        const result = await compareMicrobatched(model, objective, options, 10, 3);
        assert.ok(Math.abs(result.lossMicro - result.lossFull) <= 1e-5 * Math.max(1, Math.abs(result.lossFull)), `${objective}: loss ${result.lossMicro} vs ${result.lossFull}`);
        assert.ok(result.difference <= 1e-4 * result.scale, `${objective}: gradients differ by ${result.difference} at scale ${result.scale}`);
        assert.equal(result.leaked, 0, `${objective}: tensors left behind`);
      }
    } finally {
      model.variables.forEach((v) => v.dispose());
    }
  });

  it('microbatched session step equals the full step', async () => {
    const full = await createTrainingSession(tinyGlow({ objective: 'ssm', batchSize: 6, microbatchSize: 6 }));
    const micro = await createTrainingSession(tinyGlow({ objective: 'ssm', batchSize: 6, microbatchSize: 4 }));
    try {
      for (let i = 0; i < 2; i++) {
        const a = await full.step();
        const b = await micro.step();
        assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * Math.max(1, Math.abs(a.loss)), `step ${i + 1}: loss ${b.loss} vs ${a.loss}`);
        assert.ok(Math.abs(a.gradientNorm - b.gradientNorm) <= 1e-4 * a.gradientNorm, `step ${i + 1}: gradient norm ${b.gradientNorm} vs ${a.gradientNorm}`);
      }
      const { difference, scale } = maxDifference(
        micro.model.variables.map((v) => v.dataSync() as Float32Array),
        full.model.variables.map((v) => v.dataSync() as Float32Array),
      );
      assert.ok(difference <= 1e-5 * scale, `parameters differ by ${difference} at scale ${scale}`);
    } finally {
      full.dispose();
      micro.dispose();
    }
  });

  it('checkpoint round-trip restores ActNorm and Adam', async () => {
    const path = join(folder, 'glow.ckpt');
    const session = await createTrainingSession(tinyGlow({ objective: 'dsm' }));
    let resumed: EbflowTrainingSession | null = null;
    try {
      await session.step();
      await session.step();
      await session.saveCheckpoint(path);
      const saved = session.getState();

      resumed = await resumeTrainingSession(path);
      assert.deepEqual(glowOf(resumed).getState(), glowOf(session).getState(), 'ActNorm t, s and flags');
      const restored = resumed.getState();
      assert.equal(restored.optimizer.updates, 2);
      assert.deepEqual(restored.optimizer, saved.optimizer, 'Adam moments');
      assert.deepEqual(restored.parameters, saved.parameters);

      const next = await session.step();
      const nextResumed = await resumed.step();
      assert.equal(nextResumed.loss, next.loss, 'the resumed run continues exactly');
      assert.deepEqual(
        resumed.model.variables.map((v) => v.dataSync()),
        session.model.variables.map((v) => v.dataSync()),
      );
    } finally {
      session.dispose();
      resumed?.dispose();
    }
  });

  it('checkpoint model keeps ActNorm values', async () => {
    const path = join(folder, 'glow-model.ckpt');
    const session = await createTrainingSession(tinyGlow({ objective: 'ssm', emaDecay: null }));
    try {
      await session.step();
      await session.saveCheckpoint(path);
      const loaded = await loadCheckpointModel(path, { weights: 'raw' });
      try {
        assert.ok(loaded.model instanceof GlowFlow);
        assert.deepEqual(loaded.model.getState(), glowOf(session).getState());
        const x = tf.randomNormal([3, 8, 8, 1], 0, 1, 'float32', 4);
        const expected = session.model.logProb(x);
        const actual = loaded.model.logProb(x);
        assert.deepEqual(actual.dataSync(), expected.dataSync(), 'log p(x) of the loaded model');
        tf.dispose([x, expected, actual]);
      } finally {
        loaded.dispose();
      }
    } finally {
      session.dispose();
    }
  });

  it('checkpoint restore replaces different ActNorm values', async () => {
    const path = join(folder, 'glow-other.ckpt');
    const source = await createTrainingSession(tinyGlow({ seed: 1 }));
    const target = await createTrainingSession(tinyGlow({ seed: 1 }));
    try {
      await source.step();
      // Damage the target's ActNorm values, then restore: the checkpoint must bring them back.
      const glow = glowOf(target);
      const state = glow.getState();
      state.actNorms.forEach((actNorm) => actNorm.location.fill(7));
      glow.setState(state);
      assert.notDeepEqual(glow.getState(), glowOf(source).getState());
      await source.saveCheckpoint(path);
      const { readCheckpoint } = await import('../../src/train/checkpoint.js');
      target.restoreCheckpoint(await readCheckpoint(path), path);
      assert.deepEqual(glow.getState(), glowOf(source).getState());
    } finally {
      source.dispose();
      target.dispose();
    }
  });
});
