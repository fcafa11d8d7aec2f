import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

import { loadMnist } from '../../src/data/mnist.js';
import { preprocess } from '../../src/data/preprocess.js';
import { createCnnFlow } from '../../src/models/cnn-flow.js';
import type { EnergyFlow } from '../../src/models/energy-flow.js';
import { createFcFlow } from '../../src/models/fc-flow.js';
import { PreprocessedFlow, withInModelPreprocessing } from '../../src/models/preprocessed-flow.js';
import { nestedEnergyDerivatives } from '../../src/objectives/derivatives.js';
import { getObjective } from '../../src/objectives/index.js';
import type { ObjectiveOptions } from '../../src/objectives/objective.js';
import { RandomStream } from '../../src/random/stream.js';
import { resolveTrainingConfig, type TrainingConfigInput } from '../../src/train/config.js';
import { createTrainingSession } from '../../src/train/session-impl.js';
import { maxRelativeError } from '../helpers/backends.js';

function config(change: Partial<TrainingConfigInput> = {}) {
  return resolveTrainingConfig({ dataset: 'synthetic', architecture: 'fc', objective: 'ssm', imageShape: [5, 5, 1], batchSize: 20, ...change });
}

/** Moves every parameter by 0.1·N(0, 1), so the test does not run at the special initial weights. */
function perturb(model: EnergyFlow, seed: number): void {
  const random = new RandomStream(seed);
  for (const variable of model.variables) {
    const moved = tf.tidy(() => tf.add(variable, tf.mul(tf.tensor(random.normalArray(variable.size), variable.shape), 0.1)));
    variable.assign(moved);
    moved.dispose();
  }
}

/** Dequantised pixel values: integers 0–255 plus a uniform draw, as float32 [B, …shape]. */
function dequantisedPixels(random: RandomStream, shape: number[]): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = Math.floor(random.uniform() * 256) + random.uniform();
  return tf.tensor(values, shape);
}

function values(tensor: tf.Tensor): Float32Array {
  const data = tensor.dataSync() as Float32Array;
  tensor.dispose();
  return data;
}

