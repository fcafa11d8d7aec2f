// The toy layers and models through the shared bijection kit, plus their specific properties.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { RandomStream } from '../../src/random/stream.js';
import { logAbsDetFloat64 } from '../../src/tensor/linalg.js';
import { CouplingNetwork, elu } from '../../src/toys/coupling-network.js';
import { createCouplingFlow2d } from '../../src/toys/coupling-flow.js';
import { randomOrthogonal, randomSemiOrthogonal } from '../../src/toys/init.js';
import { MaskedAffineCoupling, MaskedLinearLayer, maskValues, ToyActNorm, ToyLinearLayer } from '../../src/toys/layers.js';
import { createLinearNet, LINEAR_NET_MASKS, type LinearNetMask } from '../../src/toys/linear-net.js';
import type { ToyFlow } from '../../src/toys/toy-flow.js';
import { derivative } from '../helpers/finite-difference.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';
import { registerFlowKit, registerLayerKit } from '../helpers/bijection-kit.js';

function coupling(random: RandomStream, mask: number[], shiftActivation: 'swish' | 'elu', hidden = 8): MaskedAffineCoupling {
  const options = { dimension: 2, hidden, hiddenLayers: 2 };
  const scale = new CouplingNetwork({ ...options, activation: 'swish' }, random);
  const shift = new CouplingNetwork({ ...options, activation: shiftActivation }, null, scale.readValues());
  return new MaskedAffineCoupling({ name: 'coupling[0]', mask }, scale, shift);
}

/**
 * Creates a linear network whose matrices are I + 0.2·N(0, 1)/√D before masking. The orthogonal
 * initialisation masked to a triangle can leave diagonal entries near 0, and the kit's float32
 * inverse and finite differences cannot resolve such ill-conditioned matrices.
 */
function wellConditionedLinearNet(random: RandomStream, mask: LinearNetMask): ToyFlow {
  const model = createLinearNet({ random, mask, blocks: 2 });
  for (const layer of model.layers) {
    if (!(layer instanceof MaskedLinearLayer)) continue;
    const values = random.normalArray(100).map((v, k) => (k % 11 === 0 ? 1 : 0) + (0.2 * v) / Math.sqrt(10));
    const replacement = tf.tensor2d(values, [10, 10]);
    layer.weight.assign(replacement);
    replacement.dispose();
  }
  return model;
}

