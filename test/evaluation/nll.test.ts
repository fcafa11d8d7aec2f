import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';

import type { ImageDataset } from '../../src/data/dataset.js';
import { preprocess } from '../../src/data/preprocess.js';
import { createSyntheticDataset } from '../../src/data/synthetic.js';
import { bitsPerDimension, evaluateNll, logNormalizerFloat64 } from '../../src/evaluation/nll.js';
import type { EnergyFlow } from '../../src/models/energy-flow.js';
import { createFcFlow } from '../../src/models/fc-flow.js';
import { RandomStream } from '../../src/random/stream.js';

const LOG_TWO_PI = Math.log(2 * Math.PI);

/**
 * Builds the identity flow with a standard normal base and a chosen constant log Z, carried by
 * one constant-Jacobian layer whose log-det is −logZ. E(x) = ½‖x‖² + (D/2)·ln 2π, so
 * log p(x) = −E(x) − logZ. `nanRows` makes E NaN on those rows.
 */
function identityFlow(dimension: number, logZ: number, nanRows: number[] = []): EnergyFlow {
  const energy = (x: tf.Tensor): tf.Tensor1D =>
    tf.tidy(() => {
      const flat = tf.reshape(x, [x.shape[0], dimension]);
      const values = tf.add(tf.mul(tf.sum(tf.square(flat), 1), 0.5), 0.5 * dimension * LOG_TWO_PI) as tf.Tensor1D;
      if (nanRows.length === 0) return values;
      const mask = Array.from({ length: x.shape[0] }, (_, i) => (nanRows.includes(i) ? Number.NaN : 0));
      return tf.add(values, tf.tensor1d(mask)) as tf.Tensor1D;
    });
  return {
    architecture: 'identity',
    sampleShape: [dimension],
    dimension,
    layers: [
      {
        name: 'constant',
        constantJacobian: true,
        variables: [],
        forward: (x) => ({ y: tf.clone(x), logDet: null }),
        inverse: (y) => tf.clone(y),
        constantLogDet: () => tf.scalar(-logZ),
      },
    ],
    variables: [],
    energy,
    logNormalizer: () => tf.scalar(logZ),
    logProb: (x) => tf.tidy(() => tf.sub(tf.neg(energy(x)), logZ) as tf.Tensor1D),
    inverse: (z) => tf.clone(z),
  };
}

/**
 * Computes the NLL of the identity flow in float64, with the preprocessing chain written out by
 * hand and the dequantisation draws of a copy of the stream (float32, as the chain stores them).
 */
function identityNllByHand(dataset: ImageDataset, images: number, random: RandomStream, logitScale: number, logZ: number): number {
  const dimension = dataset.dimension;
  const pixels = dataset.batch('test', Array.from({ length: images }, (_, i) => i));
  const noise = random.uniformArray(images * dimension);
  const shift = 1e-6;
  let total = 0;
  for (let n = 0; n < images; n++) {
    let squaredNorm = 0;
    let logDet = dimension * (-Math.log(256) + Math.log(1 - 2 * shift) - Math.log(logitScale));
    for (let i = 0; i < dimension; i++) {
      const k = n * dimension + i;
      const y = ((pixels[k] + noise[k]) / 256 + shift) * (1 - 2 * shift);
      const logit = (Math.log(y) - Math.log(1 - y)) / logitScale;
      squaredNorm += logit * logit;
      logDet -= Math.log(y) + Math.log(1 - y);
    }
    const energy = 0.5 * squaredNorm + 0.5 * dimension * LOG_TWO_PI;
    total += -energy - logZ + logDet;
  }
  return -total / images;
}

