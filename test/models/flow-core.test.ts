import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import type { FlowLayer } from '../../src/layers/layer.js';
import {
  energyThroughLayers,
  flattenSamples,
  logNormalizerOfLayers,
  standardNormalLogDensity,
} from '../../src/models/flow-core.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';

/** Creates a layer y = 2x with log-det D·ln 2, constant-Jacobian or not. */
function doublingLayer(constantJacobian: boolean, withLogDet = true): FlowLayer {
  return {
    name: constantJacobian ? 'double[linear]' : 'double[energy]',
    constantJacobian,
    variables: [],
    forward(x) {
      const y = tf.mul(x, 2);
      if (constantJacobian) return { y, logDet: null };
      return { y, logDet: tf.fill([x.shape[0]], (x.size / x.shape[0]) * Math.log(2)) as tf.Tensor1D };
    },
    inverse: (y) => tf.div(y, 2),
    ...(constantJacobian && withLogDet ? { constantLogDet: () => tf.scalar(3 * Math.log(2)) } : {}),
  };
}

forEachBackend((backend) => {
  it('standard normal log-density sums over every sample axis', () => {
    const z = tf.tensor3d([[[0.5, -1], [2, 0]]]);
    const logDensity = standardNormalLogDensity(z);
    const expected = -0.5 * (0.25 + 1 + 4) - 2 * Math.log(2 * Math.PI);
    assert.equal(firstMismatch(logDensity.dataSync(), [expected], backend.elementwise), null);
    tf.dispose([z, logDensity]);
  });

  it('energy sums only the input-dependent log-dets', () => {
    const layers = [doublingLayer(false), doublingLayer(true)];
    const x = tf.tensor2d([[0.5, -1, 0.25]]);
    const energy = energyThroughLayers(layers, x);
    // z = 4x; E = ½‖z‖² + (3/2)ln 2π − 3 ln 2 (the constant-Jacobian layer's 3 ln 2 is left out).
    const expected = 0.5 * 16 * (0.25 + 1 + 0.0625) + 1.5 * Math.log(2 * Math.PI) - 3 * Math.log(2);
    assert.equal(firstMismatch(energy.dataSync(), [expected], backend.elementwise), null);
    const logZ = logNormalizerOfLayers(layers);
    assert.equal(firstMismatch(logZ.dataSync(), [-3 * Math.log(2)], backend.elementwise), null);
    tf.dispose([x, energy, logZ]);
  });

  it('log normalizer rejects a linear layer without log-det', () => {
    assert.throws(() => logNormalizerOfLayers([doublingLayer(true, false)]), /layer "double\[linear\]" has constantJacobian = true but no constantLogDet\(\)/);
  });

  it('flattenSamples checks the sample size', () => {
    const x = tf.zeros([2, 3, 2]);
    const flat = flattenSamples(x, 6);
    assert.deepEqual(flat.shape, [2, 6]);
    assert.throws(() => flattenSamples(x, 5, 'Model.energy'), /Model\.energy: each sample must have 5 elements, received shape \[2, 3, 2\]/);
    tf.dispose([x, flat]);
  });
});