forEachBackend((backend) => {
  registerLayerKit({ name: 'ToyLinearLayer', sampleShape: [2], create: (random) => new ToyLinearLayer({ name: 'linear[0]', random }) }, backend);
  registerLayerKit(
    { name: 'ToyLinearLayer with weight norm', sampleShape: [2], create: (random) => new ToyLinearLayer({ name: 'linear[0]', random, weightNorm: true }) },
    backend,
  );
  registerLayerKit({ name: 'ToyActNorm D=3', sampleShape: [3], create: () => new ToyActNorm({ name: 'actnorm[0]', dimension: 3 }) }, backend);
  registerLayerKit({ name: 'MaskedAffineCoupling m=[0,1] Swish', sampleShape: [2], inputScale: 2, create: (random) => coupling(random, [0, 1], 'swish') }, backend);
  registerLayerKit({ name: 'MaskedAffineCoupling m=[1,0] ELU', sampleShape: [2], inputScale: 2, create: (random) => coupling(random, [1, 0], 'elu', 64) }, backend);
  for (const maskType of ['full', 'lower', 'upper'] as const) {
    registerLayerKit(
      {
        name: `MaskedLinearLayer ${maskType} D=5`,
        sampleShape: [5],
        create: (random) => new MaskedLinearLayer({ name: `linear-${maskType}`, dimension: 5, maskType, init: 'orthogonal', random }),
      },
      backend,
    );
  }
  registerLayerKit(
    { name: 'MaskedLinearLayer lower ones D=4', sampleShape: [4], create: () => new MaskedLinearLayer({ name: 'lower-ones', dimension: 4, maskType: 'lower', init: 'ones' }) },
    backend,
  );

  registerFlowKit({ name: 'CouplingFlow2d, 2 blocks, width 16', sampleShape: [2], inputScale: 2, create: (random) => createCouplingFlow2d({ random, blocks: 2, hidden: 16 }) }, backend);
  registerFlowKit(
    {
      name: 'CouplingFlow2d, 10 blocks, width 64, ELU t_net, weight norm',
      sampleShape: [2],
      batch: 3,
      perturbation: 0.02,
      create: (random) => createCouplingFlow2d({ random, shiftActivation: 'elu', weightNorm: true }),
    },
    backend,
  );
  for (const mask of LINEAR_NET_MASKS) {
    registerFlowKit({ name: `LinearNet ${mask} D=10, 2 blocks`, sampleShape: [10], create: (random) => wellConditionedLinearNet(random, mask) }, backend);
  }

  describe('toy layer properties', () => {
    it('orthogonal initialisation gives WᵀW = I', () => {
      const w = randomOrthogonal(6, new RandomStream(3));
      for (let i = 0; i < 6; i++) {
        for (let j = 0; j < 6; j++) {
          let dot = 0;
          for (let k = 0; k < 6; k++) dot += w[k * 6 + i] * w[k * 6 + j];
          assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-12, `(WᵀW)[${i}, ${j}] = ${dot}`);
        }
      }
    });

    it('semi-orthogonal initialisation has orthonormal columns or rows', () => {
      for (const [rows, cols] of [[2, 64], [64, 64], [64, 2]]) {
        const w = randomSemiOrthogonal(rows, cols, new RandomStream(rows + cols));
        // Gram matrix of the shorter side: WᵀW (cols × cols) when rows ≥ cols, W·Wᵀ otherwise.
        const size = Math.min(rows, cols);
        for (let i = 0; i < size; i++) {
          for (let j = 0; j < size; j++) {
            let dot = 0;
            if (rows >= cols) for (let k = 0; k < rows; k++) dot += w[k * cols + i] * w[k * cols + j];
            else for (let k = 0; k < cols; k++) dot += w[i * cols + k] * w[j * cols + k];
            assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-12, `${rows}×${cols}: Gram[${i}, ${j}] = ${dot}`);
          }
        }
      }
    });

    it('MLP weights are orthogonal by default and uniform on request', () => {
      const options = { dimension: 2, hidden: 64, hiddenLayers: 2, activation: 'swish' as const };
      const orthogonal = new CouplingNetwork(options, new RandomStream(1));
      const hidden = orthogonal.weights[1].dataSync();
      let columnNorm = 0;
      for (let k = 0; k < 64; k++) columnNorm += hidden[k * 64] ** 2;
      assert.ok(Math.abs(columnNorm - 1) < 1e-5, `a 64×64 weight column has norm² ${columnNorm}`);
      const uniform = new CouplingNetwork({ ...options, weightInit: 'uniform' }, new RandomStream(1));
      const values = uniform.weights[1].dataSync();
      assert.ok(values.every((v) => Math.abs(v) <= 1 / 8), 'uniform weights lie within ±1/√64');
      assert.ok(values.some((v) => Math.abs(v) > 0.1), 'uniform weights fill the interval');
      orthogonal.dispose();
      uniform.dispose();
    });

    it('t_net starts as an exact copy of s_net', () => {
      const layer = coupling(new RandomStream(4), [0, 1], 'swish', 64);
      layer.scaleNetwork.weights.forEach((weight, index) => {
        assert.deepEqual(layer.shiftNetwork.weights[index].dataSync(), weight.dataSync(), `weight ${index}`);
        assert.deepEqual(layer.shiftNetwork.biases[index].dataSync(), layer.scaleNetwork.biases[index].dataSync(), `bias ${index}`);
      });
      assert.notEqual(layer.shiftNetwork.weights[0], layer.scaleNetwork.weights[0], 'separate variables');
      layer.dispose();
    });

    it('coupling leaves the masked coordinate unchanged', () => {
      const layer = coupling(new RandomStream(5), [0, 1], 'swish');
      const x = tf.tensor2d([0.3, -1.2, 2, 0.5], [2, 2]);
      const { y, logDet } = layer.forward(x);
      const values = y.dataSync();
      assert.equal(values[1], Math.fround(-1.2));
      assert.equal(values[3], 0.5);
      tf.dispose([x, y, logDet ?? []]);
      layer.dispose();
    });

    it('ActNorm initialisation standardises the batch', () => {
      const actnorm = new ToyActNorm({ name: 'actnorm[0]', dimension: 2 });
      const random = new RandomStream(6);
      const values = random.normalArray(200).map((v, i) => (i % 2 === 0 ? 3 * v + 5 : 0.5 * v - 2));
      const x = tf.tensor2d(values, [100, 2]);
      assert.equal(actnorm.initialized, false);
      actnorm.initializeFromData(x);
      assert.equal(actnorm.initialized, true);
      const { y } = actnorm.forward(x);
      const out = y.dataSync();
      for (let d = 0; d < 2; d++) {
        const column = Array.from({ length: 100 }, (_, i) => out[2 * i + d]);
        const mean = column.reduce((s, v) => s + v, 0) / 100;
        const variance = column.reduce((s, v) => s + (v - mean) ** 2, 0) / 99;
        assert.ok(Math.abs(mean) < 1e-5, `mean of coordinate ${d} is ${mean}`);
        assert.ok(Math.abs(variance - 1) < 1e-4, `unbiased variance of coordinate ${d} is ${variance}`);
      }
      tf.dispose([x, y]);
      actnorm.dispose();
    });

    it('model initialisation initialises every ActNorm', () => {
      const model = createCouplingFlow2d({ random: new RandomStream(7), blocks: 3, hidden: 8 });
      assert.equal(model.initialized, false);
      const x = tf.tensor2d(new RandomStream(8).normalArray(64), [32, 2]);
      model.initializeFromData(x);
      assert.equal(model.initialized, true);
      x.dispose();
      model.dispose();
    });

    it('triangular masks give log|det| = Σ ln|diagonal|', () => {
      const random = new RandomStream(9);
      for (const maskType of ['full', 'lower', 'upper'] as const) {
        const layer = new MaskedLinearLayer({ name: maskType, dimension: 10, maskType, init: 'orthogonal', random });
        const perturbed = tf.tidy(() => tf.add(layer.weight, tf.mul(tf.tensor2d(random.normalArray(100), [10, 10]), 0.3)) as tf.Tensor2D);
        layer.weight.assign(perturbed);
        perturbed.dispose();
        const masked = tf.tidy(() => layer.maskedWeight().dataSync());
        const expected = logAbsDetFloat64(Float64Array.from(masked), 10);
        if (maskType !== 'full') {
          let diagonal = 0;
          for (let i = 0; i < 10; i++) diagonal += Math.log(Math.abs(masked[i * 10 + i]));
          assert.ok(Math.abs(diagonal - expected) < 1e-6 * Math.max(1, Math.abs(expected)), `${maskType}: Σ ln|diag| ${diagonal} vs LU ${expected}`);
          const mask = maskValues(10, maskType);
          for (let i = 0; i < 10; i++) {
            for (let j = 0; j < 10; j++) {
              if (mask[i * 10 + j] === 0) assert.equal(Math.abs(masked[i * 10 + j]), 0, `${maskType}: entry (${i}, ${j}) must be masked`);
            }
          }
        }
        const logDet = layer.constantLogDet();
        assert.equal(firstMismatch([logDet.dataSync()[0]], [expected], backend.accumulated, `${maskType} log-det`), null);
        logDet.dispose();
        layer.dispose();
      }
    });

    it('the LU model\'s lower factor starts with determinant 1', () => {
      const layer = new MaskedLinearLayer({ name: 'lower-ones', dimension: 10, maskType: 'lower', init: 'ones' });
      const logDet = layer.constantLogDet();
      assert.equal(logDet.dataSync()[0], 0);
      tf.dispose([logDet]);
      layer.dispose();
    });

    it('ELU matches x or eˣ − 1 to third order', () => {
      const reference = (t: number): number => (t > 0 ? t : Math.exp(t) - 1);
      const first = (f: (x: tf.Tensor) => tf.Tensor) => (x: tf.Tensor) => tf.grad(f)(x);
      for (const point of [-2.1, -0.4, 0.7, 1.9]) {
        const x = tf.scalar(point);
        const values = [elu, first(elu), first(first(elu)), first(first(first(elu)))].map((f) => {
          const out = f(x);
          const value = out.dataSync()[0];
          out.dispose();
          return value;
        });
        assert.ok(Math.abs(values[0] - reference(point)) < 1e-6, `elu(${point})`);
        for (const order of [1, 2, 3] as const) {
          const expected = derivative(reference, point, order);
          assert.ok(Math.abs(values[order] - expected) < 2e-4 * Math.max(1, Math.abs(expected)), `order ${order} at ${point}: ${values[order]} vs ${expected}`);
        }
        x.dispose();
      }
    });
  });
});
