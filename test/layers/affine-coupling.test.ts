import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { AffineCouplingLayer } from '../../src/layers/affine-coupling.js';
import { RandomStream } from '../../src/random/stream.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';
import { registerLayerKit } from '../helpers/bijection-kit.js';

function assign(variable: tf.Variable, values: number[]): void {
  tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
}

/** Sets the parameters so that the network output h is the constant vector b·e^{3·logs} at every pixel. */
function constantNetworkOutput(layer: AffineCouplingLayer, bias: number[], logScale: number[]): void {
  assign(layer.outputFilter, new Array<number>(layer.outputFilter.size).fill(0));
  assign(layer.outputBias, bias);
  if (!layer.tieZeroBiasAndLogScale) assign(layer.outputLogScale, logScale);
}

forEachBackend((backend) => {
  registerLayerKit(
    {
      name: 'AffineCouplingLayer 3×2×4, leaky ReLU',
      sampleShape: [3, 2, 4],
      create: (random) => new AffineCouplingLayer({ inputShape: [3, 2, 4], width: 6, random }),
    },
    backend,
  );
  registerLayerKit(
    {
      name: 'AffineCouplingLayer 2×2×2, ReLU',
      sampleShape: [2, 2, 2],
      perturbation: 0.3,
      create: (random) => new AffineCouplingLayer({ inputShape: [2, 2, 2], width: 5, activation: 'relu', random }),
    },
    backend,
  );
  registerLayerKit(
    {
      name: 'AffineCouplingLayer 2×3×6, tied Conv2dZero',
      sampleShape: [2, 3, 6],
      create: (random) => new AffineCouplingLayer({ inputShape: [2, 3, 6], width: 4, tieZeroBiasAndLogScale: true, random }),
    },
    backend,
  );

  test('coupling starts as the identity', () => {
    const layer = new AffineCouplingLayer({ inputShape: [2, 2, 4], width: 8, random: new RandomStream(1) });
    const x = tf.randomNormal([3, 2, 2, 4], 0, 1, 'float32', 2);
    const { y, logDet } = layer.forward(x);
    assert.deepEqual(Array.from(y.dataSync()), Array.from(x.dataSync()));
    assert.deepEqual(Array.from((logDet as tf.Tensor).dataSync()), [0, 0, 0]);
    tf.dispose([x, y, logDet as tf.Tensor]);
    layer.dispose();
  });

  test('coupling splits h by interleaved channels', () => {
    // C = 4: x₁ = channels 0, 1 and x₂ = channels 2, 3; h = b·e^{3·logs} at every pixel, so
    // log s_j = 2·tanh(h_{2j}/2) and t_j = h_{2j+1}.
    const layer = new AffineCouplingLayer({ inputShape: [1, 2, 4], width: 3, random: new RandomStream(3) });
    const bias = [0.4, -0.3, -1.1, 0.7];
    const logScale = [0.1, -0.2, 0.05, 0.3];
    constantNetworkOutput(layer, bias, logScale);
    const h = bias.map((b, c) => b * Math.exp(3 * logScale[c]));
    const logS = [2 * Math.tanh(h[0] / 2), 2 * Math.tanh(h[2] / 2)];
    const shift = [h[1], h[3]];

    const pixels = [0.5, -1, 2, -0.25, 1.5, 0.75, -3, 1];
    const x = tf.tensor4d(pixels, [1, 1, 2, 4]);
    const { y, logDet } = layer.forward(x);
    const expected = pixels.map((value, i) => {
      const channel = i % 4;
      return channel < 2 ? value : value * Math.exp(logS[channel - 2]) + shift[channel - 2];
    });
    assert.equal(firstMismatch(y.dataSync(), expected, backend.elementwise, 'y'), null);
    const expectedLogDet = 2 * (logS[0] + logS[1]);
    assert.equal(firstMismatch((logDet as tf.Tensor).dataSync(), [expectedLogDet], backend.elementwise, 'log-det'), null);
    tf.dispose([x, y, logDet as tf.Tensor]);
    layer.dispose();
  });

  test('coupling soft-clamps the log-scale to (−2, 2)', () => {
    const layer = new AffineCouplingLayer({ inputShape: [1, 1, 2], width: 2, random: new RandomStream(4) });
    constantNetworkOutput(layer, [50, 0], [0, 0]);
    const x = tf.tensor4d([0, 1], [1, 1, 1, 2]);
    const { y, logDet } = layer.forward(x);
    assert.equal(firstMismatch((logDet as tf.Tensor).dataSync(), [2], backend.elementwise, 'clamped log s'), null);
    assert.equal(firstMismatch(y.dataSync(), [0, Math.exp(2)], backend.elementwise, 'y'), null);
    tf.dispose([x, y, logDet as tf.Tensor]);
    layer.dispose();
  });

  test('tied Conv2dZero uses one vector for bias and log-scale', () => {
    const layer = new AffineCouplingLayer({ inputShape: [1, 1, 2], width: 2, tieZeroBiasAndLogScale: true, random: new RandomStream(5) });
    assert.equal(layer.outputLogScale, layer.outputBias);
    assert.equal(layer.variables.length, 6);
    // h = (0 + b)·e^{3b}.
    const bias = [0.3, -0.2];
    constantNetworkOutput(layer, bias, bias);
    const h = bias.map((b) => b * Math.exp(3 * b));
    const x = tf.tensor4d([0.5, 1], [1, 1, 1, 2]);
    const { y, logDet } = layer.forward(x);
    const expected = [0.5, Math.exp(2 * Math.tanh(h[0] / 2)) + h[1]];
    assert.equal(firstMismatch(y.dataSync(), expected, backend.elementwise, 'y'), null);
    tf.dispose([x, y, logDet as tf.Tensor]);
    layer.dispose();

    const separate = new AffineCouplingLayer({ inputShape: [1, 1, 2], width: 2, random: new RandomStream(5) });
    assert.notEqual(separate.outputLogScale, separate.outputBias);
    assert.equal(separate.variables.length, 7);
    separate.dispose();
  });

  test('coupling initial weights are uniform on ±1/√fan_in', () => {
    const layer = new AffineCouplingLayer({ inputShape: [2, 2, 4], width: 16, random: new RandomStream(6) });
    const cases: Array<[tf.Variable, number]> = [
      [layer.inputFilter, 1 / Math.sqrt(9 * 2)],
      [layer.inputBias, 1 / Math.sqrt(9 * 2)],
      [layer.hiddenWeight, 1 / Math.sqrt(16)],
      [layer.hiddenBias, 1 / Math.sqrt(16)],
    ];
    for (const [variable, bound] of cases) {
      const values = Array.from(variable.dataSync());
      const largest = Math.max(...values.map(Math.abs));
      assert.ok(largest <= bound, `${variable.name}: |value| ${largest} exceeds ${bound}`);
      assert.ok(largest > 0.5 * bound, `${variable.name}: values stay below half of ${bound}`);
    }
    for (const variable of [layer.outputFilter, layer.outputBias, layer.outputLogScale]) {
      assert.ok(variable.dataSync().every((value) => value === 0), `${variable.name} must start at 0`);
    }
    layer.dispose();
  });

  test('coupling rejects odd channels and unknown activations', () => {
    const random = new RandomStream(1);
    assert.throws(() => new AffineCouplingLayer({ inputShape: [2, 2, 3], random }), /channel count must be even/);
    assert.throws(
      () => new AffineCouplingLayer({ inputShape: [2, 2, 2], random, activation: 'tanh' as 'relu' }),
      /activation must be 'leaky-relu' or 'relu', received 'tanh'/,
    );
    assert.throws(() => new AffineCouplingLayer({ inputShape: [2, 2, 2], random, width: 0 }), /width must be a positive integer/);
  });
});
