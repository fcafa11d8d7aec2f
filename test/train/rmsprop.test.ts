import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';

import { RmsProp } from '../../src/train/rmsprop.js';

/** PyTorch's RMSprop update (no momentum, not centred) in float64, for one parameter vector. */
function pytorchStep(
  parameter: number[],
  gradient: number[],
  average: number[],
  options: { learningRate: number; rho: number; epsilon: number; weightDecay: number },
): void {
  for (let i = 0; i < parameter.length; i++) {
    const g = gradient[i] + options.weightDecay * parameter[i];
    average[i] = options.rho * average[i] + (1 - options.rho) * g * g;
    parameter[i] -= (options.learningRate * g) / (Math.sqrt(average[i]) + options.epsilon);
  }
}

function assertClose(actual: ArrayLike<number>, expected: number[], tolerance: number, label: string): void {
  assert.equal(actual.length, expected.length, `${label} length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `${label}[${i}] = ${actual[i]}, expected ${expected[i]}`);
  }
}

describe('RMSprop', () => {
  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  it('matches the PyTorch update over two steps', () => {
    const initial = [1.0, -2.0, 0.25, 3.0];
    const gradients = [
      [0.5, 0.1, -4.0, 0.0],
      [-0.3, 0.2, 1.0, 2.0],
    ];
    const options = { learningRate: 0.01, rho: 0.99, epsilon: 1e-8, weightDecay: 0.1 };
    const variable = tf.variable(tf.tensor1d(initial));
    const optimizer = new RmsProp([variable], { learningRate: options.learningRate, weightDecay: options.weightDecay });

    const expected = [...initial];
    const average = [0, 0, 0, 0];
    for (const gradient of gradients) {
      const g = tf.tensor1d(gradient);
      optimizer.apply([g]);
      g.dispose();
      pytorchStep(expected, gradient, average, options);
      assertClose(variable.dataSync(), expected, 2e-6, 'parameter');
    }
    assertClose(optimizer.getState().squareAverages[0], average, 1e-6, 'square average');
    assert.equal(optimizer.updateCount, 2);
    optimizer.dispose();
    variable.dispose();
  });

  it('adds epsilon after the square root', () => {
    // v = (1 − ρ)g², so the first step is lr·g/(√0.01·|g| + ε). With ε inside the root (tfjs's
    // RMSProp) the small gradient would move by 7.1e-3 instead of 1.0e-2.
    const variable = tf.variable(tf.tensor1d([0, 0]));
    const optimizer = new RmsProp([variable], { learningRate: 1e-3 });
    const g = tf.tensor1d([5, -1e-3]);
    optimizer.apply([g]);
    const moved = variable.dataSync();
    const expected = [5, -1e-3].map((gi) => (-1e-3 * gi) / (Math.sqrt(0.01 * gi * gi) + 1e-8));
    assert.ok(Math.abs(moved[0] - expected[0]) < 3e-9, `moved ${moved[0]}, expected ${expected[0]}`);
    assert.ok(Math.abs(moved[1] - expected[1]) < 3e-9, `moved ${moved[1]}, expected ${expected[1]}`);
    g.dispose();
    optimizer.dispose();
    variable.dispose();
  });

  it('restores its state', () => {
    const variable = tf.variable(tf.tensor1d([1, 2, 3]));
    const optimizer = new RmsProp([variable], { learningRate: 0.1 });
    const g = tf.tensor1d([1, -1, 2]);
    optimizer.apply([g]);
    const state = optimizer.getState();

    // The parameters themselves are the model's to save; copy them alongside the state.
    const copy = tf.variable(variable.clone());
    const restored = new RmsProp([copy], { learningRate: 0.1 });
    restored.setState(state);
    optimizer.apply([g]);
    restored.apply([g]);
    assertClose(copy.dataSync(), Array.from(variable.dataSync()), 0, 'after restore');
    assert.equal(restored.updateCount, 2);
    assert.throws(() => restored.setState({ updates: 1, squareAverages: [new Float32Array(2)] }), /squareAverages\[0\] has 2 values/);
    [g, variable, copy].forEach((t) => t.dispose());
    optimizer.dispose();
    restored.dispose();
  });

  it('rejects mismatched gradients before changing anything', () => {
    const a = tf.variable(tf.tensor1d([1, 2]));
    const b = tf.variable(tf.tensor1d([3]));
    const optimizer = new RmsProp([a, b], { learningRate: 0.1 });
    const good = tf.tensor1d([1, 1]);
    const bad = tf.tensor1d([1, 1]);
    assert.throws(() => optimizer.apply([good, bad]), /gradient 1 has shape \[2\]/);
    assert.deepEqual(Array.from(a.dataSync()), [1, 2]);
    assert.throws(() => optimizer.apply([good]), /received 1 gradients for 2 variables/);
    [a, b, good, bad].forEach((t) => t.dispose());
    optimizer.dispose();
  });

  it('leaks no tensors', () => {
    const variable = tf.variable(tf.tensor2d([[1, 2], [3, 4]]));
    const g = tf.ones([2, 2]);
    const beforeCreation = tf.memory().numTensors;
    const optimizer = new RmsProp([variable], { learningRate: 0.1, weightDecay: 0.01 });
    optimizer.apply([g]);
    const beforeUpdates = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) optimizer.apply([g]);
    assert.equal(tf.memory().numTensors, beforeUpdates, 'after updates');
    optimizer.dispose();
    assert.equal(tf.memory().numTensors, beforeCreation, 'after dispose');
    g.dispose();
    variable.dispose();
  });
});