describe('NLL evaluation', () => {
  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  it('matches a float64 hand computation', async () => {
    const dataset = createSyntheticDataset({ imageShape: [2, 3, 1], random: new RandomStream(4), sizes: { test: 9 } });
    const logZ = -1.75;
    const random = new RandomStream(21);
    const copy = new RandomStream(0);
    copy.setState(random.getState());

    // Batches of 3, 3 and 1 images: the draws run on across batch boundaries.
    const result = await evaluateNll({
      model: identityFlow(6, logZ),
      dataset,
      split: 'test',
      maxImages: 7,
      random,
      logitScale: 0.5,
      batchSize: 3,
    });
    const expected = identityNllByHand(dataset, 7, copy, 0.5, logZ);
    assert.equal(result.split, 'test');
    assert.equal(result.images, 7);
    assert.equal(result.nonFinite, 0);
    assert.ok(Math.abs(result.nllNats - expected) < 1e-3 * Math.abs(expected), `NLL ${result.nllNats}, expected ${expected}`);
    assert.equal(result.bitsPerDim, result.nllNats / (6 * Math.LN2));
  });

  it('equals the model\'s log-probability plus the chain log-det', async () => {
    const random = new RandomStream(3);
    const dataset = createSyntheticDataset({ imageShape: [4, 4, 1], random, sizes: { validation: 20 } });
    const model = createFcFlow({ dimension: 16, depth: 2, residual: false });
    // Perturb W away from −I so both log|det W| terms are non-zero.
    const perturbation = new RandomStream(8);
    for (const variable of model.variables) {
      variable.assign(tf.tidy(() => tf.add(variable, tf.mul(tf.tensor(perturbation.normalArray(variable.size), variable.shape), 0.2))));
    }
    const copy = new RandomStream(0);
    copy.setState(random.getState());

    const result = await evaluateNll({ model, dataset, split: 'validation', random, logitScale: 0.5, batchSize: 8 });

    const pixels = dataset.batch('validation', Array.from({ length: 20 }, (_, i) => i));
    const expected = tf.tidy(() => {
      const { x, logDet } = preprocess(tf.tensor4d(Float32Array.from(pixels), [20, 4, 4, 1]), copy, 0.5);
      const logLikelihood = tf.add(model.logProb(tf.reshape(x, [20, 16])), logDet);
      return -tf.mean(logLikelihood).dataSync()[0];
    });
    assert.equal(result.images, 20);
    assert.ok(Math.abs(result.nllNats - expected) < 1e-4 * Math.abs(expected), `NLL ${result.nllNats}, expected ${expected}`);
    const logZ = model.logNormalizer();
    const logZValue = logZ.dataSync()[0];
    logZ.dispose();
    assert.ok(Math.abs(logZValue) > 0.1, `the test needs a non-trivial log Z, got ${logZValue}`);
    assert.ok(Math.abs(logNormalizerFloat64(model) - logZValue) < 1e-4 * Math.abs(logZValue), 'float64 log Z matches the model');
    model.variables.forEach((v) => v.dispose());
  });

  it('counts non-finite images and leaves them out', async () => {
    const dataset = createSyntheticDataset({ imageShape: [2, 2, 1], random: new RandomStream(5), sizes: { test: 10 } });
    const random = new RandomStream(6);
    const copy = new RandomStream(0);
    copy.setState(random.getState());
    const clean = await evaluateNll({ model: identityFlow(4, 0), dataset, split: 'test', random: copy, logitScale: 0.5, batchSize: 5 });
    const result = await evaluateNll({ model: identityFlow(4, 0, [0]), dataset, split: 'test', random, logitScale: 0.5, batchSize: 5 });
    // Row 0 of each of the two batches is NaN.
    assert.equal(result.nonFinite, 2);
    assert.equal(result.images, 10);
    assert.ok(Number.isFinite(result.nllNats));
    assert.notEqual(result.nllNats, clean.nllNats);
  });

  it('clamps maxImages to the split', async () => {
    const dataset = createSyntheticDataset({ imageShape: [2, 2, 1], random: new RandomStream(5), sizes: { validation: 4 } });
    const result = await evaluateNll({ model: identityFlow(4, 0), dataset, split: 'validation', maxImages: 100, random: new RandomStream(1), logitScale: 1 });
    assert.equal(result.images, 4);
  });

  it('rejects invalid requests', async () => {
    const dataset = createSyntheticDataset({ imageShape: [2, 2, 1], random: new RandomStream(5) });
    const random = new RandomStream(1);
    await assert.rejects(
      evaluateNll({ model: identityFlow(4, 0), dataset, split: 'test', maxImages: 0, random, logitScale: 1 }),
      /maxImages must be a positive integer, received 0/,
    );
    await assert.rejects(
      evaluateNll({ model: identityFlow(5, 0), dataset, split: 'test', random, logitScale: 1 }),
      /the model has D = 5 but the synthetic images have D = 4/,
    );
  });

  it('converts nats to bits per dimension', () => {
    assert.equal(bitsPerDimension(784 * Math.LN2, 784), 1);
    assert.ok(Math.abs(bitsPerDimension(1000, 784) - 1000 / (784 * Math.log(2))) < 1e-12);
  });

  it('leaks no tensors', async () => {
    const dataset = createSyntheticDataset({ imageShape: [2, 2, 1], random: new RandomStream(5) });
    const model = identityFlow(4, 0.5);
    const before = tf.memory().numTensors;
    await evaluateNll({ model, dataset, split: 'test', maxImages: 30, random: new RandomStream(2), logitScale: 0.5, batchSize: 7 });
    assert.equal(tf.memory().numTensors, before);
  });
});
