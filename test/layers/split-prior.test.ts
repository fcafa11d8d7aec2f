import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { ActNormLayer } from '../../src/layers/actnorm.js';
import { AffineCouplingLayer } from '../../src/layers/affine-coupling.js';
import { Conv1x1Layer } from '../../src/layers/conv1x1.js';
import { ActiveChannelsLayer, SplitPriorLayer } from '../../src/layers/split-prior.js';
import { SqueezeLayer } from '../../src/layers/squeeze.js';
import { RandomStream } from '../../src/random/stream.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';
import { registerLayerKit } from '../helpers/bijection-kit.js';

/** Creates a split prior whose coupling is moved away from the identity by 0.3·N(0, 1) noise. */
function perturbedSplitPrior(inputShape: [number, number, number], seed: number): SplitPriorLayer {
  const random = new RandomStream(seed);
  const layer = new SplitPriorLayer({ inputShape, width: 5, random });
  for (const variable of layer.variables) {
    const noise = random.normalArray(variable.size);
    tf.tidy(() => variable.assign(tf.add(variable, tf.mul(tf.tensor(noise, variable.shape), 0.3))));
  }
  return layer;
}

/** Returns log N(z; 0, I) of each row of `values` ([B, D] row-major) in float64. */
function logNormalRows(values: ArrayLike<number>, batch: number): number[] {
  const dimension = values.length / batch;
  return Array.from({ length: batch }, (_, b) => {
    let squared = 0;
    for (let i = 0; i < dimension; i++) squared += values[b * dimension + i] ** 2;
    return -0.5 * squared - 0.5 * dimension * Math.log(2 * Math.PI);
  });
}