describe('training without MaP', () => {
  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('wasm');
    await tf.ready();
  });

  it('accepts ssm and rejects dsm and fdssm', () => {
    assert.equal(config({ matchAfterPreprocessing: false }).matchAfterPreprocessing, false);
    for (const objective of ['dsm', 'fdssm'] as const) {
      assert.throws(
        () => config({ objective, matchAfterPreprocessing: false }),
        new RegExp(`objective "${objective}" perturbs the model input with noise.*set matchAfterPreprocessing to true`),
      );
    }
  });

  it('builds the chain into the model', async () => {
    const session = await createTrainingSession(config({ matchAfterPreprocessing: false }));
    const model = session.model;
    assert.ok(model instanceof PreprocessedFlow);
    assert.deepEqual(
      model.layers.map((layer) => [layer.name, layer.constantJacobian]),
      [
        ['preprocess.scale', true],
        ['preprocess.shift', true],
        ['preprocess.logit', false],
        ['dense[0]', true],
        ['slr[0]', false],
        ['dense[1]', true],
      ],
    );
    // log Z gains −D·(ln(1 − 2·10⁻⁶) − ln 256) over the inner flow's.
    const outer = model.logNormalizer();
    const inner = model.inner.logNormalizer();
    const difference = outer.dataSync()[0] - inner.dataSync()[0];
    tf.dispose([outer, inner]);
    const expected = -25 * (Math.log(1 - 2e-6) - Math.log(256));
    assert.ok(Math.abs(difference - expected) < 1e-3, `log Z difference ${difference}, expected ${expected}`);
    session.dispose();
  });

  it('matches the MaP NLL at initialisation', async () => {
    // Same seed: same weights, same data, same dequantisation draws.
    for (const architecture of ['fc', 'cnn'] as const) {
      const shape: [number, number, number] = architecture === 'fc' ? [5, 5, 1] : [8, 8, 1];
      const withMap = await createTrainingSession(config({ architecture, imageShape: shape, seed: 2 }));
      const withoutMap = await createTrainingSession(config({ architecture, imageShape: shape, seed: 2, matchAfterPreprocessing: false }));
      const on = await withMap.evaluate('test', 60);
      const off = await withoutMap.evaluate('test', 60);
      assert.equal(off.nonFinite, 0);
      assert.ok(Math.abs(on.nllNats - off.nllNats) < 1e-6 * Math.abs(on.nllNats), `${architecture}: MaP on ${on.nllNats}, off ${off.nllNats} nats`);
      withMap.dispose();
      withoutMap.dispose();
    }
  });

  it('matches the MaP NLL on MNIST after training', async () => {
    // Train with MaP, copy the state (weights, EMA, stream) into a MaP-off session, evaluate both.
    const mnist = await loadMnist();
    const base = { dataset: 'mnist', architecture: 'fc', objective: 'ssm', batchSize: 50, learningRate: 1e-3 } as const;
    const withMap = await createTrainingSession(resolveTrainingConfig(base));
    const withoutMap = await createTrainingSession(resolveTrainingConfig({ ...base, matchAfterPreprocessing: false }), { dataset: mnist });
    for (let i = 0; i < 3; i++) await withMap.step();
    withoutMap.setState(withMap.getState());
    const on = await withMap.evaluate('test', 100);
    const off = await withoutMap.evaluate('test', 100);
    assert.ok(Math.abs(on.nllNats - off.nllNats) < 1e-7 * Math.abs(on.nllNats), `MaP on ${on.nllNats}, off ${off.nllNats} nats`);
    withMap.dispose();
    withoutMap.dispose();
  });

  it('trains on dequantised pixels', async () => {
    // The first step's loss equals the SSM loss of the wrapped model at y₀ = x + u.
    const session = await createTrainingSession(config({ matchAfterPreprocessing: false, seed: 4 }));
    const copy = new RandomStream(0);
    copy.setState(session.getState().random);
    const pixels = session.dataset.batch('train', Array.from({ length: 20 }, (_, i) => i));
    const noise = copy.uniformArray(pixels.length);
    const objective = getObjective('ssm');
    const options: ObjectiveOptions = { sigma: 1, epsilon: 1, slices: 1, energyWeight: 0, channels: 1, explicitDerivatives: true };
    const expected = tf.tidy(() => {
      const x = tf.add(tf.tensor2d(Float32Array.from(pixels), [20, 25]), tf.tensor2d(noise, [20, 25]));
      const prepared = objective.prepare(session.model, x, copy, options);
      return objective.loss(session.model, x, prepared, options).dataSync()[0];
    });
    const result = await session.step();
    assert.ok(result.finite, `loss ${result.loss}`);
    assert.ok(Math.abs(result.loss - expected) <= 1e-6 * Math.abs(expected), `step loss ${result.loss}, expected ${expected}`);
    for (let i = 0; i < 3; i++) assert.ok((await session.step()).finite);
    session.dispose();
  });

  it('agrees with nested tf.grad', () => {
    // Explicit chain-rule derivatives against nested tf.grad through the chain's layers.
    const inners: EnergyFlow[] = [
      createFcFlow({ dimension: 12, depth: 2, residual: false }),
      createCnnFlow({ imageShape: [4, 4, 1], blocks: 2, convsPerBlock: 1, kernel: 3, random: new RandomStream(3) }),
    ];
    for (const inner of inners) {
      perturb(inner, 5);
      const model = withInModelPreprocessing(inner, 0.5);
      const shape = [3, ...model.sampleShape];
      const random = new RandomStream(6);
      const x = dequantisedPixels(random, shape);
      const direction = tf.tensor(random.rademacherArray(x.size), shape);

      const explicit = model.energyDerivatives?.(x, direction);
      assert.ok(explicit !== undefined && explicit.hessianVector !== undefined, `${inner.architecture} has explicit derivatives`);
      const nested = nestedEnergyDerivatives(model, x, direction);
      const label = inner.architecture;
      assert.ok(maxRelativeError(values(explicit.energy), values(nested.energy)) < 1e-5, `${label} energy`);
      assert.ok(maxRelativeError(values(explicit.gradient), values(nested.gradient), 1e-3) < 1e-3, `${label} gradient`);
      assert.ok(
        maxRelativeError(values(explicit.hessianVector), values(nested.hessianVector as tf.Tensor), 1e-3) < 1e-3,
        `${label} Hessian-vector product`,
      );

      // The θ-gradient of the SSM loss, explicit (one level of autodiff) against nested (three).
      const objective = getObjective('ssm');
      const options: ObjectiveOptions = { sigma: 1, epsilon: 1, slices: 1, energyWeight: 0.1, channels: 1, explicitDerivatives: true };
      const prepared = { directions: direction };
      const gradients = (explicitDerivatives: boolean): Float32Array[] => {
        const { value, grads } = tf.variableGrads(() => objective.loss(model, x, prepared, { ...options, explicitDerivatives }), model.variables);
        value.dispose();
        return model.variables.map((v) => values(grads[v.name]));
      };
      const fast = gradients(true);
      const slow = gradients(false);
      fast.forEach((g, i) => {
        const error = maxRelativeError(g, slow[i], 1e-2 * Math.max(...slow[i].map(Math.abs)));
        assert.ok(error < 2e-3, `${label} θ-gradient of variable ${i}: relative error ${error}`);
      });
      tf.dispose([x, direction]);
      model.dispose();
    }
  });

  it('samples dequantised pixels', () => {
    const model = withInModelPreprocessing(createFcFlow({ dimension: 9, depth: 2, residual: false }), 0.5);
    perturb(model, 8);
    const z = tf.tensor2d(new RandomStream(9).normalArray(4 * 9), [4, 9]);
    const samples = model.inverse(z);
    const data = values(samples);
    assert.ok(data.every((v) => v > 0 && v < 256), `samples ${data.slice(0, 5)}`);
    // Forward then inverse returns the dequantised value.
    const input = dequantisedPixels(new RandomStream(10), [4, 9]);
    const roundTrip = tf.tidy(() => {
      const { y } = model.preprocessing.forward(input);
      return model.preprocessing.inverse(y);
    });
    assert.ok(maxRelativeError(values(roundTrip), input.dataSync(), 1) < 1e-3);
    // The chain equals the external preprocessing bitwise.
    const pixels = tf.tensor2d(Array.from({ length: 36 }, (_, i) => (i * 7) % 256), [4, 9]);
    const chain = new RandomStream(11);
    const external = preprocess(pixels, chain, 0.5);
    const internal = model.preprocessing.forward(tf.add(pixels, tf.tensor2d(new RandomStream(11).uniformArray(36), [4, 9])));
    assert.deepEqual(values(internal.y), values(external.x));
    tf.dispose([z, input, pixels, external.logDet, internal.logDet as tf.Tensor]);
    model.dispose();
  });
});
