import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { CnnFlow, createCnnFlow } from '../../src/models/cnn-flow.js';
import { RandomStream } from '../../src/random/stream.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';
import { registerFlowKit } from '../helpers/bijection-kit.js';

function parameterCount(model: CnnFlow): number {
  return model.variables.reduce((total, variable) => total + variable.size, 0);
}

forEachBackend((backend) => {
  registerFlowKit(
    {
      name: 'CnnFlow 4×4×1, 2 blocks, K=3',
      sampleShape: [4, 4, 1],
      create: (random) => createCnnFlow({ imageShape: [4, 4, 1], blocks: 2, kernel: 3, random }),
    },
    backend,
  );
  registerFlowKit(
    {
      name: 'CnnFlow 2×4×2, 2 blocks, K=5, no residual',
      sampleShape: [2, 4, 2],
      create: (random) => createCnnFlow({ imageShape: [2, 4, 2], blocks: 2, convsPerBlock: 1, kernel: 5, residual: false, random }),
    },
    backend,
  );
  registerFlowKit(
    {
      name: 'CnnFlow 4×4×1 with spectral norm',
      sampleShape: [4, 4, 1],
      create: (random) => {
        // Evaluation mode fixes u and v, so every check uses the same map.
        const model = createCnnFlow({ imageShape: [4, 4, 1], blocks: 2, kernel: 3, spectralNorm: true, random });
        for (const conv of model.convLayers) for (let step = 0; step < 10; step++) conv.powerIteration();
        model.setTraining(false);
        return model;
      },
    },
    backend,
  );

  test('MNIST layout follows the paper', () => {
    const model = createCnnFlow({ imageShape: [28, 28, 1], random: new RandomStream(1) });
    const kinds = model.layers.map((layer) => layer.name.replace(/\[\d+\]/, ''));
    assert.deepEqual(kinds, ['conv', 'slr', 'conv', 'slr', 'squeeze', 'conv', 'slr', 'conv', 'slr', 'squeeze', 'conv', 'slr', 'conv']);
    assert.deepEqual(model.convLayers.map((conv) => conv.inputShape), [
      [28, 28, 1],
      [28, 28, 1],
      [14, 14, 4],
      [14, 14, 4],
      [7, 7, 16],
      [7, 7, 16],
    ]);
    assert.deepEqual(model.latentShape, [7, 7, 16]);
    assert.deepEqual(model.sampleShape, [28, 28, 1]);
    assert.equal(model.dimension, 784);
    assert.equal(model.architecture, 'cnn');
    // 2·(50 + 788 + 12 560) weights and biases, as the reference's MNIST CNN.
    assert.equal(parameterCount(model), 26_796);
    assert.deepEqual(model.buffers, []);
    model.dispose();
  });

  test('CIFAR-10 layout has 240,912 parameters', () => {
    const model = createCnnFlow({ imageShape: [32, 32, 3], random: new RandomStream(1) });
    assert.deepEqual(model.latentShape, [8, 8, 48]);
    assert.equal(model.dimension, 3072);
    assert.equal(parameterCount(model), 240_912);
    model.dispose();
  });

  test('spectral norm adds two buffers per convolution', () => {
    const model = createCnnFlow({ imageShape: [4, 4, 1], blocks: 2, kernel: 3, spectralNorm: true, random: new RandomStream(2) });
    assert.equal(model.buffers.length, 2 * model.convLayers.length);
    assert.ok(model.buffers.every((buffer) => !buffer.trainable));
    assert.equal(model.variables.length, 2 * model.convLayers.length);
    model.dispose();
  });

  test('CnnFlow rejects sides not divisible by the squeezes', () => {
    assert.throws(
      () => createCnnFlow({ imageShape: [28, 28, 1], blocks: 4, random: new RandomStream(1) }),
      /H and W must be divisible by 8; received imageShape \[28, 28, 1\]\. Crop or pad the images to a multiple of 8, or use fewer blocks/,
    );
    assert.throws(() => createCnnFlow({ imageShape: [6, 6, 1], blocks: 0, random: new RandomStream(1) }), /blocks must be an integer ≥ 1, received 0/);
    assert.throws(() => createCnnFlow({ imageShape: [8, 8, 1], kernel: 4, random: new RandomStream(1) }), /kernel must be a positive odd integer/);
  });

  test('energy accepts flattened and image batches alike', () => {
    const model = createCnnFlow({ imageShape: [4, 4, 1], blocks: 2, kernel: 3, random: new RandomStream(3) });
    const images = tf.randomNormal([3, 4, 4, 1], 0, 1, 'float32', 5);
    const flat = tf.reshape(images, [3, 16]);
    const fromImages = model.energy(images);
    const fromFlat = model.energy(flat);
    assert.deepEqual(Array.from(fromFlat.dataSync()), Array.from(fromImages.dataSync()));
    const wrong = tf.zeros([3, 15]);
    assert.throws(() => model.energy(wrong), /CnnFlow.energy: expected a batch of shape \[B, 4, 4, 1\] or \[B, 16\], received \[3, 15\]/);
    tf.dispose([images, flat, fromImages, fromFlat, wrong]);
    model.dispose();
  });

  test('energy at initialisation has the closed form', () => {
    // With W = −Dirac every convolution is u ↦ −u + b, so the energy can be written out per
    // element: h₁ = −x + b₁, a₁ = f(h₁), …, z = −a + b_last.
    const model = createCnnFlow({ imageShape: [2, 2, 1], blocks: 1, convsPerBlock: 2, kernel: 3, random: new RandomStream(4) });
    const x = [0.3, -1.2, 2.0, 0.1];
    const [b1, b2] = model.convLayers.map((conv) => conv.bias.dataSync()[0]);
    let expected = 0.5 * 4 * Math.log(2 * Math.PI);
    for (const value of x) {
      const h = -value + b1;
      const softplus = Math.log1p(Math.exp(h));
      const sigmoid = 1 / (1 + Math.exp(-h));
      const activated = 1.3 * h + 0.7 * softplus;
      const z = -activated + b2;
      expected += 0.5 * z * z - Math.log(1.3 + 0.7 * sigmoid);
    }
    const input = tf.tensor4d(x, [1, 2, 2, 1]);
    const energy = model.energy(input);
    assert.equal(firstMismatch(energy.dataSync(), [expected], backend.accumulated, 'E(x)'), null);
    tf.dispose([input, energy]);
    model.dispose();
  });

  test('samples from the base invert to finite images', () => {
    const model = createCnnFlow({ imageShape: [4, 4, 1], blocks: 2, kernel: 3, random: new RandomStream(6) });
    const z = tf.randomNormal([2, ...model.latentShape], 0, 1, 'float32', 7);
    const images = model.inverse(z);
    assert.deepEqual(images.shape, [2, 4, 4, 1]);
    assert.ok(images.dataSync().every(Number.isFinite));
    tf.dispose([z, images]);
    model.dispose();
  });
});
