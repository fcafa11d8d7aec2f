import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { createFcFlow } from '../../src/models/fc-flow.js';
import { forwardThroughLayers } from '../../src/models/flow-core.js';
import { energyDerivativesOf, nestedEnergyDerivatives } from '../../src/objectives/derivatives.js';
import { RandomStream } from '../../src/random/stream.js';
import { firstMismatch, forEachBackend, type Tolerance } from '../helpers/backends.js';
import { gradient as numericalGradient, hessianVectorProduct } from '../helpers/finite-difference.js';
import {
  assignValues,
  createFcFixture,
  disposeModel,
  randomRows,
  rowsToTensor,
} from '../reference/fc-fixture.js';
import {
  referenceDerivatives,
  referenceEnergy,
  referenceHessianVector,
  referenceLogNormalizer,
  referenceLogProb,
} from '../reference/fc-reference.js';

const CASES = [
  { dimension: 8, depth: 2, residual: false, seed: 21 },
  { dimension: 6, depth: 3, residual: true, seed: 22 },
] as const;

/** Derivatives pass through several float32 products (observed errors: below 3e-7 of the largest entry). */
const DERIVATIVE_TOLERANCE: Tolerance = { relative: 2e-5, absolute: 2e-5 };

function flat(rows: Float64Array[]): number[] {
  return rows.flatMap((row) => Array.from(row));
}