forEachBackend((backend) => {
  registerLayerKit(
    {
      name: 'SplitPriorLayer 2×2×4',
      sampleShape: [2, 2, 4],
      perturbation: 0.3,
      create: (random) => new SplitPriorLayer({ inputShape: [2, 2, 4], width: 6, random }),
    },
    backend,
  );
  registerLayerKit(
    {
      name: 'ActiveChannelsLayer with Conv1x1 on 3 of 5 channels',
      sampleShape: [2, 2, 5],
      create: (random) => new ActiveChannelsLayer(new Conv1x1Layer({ inputShape: [2, 2, 3], random }), 3, 5),
    },
    backend,
  );
  registerLayerKit(
    {
      name: 'ActiveChannelsLayer with ActNorm on 2 of 4 channels',
      sampleShape: [2, 3, 4],
      create: () => new ActiveChannelsLayer(new ActNormLayer({ inputShape: [2, 3, 2] }), 2, 4),
    },
    backend,
  );
  registerLayerKit(
    {
      name: 'ActiveChannelsLayer with a coupling on 4 of 8 channels',
      sampleShape: [1, 2, 8],
      create: (random) => new ActiveChannelsLayer(new AffineCouplingLayer({ inputShape: [1, 2, 4], width: 4, random }), 4, 8),
    },
    backend,
  );

  test('split prior uses a ReLU coupling', () => {
    const layer = new SplitPriorLayer({ inputShape: [2, 2, 4], width: 3, random: new RandomStream(1) });
    assert.equal(layer.coupling.activation, 'relu');
    assert.equal(layer.keptChannels, 2);
    assert.equal(layer.constantJacobian, false);
    assert.deepEqual(layer.variables, layer.coupling.variables);
    layer.dispose();
  });

  test('factorOut keeps x₁ and scores z₂', () => {
    const layer = perturbedSplitPrior([2, 2, 4], 2);
    const x = tf.randomNormal([3, 2, 2, 4], 0, 1, 'float32', 3);
    const full = layer.forward(x);
    const { kept, logDet } = layer.factorOut(x);
    assert.deepEqual(kept.shape, [3, 2, 2, 2]);

    // Read the coupling output [x₁, z₂] channel by channel.
    const output = full.y.dataSync();
    const firstHalf: number[] = [];
    const secondHalf: number[] = [];
    output.forEach((value, i) => (i % 4 < 2 ? firstHalf : secondHalf).push(value));
    assert.deepEqual(Array.from(kept.dataSync()), firstHalf);

    const couplingLogDet = (full.logDet as tf.Tensor).dataSync();
    const expected = logNormalRows(secondHalf, 3).map((logNormal, b) => logNormal + couplingLogDet[b]);
    assert.equal(firstMismatch(logDet.dataSync(), expected, backend.accumulated, 'Σ log s + log N(z₂)'), null);
    tf.dispose([x, full.y, full.logDet as tf.Tensor, kept, logDet]);
    layer.dispose();
  });

  test('inverseWithSample draws z₂ from the stream', () => {
    const layer = perturbedSplitPrior([2, 1, 4], 4);
    const kept = tf.randomNormal([2, 2, 1, 2], 0, 1, 'float32', 5);
    const restored = layer.inverseWithSample(kept, new RandomStream(6));
    assert.deepEqual(restored.shape, [2, 2, 1, 4]);

    // Forward again: the kept half comes back, and the factored half is the stream's draws.
    const { y, logDet } = layer.forward(restored);
    const drawn = new RandomStream(6).normalArray(2 * 2 * 1 * 2);
    const keptBack: number[] = [];
    const factoredBack: number[] = [];
    y.dataSync().forEach((value, i) => (i % 4 < 2 ? keptBack : factoredBack).push(value));
    assert.equal(firstMismatch(keptBack, kept.dataSync(), backend.elementwise, 'x₁'), null);
    assert.equal(firstMismatch(factoredBack, drawn, { relative: 1e-4, absolute: 1e-4 }, 'z₂'), null);
    tf.dispose([kept, restored, y, logDet as tf.Tensor]);
    layer.dispose();
  });

  test('inverseWithSample rejects a full-width input', () => {
    const layer = new SplitPriorLayer({ inputShape: [2, 2, 4], width: 3, random: new RandomStream(1) });
    const full = tf.zeros([1, 2, 2, 4]);
    assert.throws(() => layer.inverseWithSample(full, new RandomStream(2)), /expects the kept half \[B, 2, 2, 2\]/);
    full.dispose();
    layer.dispose();
  });

  test('active channels pass the rest through unchanged', () => {
    const inner = perturbedSplitPrior([2, 2, 2], 7).coupling;
    const layer = new ActiveChannelsLayer(inner, 2, 5);
    const x = tf.randomNormal([2, 2, 2, 5], 0, 1, 'float32', 8);
    const { y, logDet } = layer.forward(x);
    const input = x.dataSync();
    y.dataSync().forEach((value, i) => {
      if (i % 5 >= 2) assert.equal(value, input[i], `passive element ${i} changed`);
    });
    const innerOut = tf.tidy(() => inner.forward(tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, 2])).logDet as tf.Tensor);
    assert.deepEqual(Array.from((logDet as tf.Tensor).dataSync()), Array.from(innerOut.dataSync()));
    tf.dispose([x, y, logDet as tf.Tensor, innerOut]);
    layer.dispose();
  });

  test('active channels rejects bad channel counts', () => {
    const inner = new Conv1x1Layer({ inputShape: [1, 1, 2], random: new RandomStream(1) });
    assert.throws(() => new ActiveChannelsLayer(inner, 3, 2), /need 1 ≤ activeChannels ≤ totalChannels/);
    const layer = new ActiveChannelsLayer(inner, 2, 4);
    const x = tf.zeros([1, 1, 1, 3]);
    assert.throws(() => layer.forward(x), /expects NHWC \[B, H, W, 4\], received shape \[1, 1, 1, 3\]/);
    x.dispose();
    layer.dispose();
  });

  test('squeeze keeps active channels first', () => {
    // Glow relies on squeeze([a, b]) = [squeeze(a), squeeze(b)] on the channel axis.
    const squeeze = new SqueezeLayer();
    const a = tf.randomNormal([2, 4, 2, 3], 0, 1, 'float32', 9);
    const b = tf.randomNormal([2, 4, 2, 2], 0, 1, 'float32', 10);
    const joined = tf.concat([a, b], 3);
    const squeezedJoined = squeeze.forward(joined).y;
    const separately = tf.tidy(() => tf.concat([squeeze.forward(a).y, squeeze.forward(b).y], 3));
    assert.deepEqual(Array.from(squeezedJoined.dataSync()), Array.from(separately.dataSync()));
    tf.dispose([a, b, joined, squeezedJoined, separately]);
  });
});
