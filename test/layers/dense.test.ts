import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { DenseLayer } from '../../src/layers/dense.js';
import { RandomStream } from '../../src/random/stream.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';
import { referenceLogAbsDet } from '../reference/fc-reference.js';
import { assignValues, disposeModel } from '../reference/fc-fixture.js';

/** Creates a layer with W = −I + 0.4·N(0,1)/√D and b = N(0,1); returns it with its W and b values. */
function randomLayer(dimension: number, seed: number): { layer: DenseLayer; w: Float32Array; b: Float32Array } {
  const random = new RandomStream(seed);
  const layer = new DenseLayer({ dimension, name: 'dense[test]' });
  const w = random.normalArray(dimension * dimension).map((value) => (0.4 * value) / Math.sqrt(dimension));
  for (let i = 0; i < dimension; i++) w[i * dimension + i] -= 1;
  const b = random.normalArray(dimension);
  assignValues(layer.weight, tf.tensor2d(w, [dimension, dimension]));
  assignValues(layer.bias, tf.tensor1d(b));
  return { layer, w, b };
}

forEachBackend((backend) => {
  it('dense starts at W = −I and b = 1', () => {
    const layer = new DenseLayer({ dimension: 4, name: 'dense[0]' });
    const w = layer.weight.dataSync();
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) assert.equal(w[i * 4 + j], i === j ? -1 : 0);
    }
    assert.deepEqual(Array.from(layer.bias.dataSync()), [1, 1, 1, 1]);
    assert.equal(layer.constantJacobian, true);
    assert.equal(layer.variables.length, 2);
    disposeModel(layer);
  });

  it('dense forward computes W x + b per row with no log-det', () => {
    const dimension = 7;
    const { layer, w, b } = randomLayer(dimension, 1);
    const random = new RandomStream(2);
    const x = random.normalArray(3 * dimension);
    const expected = new Float64Array(3 * dimension);
    for (let r = 0; r < 3; r++) {
      for (let i = 0; i < dimension; i++) {
        let total = b[i];
        for (let j = 0; j < dimension; j++) total += w[i * dimension + j] * x[r * dimension + j];
        expected[r * dimension + i] = total;
      }
    }
    const input = tf.tensor2d(x, [3, dimension]);
    const { y, logDet } = layer.forward(input);
    assert.equal(logDet, null);
    assert.equal(firstMismatch(y.dataSync(), expected, backend.accumulated, 'y'), null);
    tf.dispose([input, y]);
    disposeModel(layer);
  });

  it('dense inverse undoes forward', () => {
    const dimension = 9;
    const { layer } = randomLayer(dimension, 3);
    const x = tf.tensor2d(new RandomStream(4).normalArray(4 * dimension), [4, dimension]);
    const { y } = layer.forward(x);
    const back = layer.inverse(y);
    assert.equal(firstMismatch(back.dataSync(), x.dataSync(), backend.accumulated, 'x'), null);
    tf.dispose([x, y, back]);
    disposeModel(layer);
  });

  it('dense log-det equals the float64 log|det W|', () => {
    const dimension = 12;
    const { layer, w } = randomLayer(dimension, 5);
    const logDet = layer.constantLogDet();
    const expected = referenceLogAbsDet(w, dimension);
    assert.ok(Math.abs(logDet.dataSync()[0] - expected) < 1e-5 * (1 + Math.abs(expected)), `${logDet.dataSync()[0]} vs ${expected}`);
    logDet.dispose();
    disposeModel(layer);
  });

  it('dense rejects a batch of the wrong width', () => {
    const layer = new DenseLayer({ dimension: 3, name: 'dense[0]' });
    const x = tf.zeros([2, 4]);
    assert.throws(() => layer.forward(x), /DenseLayer "dense\[0\]"\.forward: expected a batch of shape \[B, 3\], received \[2, 4\]/);
    x.dispose();
    disposeModel(layer);
  });
});
