import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { useBackend } from '../../src/backend/select.js';
import { RandomStream } from '../../src/random/stream.js';
import { Adam } from '../../src/train/adam.js';
import { createCouplingFlow2d } from '../../src/toys/coupling-flow.js';
import { BatchSampler, generatePoints } from '../../src/toys/datasets.js';
import { DEFAULT_TOY_OBJECTIVE_SETTINGS, getToyObjective, type ToyObjective } from '../../src/toys/objectives.js';
import { defaultToy2dConfig, trainToy2d } from '../../src/toys/train-2d.js';
import { runToyLoop } from '../../src/toys/training-loop.js';
import type { ToyFlow } from '../../src/toys/toy-flow.js';

// Training runs use the default backend only: the cpu backend is about 20 times slower here.
before(async () => {
  await useBackend('wasm');
});

function snapshot(model: ToyFlow): Float32Array[] {
  return model.variables.map((v) => Float32Array.from(v.dataSync() as Float32Array));
}

describe('Adam', () => {
  it('follows PyTorch\'s update for three steps', () => {
    const variable = tf.variable(tf.tensor1d([0.5, -1]));
    const adam = new Adam([variable], { learningRate: 0.1 });
    const gradients = [[0.3, -2], [-0.1, 0.5], [1, 1e-4]];
    const theta = [0.5, -1];
    const m = [0, 0];
    const v = [0, 0];
    gradients.forEach((g, step) => {
      const t = step + 1;
      for (let k = 0; k < 2; k++) {
        m[k] = 0.9 * m[k] + 0.1 * g[k];
        v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2;
        theta[k] -= (0.1 / (1 - 0.9 ** t)) * (m[k] / (Math.sqrt(v[k]) / Math.sqrt(1 - 0.999 ** t) + 1e-8));
      }
      const gradient = tf.tensor1d(g);
      adam.apply([gradient]);
      gradient.dispose();
      const values = variable.dataSync();
      for (let k = 0; k < 2; k++) assert.ok(Math.abs(values[k] - theta[k]) < 1e-6, `step ${t}, entry ${k}: ${values[k]} vs ${theta[k]}`);
    });
    assert.equal(adam.updateCount, 3);
    adam.dispose();
    variable.dispose();
  });

  it('AdamW shrinks the parameter before the step', () => {
    const variable = tf.variable(tf.tensor1d([2]));
    const adam = new Adam([variable], { learningRate: 0.1, weightDecay: 0.5, decoupledWeightDecay: true });
    const gradient = tf.tensor1d([0]);
    adam.apply([gradient]);
    // A zero gradient leaves only the decay: θ·(1 − lr·λ).
    assert.ok(Math.abs(variable.dataSync()[0] - 2 * (1 - 0.05)) < 1e-6);
    tf.dispose([gradient, variable]);
    adam.dispose();
  });
});

describe('toy training loop', () => {
  const points = generatePoints('sine', 400, new RandomStream(1));

  async function run(objective: ToyObjective, chunkRows: number, iterations: number) {
    const random = new RandomStream(2);
    const model = createCouplingFlow2d({ random, blocks: 2, hidden: 8 });
    const result = await runToyLoop({
      model,
      objective,
      settings: DEFAULT_TOY_OBJECTIVE_SETTINGS,
      sampler: new BatchSampler(points, 30, random),
      random,
      iterations,
      learningRate: 1e-2,
      gradientClip: 1,
      emaDecay: 0.999,
      chunkRows,
      evaluateEvery: 0,
      evaluate: () => snapshot(model),
    });
    model.dispose();
    return result;
  }

  it('chunked gradients give the same training as whole batches', async () => {
    const whole = await run(getToyObjective('dsm'), 30, 3);
    const chunked = await run(getToyObjective('dsm'), 7, 3);
    assert.equal(whole.losses.length, 3);
    whole.losses.forEach((loss, i) => assert.ok(Math.abs(loss - chunked.losses[i]) < 1e-4 * Math.abs(loss), `loss ${i}`));
    const [a] = whole.evaluations;
    const [b] = chunked.evaluations;
    a.value.forEach((values, i) => {
      values.forEach((value, k) => assert.ok(Math.abs(value - b.value[i][k]) < 1e-4, `variable ${i}[${k}]: ${value} vs ${b.value[i][k]}`));
    });
  });

  it('skips and counts steps with a non-finite loss', async () => {
    const nanObjective: ToyObjective = {
      name: 'ml',
      prepare: () => ({}),
      loss: (model, batch) => tf.tidy(() => tf.mul(tf.mean(model.energy(batch.points)), Number.NaN) as tf.Scalar),
    };
    const random = new RandomStream(3);
    const model = createCouplingFlow2d({ random, blocks: 1, hidden: 4 });
    let initial: Float32Array[] = [];
    const result = await runToyLoop({
      model,
      objective: nanObjective,
      settings: DEFAULT_TOY_OBJECTIVE_SETTINGS,
      sampler: new BatchSampler(points, 16, random),
      random,
      iterations: 3,
      learningRate: 1e-2,
      gradientClip: 0,
      emaDecay: null,
      chunkRows: 16,
      evaluateEvery: 1,
      evaluate: (step) => {
        if (step === 0) initial = snapshot(model);
        return snapshot(model);
      },
    });
    assert.equal(result.skippedSteps, 3);
    assert.ok(result.losses.every(Number.isNaN));
    assert.deepEqual(result.evaluations.map((e) => e.step), [0, 0, 0, 0], 'no update was applied');
    assert.deepEqual(result.evaluations[3].value, initial, 'the parameters did not move');
    model.dispose();
  });

  for (const objective of ['dsm', 'ml'] as const) {
    it(`a short ${objective} run on sine lowers the KL`, async () => {
      const config = {
        ...defaultToy2dConfig('sine', objective),
        iterations: 150,
        batchSize: 96,
        learningRate: 1e-3,
        blocks: 2,
        hidden: 32,
        trainPoints: 2000,
        testPoints: 1000,
        evaluationPoints: 1000,
        evaluateEvery: 75,
      };
      const result = await trainToy2d(config);
      const steps = result.evaluations.map((e) => e.step);
      assert.deepEqual(steps, [0, 75, 150]);
      const [first, , last] = result.evaluations.map((e) => e.metrics);
      assert.equal(last.nonFinite, 0);
      assert.equal(result.skippedSteps, 0);
      assert.ok(last.kl < first.kl - 0.1, `${objective}: KL ${first.kl} at the start, ${last.kl} after 150 steps`);
      assert.ok(last.kl > 0, `${objective}: a KL estimate of a model this rough stays positive, received ${last.kl}`);
      assert.equal(result.grid.logDensity.length, 100 * 100);
    });
  }
});
