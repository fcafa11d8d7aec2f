import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

import { preprocess } from '../../src/data/preprocess.js';
import { evaluateNll } from '../../src/evaluation/nll.js';
import { CnnFlow } from '../../src/models/cnn-flow.js';
import { getObjective } from '../../src/objectives/index.js';
import type { ObjectiveOptions } from '../../src/objectives/objective.js';
import { RandomStream } from '../../src/random/stream.js';
import { resolveTrainingConfig, type TrainingConfigInput } from '../../src/train/config.js';
import { createTrainingSession, type EbflowTrainingSession } from '../../src/train/session-impl.js';

function synthetic(change: Partial<TrainingConfigInput> = {}) {
  return resolveTrainingConfig({ dataset: 'synthetic', architecture: 'fc', objective: 'dsm', imageShape: [4, 4, 3], batchSize: 10, ...change });
}

/**
 * Returns the loss the session's next step must report, computed outside the session with
 * `options` from a copy of its stream: the batch, the preprocessing, `prepare` and `loss`.
 */
function expectedNextLoss(session: EbflowTrainingSession, options: ObjectiveOptions): number {
  const copy = new RandomStream(0);
  copy.setState(session.getState().random);
  const { batchSize, imageShape, objective: name } = session.config;
  const pixels = session.dataset.batch('train', Array.from({ length: batchSize }, (_, i) => i));
  const objective = getObjective(name);
  return tf.tidy(() => {
    const { x } = preprocess(tf.tensor4d(Float32Array.from(pixels), [batchSize, ...imageShape]), copy, session.config.logitScale);
    const input = tf.reshape(x, [batchSize, ...session.model.sampleShape]);
    const prepared = objective.prepare(session.model, input, copy, options);
    return objective.loss(session.model, input, prepared, options).dataSync()[0];
  });
}

function optionsOf(session: EbflowTrainingSession, change: Partial<ObjectiveOptions>): ObjectiveOptions {
  const config = session.config;
  return {
    sigma: config.sigma,
    epsilon: config.epsilon,
    slices: config.slices,
    energyWeight: config.energyWeight,
    channels: config.imageShape[2],
    explicitDerivatives: config.explicitDerivatives,
    ...change,
  };
}

describe('training options', () => {
  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('wasm');
    await tf.ready();
  });

  it('evaluates raw weights without EMA', async () => {
    const session = await createTrainingSession(synthetic({ emaDecay: null, learningRate: 1e-2, seed: 3 }));
    for (let i = 0; i < 3; i++) await session.step();
    const copy = new RandomStream(0);
    copy.setState(session.getState().random);
    const expected = await evaluateNll({ model: session.model, dataset: session.dataset, split: 'test', maxImages: 30, random: copy, logitScale: 0.5 });
    const result = await session.evaluate('test', 30);
    assert.equal(result.nllNats, expected.nllNats);
    assert.equal(session.getState().ema, null);
    session.dispose();
  });

  it('passes λ to the objective', async () => {
    for (const energyWeight of [0, 0.25]) {
      const session = await createTrainingSession(synthetic({ energyWeight, seed: 4 }));
      const expected = expectedNextLoss(session, optionsOf(session, { energyWeight }));
      const other = expectedNextLoss(session, optionsOf(session, { energyWeight: energyWeight === 0 ? 0.25 : 0 }));
      const { loss } = await session.step();
      assert.equal(loss, expected, `λ = ${energyWeight}`);
      assert.notEqual(loss, other, `λ = ${energyWeight} differs from the other value`);
      session.dispose();
    }
  });

  it('passes SSM slices to the objective', async () => {
    const session = await createTrainingSession(synthetic({ objective: 'ssm', slices: 3, seed: 5 }));
    const expected = expectedNextLoss(session, optionsOf(session, { slices: 3 }));
    const single = expectedNextLoss(session, optionsOf(session, { slices: 1 }));
    const { loss } = await session.step();
    assert.equal(loss, expected);
    assert.notEqual(loss, single);
    session.dispose();
  });

  it('defaults spectral norm as the paper', () => {
    const cases: [TrainingConfigInput, boolean][] = [
      [{ dataset: 'cifar10', architecture: 'cnn', objective: 'ml' }, true],
      [{ dataset: 'cifar10', architecture: 'cnn', objective: 'ssm' }, true],
      [{ dataset: 'cifar10', architecture: 'cnn', objective: 'dsm' }, true],
      [{ dataset: 'cifar10', architecture: 'cnn', objective: 'sml' }, false],
      [{ dataset: 'cifar10', architecture: 'cnn', objective: 'fdssm' }, false],
      [{ dataset: 'mnist', architecture: 'cnn', objective: 'ml' }, false],
      [{ dataset: 'cifar10', architecture: 'fc', objective: 'ml' }, false],
      [{ dataset: 'mnist', architecture: 'cnn', objective: 'ssm', spectralNorm: true }, true],
      [{ dataset: 'cifar10', architecture: 'cnn', objective: 'ml', spectralNorm: false }, false],
    ];
    for (const [input, expected] of cases) {
      assert.equal(resolveTrainingConfig(input).spectralNorm, expected, JSON.stringify(input));
    }
  });

  it('freezes spectral norm during evaluation', async () => {
    const session = await createTrainingSession(synthetic({ architecture: 'cnn', imageShape: [8, 8, 3], objective: 'dsm', seed: 6 }));
    assert.equal(session.config.spectralNorm, true);
    const model = session.model as CnnFlow;
    assert.ok(model instanceof CnnFlow);
    assert.equal(model.buffers.length, 12);

    const initial = session.getState().buffers;
    await session.step();
    const trained = session.getState().buffers;
    assert.notDeepEqual(trained, initial, 'a training step runs a power iteration');

    let modeInside: boolean[] = [];
    await session.withEvaluationWeights(() => {
      modeInside = model.convLayers.map((conv) => conv.training);
    });
    assert.ok(modeInside.every((training) => !training), 'evaluation mode inside');
    assert.ok(model.convLayers.every((conv) => conv.training), 'training mode restored');

    // An energy pass in evaluation mode leaves u and v alone.
    await session.withEvaluationWeights((evaluated) => tf.dispose(evaluated.energy(tf.zeros([2, 8, 8, 3]))));
    assert.deepEqual(session.getState().buffers, trained);
    session.dispose();
  });
});