forEachBackend((backend) => {
  for (const settings of CASES) {
    const label = `L = ${settings.depth}, D = ${settings.dimension}, residual ${settings.residual}`;

    it(`energy matches float64 (${label})`, () => {
      const { model, reference } = createFcFixture(settings);
      const rows = randomRows(new RandomStream(1), 4, settings.dimension, 1.5);
      const x = rowsToTensor(rows);
      const energy = model.energy(x);
      const expected = rows.map((row) => referenceEnergy(reference, row));
      assert.equal(firstMismatch(energy.dataSync(), expected, backend.accumulated, 'E'), null);
      tf.dispose([x, energy]);
      disposeModel(model);
    });

    it(`explicit score and HVP match finite differences (${label})`, () => {
      const { model, reference } = createFcFixture(settings);
      const rows = randomRows(new RandomStream(2), 3, settings.dimension, 1.5);
      const directions = randomRows(new RandomStream(3), 3, settings.dimension);
      const x = rowsToTensor(rows);
      const v = rowsToTensor(directions);
      const result = model.energyDerivatives(x, v);

      const energyOf = (point: Float64Array): number => referenceEnergy(reference, point);
      const expectedEnergy = rows.map(energyOf);
      const expectedGradient = flat(rows.map((row) => numericalGradient(energyOf, row)));
      const expectedHv = flat(rows.map((row, r) => hessianVectorProduct(energyOf, row, directions[r])));
      assert.equal(firstMismatch(result.energy.dataSync(), expectedEnergy, backend.accumulated, 'E'), null);
      assert.equal(firstMismatch(result.gradient.dataSync(), expectedGradient, DERIVATIVE_TOLERANCE, '∇E'), null);
      assert.ok(result.hessianVector !== undefined);
      assert.equal(firstMismatch(result.hessianVector.dataSync(), expectedHv, DERIVATIVE_TOLERANCE, 'Hv'), null);

      // The closed-form reference agrees as well.
      const referenceHv = flat(rows.map((row, r) => referenceHessianVector(reference, row, directions[r])));
      assert.equal(firstMismatch(result.hessianVector.dataSync(), referenceHv, DERIVATIVE_TOLERANCE, 'Hv'), null);
      tf.dispose([x, v, result.energy, result.gradient, result.hessianVector]);
      disposeModel(model);
    });

    it(`nested tf.grad path agrees with explicit path (${label})`, () => {
      const { model, reference } = createFcFixture(settings);
      const rows = randomRows(new RandomStream(4), 3, settings.dimension, 1.5);
      const x = rowsToTensor(rows);
      const v = rowsToTensor(randomRows(new RandomStream(5), 3, settings.dimension));
      const explicit = model.energyDerivatives(x, v);
      const nested = nestedEnergyDerivatives(model, x, v);
      assert.equal(firstMismatch(nested.energy.dataSync(), explicit.energy.dataSync(), backend.accumulated, 'E'), null);
      assert.equal(firstMismatch(nested.gradient.dataSync(), explicit.gradient.dataSync(), DERIVATIVE_TOLERANCE, '∇E'), null);
      assert.ok(nested.hessianVector !== undefined);
      assert.ok(explicit.hessianVector !== undefined);
      assert.equal(
        firstMismatch(nested.hessianVector.dataSync(), explicit.hessianVector.dataSync(), DERIVATIVE_TOLERANCE, 'Hv'),
        null,
      );
      const expectedGradient = flat(rows.map((row) => referenceDerivatives(reference, row).gradient));
      assert.equal(firstMismatch(nested.gradient.dataSync(), expectedGradient, DERIVATIVE_TOLERANCE, '∇E'), null);

      // Without a direction both paths return no HVP.
      const scoreOnly = nestedEnergyDerivatives(model, x);
      assert.equal(scoreOnly.hessianVector, undefined);
      assert.equal(firstMismatch(scoreOnly.gradient.dataSync(), expectedGradient, DERIVATIVE_TOLERANCE, '∇E'), null);
      tf.dispose([x, v, explicit.energy, explicit.gradient, explicit.hessianVector!, nested.energy, nested.gradient]);
      tf.dispose([nested.hessianVector!, scoreOnly.energy, scoreOnly.gradient]);
      disposeModel(model);
    });

    it(`constant-input energy equals energy (${label})`, () => {
      const { model } = createFcFixture(settings);
      const x = rowsToTensor(randomRows(new RandomStream(11), 4, settings.dimension, 1.5));
      const weights = tf.tensor1d([0.3, -1.2, 0.7, 2]);
      const generic = tf.variableGrads(() => tf.sum(tf.mul(model.energy(x), weights)), model.variables);
      const constant = tf.variableGrads(() => tf.sum(tf.mul(model.constantInputEnergy(x), weights)), model.variables);
      assert.equal(firstMismatch(constant.value.dataSync(), generic.value.dataSync(), backend.accumulated, 'Σ wE'), null);
      for (const variable of model.variables) {
        const expected = generic.grads[variable.name].dataSync();
        assert.equal(firstMismatch(constant.grads[variable.name].dataSync(), expected, DERIVATIVE_TOLERANCE, variable.name), null);
      }
      tf.dispose([x, weights, generic.value, constant.value, ...Object.values(generic.grads), ...Object.values(constant.grads)]);
      disposeModel(model);
    });

    it(`score-loss gradients of variable subsets (${label})`, () => {
      const { model } = createFcFixture(settings);
      const x = rowsToTensor(randomRows(new RandomStream(12), 4, settings.dimension, 1.5));
      const v = rowsToTensor(randomRows(new RandomStream(13), 4, settings.dimension));
      // A loss on the score and the HVP, so every weight is used forward and backward.
      const lossOf = (explicit: boolean) => (): tf.Scalar => {
        const { gradient, hessianVector } = energyDerivativesOf(model, x, v, explicit);
        return tf.add(tf.sum(tf.square(gradient)), tf.sum(tf.mul(hessianVector!, v))) as tf.Scalar;
      };
      const last = model.denseLayers[settings.depth - 1]!;
      const subsets = [[last.bias], [model.denseLayers[0]!.weight], [last.weight, last.bias], model.variables];
      const tensorsBefore = tf.memory().numTensors;
      for (const subset of subsets) {
        const explicit = tf.variableGrads(lossOf(true), subset);
        const nested = tf.variableGrads(lossOf(false), subset);
        for (const variable of subset) {
          // Third-order float32 terms: errors are relative to the largest entry, not to each one.
          const expected = nested.grads[variable.name]!.dataSync();
          const largest = Array.from(expected).reduce((m, value) => Math.max(m, Math.abs(value)), 0);
          const tolerance = { relative: 0, absolute: DERIVATIVE_TOLERANCE.relative * largest + DERIVATIVE_TOLERANCE.absolute };
          assert.equal(firstMismatch(explicit.grads[variable.name]!.dataSync(), expected, tolerance, variable.name), null);
        }
        tf.dispose([explicit.value, nested.value, ...Object.values(explicit.grads), ...Object.values(nested.grads)]);
      }
      assert.equal(tf.memory().numTensors, tensorsBefore, 'tensors left after the gradients');
      tf.dispose([x, v]);
      disposeModel(model);
    });

    it(`log Z and log p match float64 (${label})`, () => {
      const { model, reference } = createFcFixture(settings);
      const rows = randomRows(new RandomStream(6), 3, settings.dimension);
      const x = rowsToTensor(rows);
      const logZ = model.logNormalizer();
      const logProb = model.logProb(x);
      const expectedLogZ = referenceLogNormalizer(reference);
      assert.equal(firstMismatch(logZ.dataSync(), [expectedLogZ], backend.accumulated, 'log Z'), null);
      const expected = rows.map((row) => referenceLogProb(reference, row));
      assert.equal(firstMismatch(logProb.dataSync(), expected, backend.accumulated, 'log p'), null);
      tf.dispose([x, logZ, logProb]);
      disposeModel(model);
    });

    it(`inverse undoes the forward map (${label})`, () => {
      const { model } = createFcFixture(settings);
      const x = rowsToTensor(randomRows(new RandomStream(7), 5, settings.dimension, 2));
      const { z, logDet } = forwardThroughLayers(model.layers, x);
      const back = model.inverse(z);
      assert.equal(firstMismatch(back.dataSync(), x.dataSync(), DERIVATIVE_TOLERANCE, 'x'), null);
      tf.dispose([x, z, back]);
      if (logDet !== null) logDet.dispose();
      disposeModel(model);
    });
  }

  it('log p of an identity-like model equals a hand computation', () => {
    // W₀ = 2I, b₀ = 0, then the SLR (α = 0.3), then W₁ = −I, b₁ = 1 (the initial values).
    const model = createFcFlow({ dimension: 3, depth: 2, residual: false });
    assignValues(model.denseLayers[0].weight, tf.tidy(() => tf.mul(tf.eye(3), 2)));
    assignValues(model.denseLayers[0].bias, tf.zeros([3]));
    const input = [0.5, -1, 2];
    let expected = -1.5 * Math.log(2 * Math.PI) + 3 * Math.log(2);
    for (const value of input) {
      const h = 2 * value;
      const softplus = Math.log1p(Math.exp(h));
      const slope = 0.3 + 0.7 / (1 + Math.exp(-h));
      const z = 1 - (0.3 * h + 0.7 * softplus);
      expected += -0.5 * z * z + Math.log(slope);
    }
    const x = tf.tensor2d([input]);
    const logProb = model.logProb(x);
    assert.ok(Math.abs(logProb.dataSync()[0] - expected) < 1e-5, `${logProb.dataSync()[0]} vs ${expected}`);
    tf.dispose([x, logProb]);
    disposeModel(model);
  });

  it('energy accepts image-shaped samples and keeps their shape', () => {
    const { model, reference } = createFcFixture({ dimension: 8, depth: 2, residual: true, seed: 30 });
    const rows = randomRows(new RandomStream(8), 2, 8);
    const images = tf.tidy(() => tf.reshape(rowsToTensor(rows), [2, 2, 2, 2]));
    const result = model.energyDerivatives(images);
    assert.deepEqual(result.gradient.shape, [2, 2, 2, 2]);
    const expected = flat(rows.map((row) => referenceDerivatives(reference, row).gradient));
    assert.equal(firstMismatch(result.gradient.dataSync(), expected, DERIVATIVE_TOLERANCE, '∇E'), null);
    const wrong = tf.zeros([2, 9]);
    assert.throws(() => model.energy(wrong), /FcFlow\.energy: each sample must have 8 elements, received shape \[2, 9\]/);
    tf.dispose([images, result.energy, result.gradient, wrong]);
    disposeModel(model);
  });

  it('inverse returns samples of the configured sample shape', () => {
    const model = createFcFlow({ dimension: 4, depth: 2, residual: false, sampleShape: [2, 2, 1] });
    const z = tf.tensor2d([[0.1, -0.2, 0.3, 1.2]]);
    const x = model.inverse(z);
    assert.deepEqual(x.shape, [1, 2, 2, 1]);
    const energy = model.energy(x);
    assert.ok(Number.isFinite(energy.dataSync()[0]));
    tf.dispose([z, x, energy]);
    disposeModel(model);
  });

  it('FC flow rejects invalid options', () => {
    assert.throws(() => createFcFlow({ dimension: 4, depth: 0, residual: false }), /depth .* must be an integer ≥ 1, received 0/);
    assert.throws(() => createFcFlow({ dimension: 4, depth: 2, residual: false, sampleShape: [3] }), /sampleShape \[3\] has 3 elements/);
  });

  it('explicit derivatives leak no tensors under variableGrads', () => {
    const { model } = createFcFixture({ dimension: 6, depth: 3, residual: false, seed: 40 });
    const x = rowsToTensor(randomRows(new RandomStream(9), 3, 6));
    const v = rowsToTensor(randomRows(new RandomStream(10), 3, 6));
    const run = (): void => {
      const { value, grads } = tf.variableGrads(() => {
        const { gradient, hessianVector } = model.energyDerivatives(x, v);
        return tf.add(tf.sum(tf.square(gradient)), tf.sum(hessianVector!)) as tf.Scalar;
      });
      tf.dispose([value, ...Object.values(grads)]);
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, v]);
    disposeModel(model);
  });
});
