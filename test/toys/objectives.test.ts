import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { RandomStream } from '../../src/random/stream.js';
import { createCouplingFlow2d } from '../../src/toys/coupling-flow.js';
import { ToyLinearLayer } from '../../src/toys/layers.js';
import { DEFAULT_TOY_OBJECTIVE_SETTINGS, getToyObjective, type ToyBatch } from '../../src/toys/objectives.js';
import type { ToyFlow } from '../../src/toys/toy-flow.js';
import { derivative } from '../helpers/finite-difference.js';
import { forEachBackend } from '../helpers/backends.js';

const LOG_TWO_PI = Math.log(2 * Math.PI);

/** Creates a flow that is the single affine map z = W x + b, so q = N(−W⁻¹b, (WᵀW)⁻¹). */
function gaussianFlow(w: number[], b: number[]): ToyFlow {
  const model = createCouplingFlow2d({ random: new RandomStream(0), blocks: 0 });
  const layer = model.layers[0] as ToyLinearLayer;
  tf.tidy(() => {
    layer.weight.assign(tf.tensor2d(w, [2, 2]));
    layer.bias.assign(tf.tensor1d(b));
  });
  return model;
}

/** z = W x + b, ∇E = Wᵀz and ∇²E = WᵀW for the Gaussian flow's energy E = ½‖z‖² + ln 2π. */
function affine(w: number[], b: number[], x: number[]) {
  const z = [w[0] * x[0] + w[1] * x[1] + b[0], w[2] * x[0] + w[3] * x[1] + b[1]];
  const gradient = [w[0] * z[0] + w[2] * z[1], w[1] * z[0] + w[3] * z[1]];
  const hessian = [w[0] * w[0] + w[2] * w[2], w[0] * w[1] + w[2] * w[3], w[0] * w[1] + w[2] * w[3], w[1] * w[1] + w[3] * w[3]];
  const energy = 0.5 * (z[0] ** 2 + z[1] ** 2) + LOG_TWO_PI;
  return { z, gradient, hessian, energy };
}

function row(values: ArrayLike<number>, i: number): number[] {
  return [values[2 * i], values[2 * i + 1]];
}

function scalarOf(tensor: tf.Tensor): number {
  const value = tensor.dataSync()[0];
  tensor.dispose();
  return value;
}

function assertClose(actual: number, expected: number, relative: number, label: string): void {
  assert.ok(Math.abs(actual - expected) <= relative * Math.max(1, Math.abs(expected)), `${label}: ${actual}, expected ${expected}`);
}

forEachBackend(() => {
  describe('toy objectives on a Gaussian flow', () => {
    const w = [1.3, -0.4, 0.2, 0.8];
    const b = [0.3, -0.5];
    const settings = { ...DEFAULT_TOY_OBJECTIVE_SETTINGS };
    const rows = 6;

    function batchOf(seed: number): { batch: ToyBatch; points: Float32Array; noise: Float32Array } {
      const random = new RandomStream(seed);
      const points = random.normalArray(rows * 2);
      const noise = random.normalArray(rows * 2);
      return { batch: { points: tf.tensor2d(points, [rows, 2]), noise: tf.tensor2d(noise, [rows, 2]) }, points, noise };
    }

    it('ml is −mean log N(Wx + b) − ln|det W|', () => {
      const model = gaussianFlow(w, b);
      const { batch, points } = batchOf(1);
      const loss = scalarOf(getToyObjective('ml').loss(model, batch, settings));
      let expected = 0;
      for (let i = 0; i < rows; i++) expected += affine(w, b, row(points, i)).energy;
      expected = expected / rows - Math.log(Math.abs(w[0] * w[3] - w[1] * w[2]));
      assertClose(loss, expected, 1e-5, 'ml loss');
      tf.dispose(Object.values(batch));
      model.dispose();
    });

    it('dsm is mean ½‖n/σ − ∇E(x)‖²', () => {
      const model = gaussianFlow(w, b);
      const { batch, points, noise } = batchOf(2);
      const loss = scalarOf(getToyObjective('dsm').loss(model, batch, settings));
      let expected = 0;
      for (let i = 0; i < rows; i++) {
        const { gradient } = affine(w, b, row(points, i));
        const [n0, n1] = row(noise, i);
        expected += 0.5 * ((n0 / settings.noiseStd - gradient[0]) ** 2 + (n1 / settings.noiseStd - gradient[1]) ** 2);
      }
      assertClose(loss, expected / rows, 1e-5, 'dsm loss');
      tf.dispose(Object.values(batch));
      model.dispose();
    });

    it('ssm is mean ½‖∇E‖² − vᵀ∇²E v', () => {
      const model = gaussianFlow(w, b);
      const { batch, points } = batchOf(3);
      const objective = getToyObjective('ssm');
      Object.assign(batch, objective.prepare(model, batch, new RandomStream(4), settings));
      const directions = batch.directions.dataSync();
      assert.ok(Array.from(directions).every((v) => v === 1 || v === -1), 'Rademacher directions');
      const loss = scalarOf(objective.loss(model, batch, settings));
      let expected = 0;
      for (let i = 0; i < rows; i++) {
        const { gradient, hessian } = affine(w, b, row(points, i));
        const [v0, v1] = row(directions, i);
        const curvature = v0 * (hessian[0] * v0 + hessian[1] * v1) + v1 * (hessian[2] * v0 + hessian[3] * v1);
        expected += 0.5 * (gradient[0] ** 2 + gradient[1] ** 2) - curvature;
      }
      assertClose(loss, expected / rows, 1e-5, 'ssm loss');
      tf.dispose(Object.values(batch));
      model.dispose();
    });

    // For a quadratic energy, fdssm is (D/ε²)·mean[(vᵀ∇E)²/2 − vᵀ∇²E v] with ‖v‖ = ε.
    it('fdssm matches its quadratic closed form', () => {
      const model = gaussianFlow(w, b);
      const { batch, points } = batchOf(5);
      const objective = getToyObjective('fdssm');
      Object.assign(batch, objective.prepare(model, batch, new RandomStream(6), settings));
      const directions = batch.directions.dataSync();
      const loss = scalarOf(objective.loss(model, batch, settings));
      let expected = 0;
      for (let i = 0; i < rows; i++) {
        const [v0, v1] = row(directions, i);
        assertClose(Math.hypot(v0, v1), settings.epsilon, 1e-6, `‖v_${i}‖`);
        const { gradient, hessian } = affine(w, b, row(points, i));
        const slope = v0 * gradient[0] + v1 * gradient[1];
        const curvature = v0 * (hessian[0] * v0 + hessian[1] * v1) + v1 * (hessian[2] * v0 + hessian[3] * v1);
        // (E₊ − E₋)²/8 = (2vᵀ∇E)²/8 and 2E₀ − E₊ − E₋ = −vᵀ∇²E v exactly for a quadratic E.
        expected += slope ** 2 / 2 - curvature;
      }
      // The finite differences cancel in float32, so the tolerance is looser.
      assertClose(loss, ((2 / settings.epsilon ** 2) * expected) / rows, 2e-3, 'fdssm loss');
      tf.dispose(Object.values(batch));
      model.dispose();
    });

    it('sml is mean[E(x) − E(x̂)] over B rows with x̂ = g⁻¹(z)', () => {
      const model = gaussianFlow(w, b);
      const { batch, points } = batchOf(7);
      const objective = getToyObjective('sml');
      Object.assign(batch, objective.prepare(model, batch, new RandomStream(8), settings));
      const samples = batch.samples.dataSync();
      // The samples are g⁻¹(z) for z ~ N(0, I) drawn from the same stream.
      const latents = new RandomStream(8).normalArray(rows * 2);
      for (let i = 0; i < rows; i++) {
        const { z } = affine(w, b, row(samples, i));
        assertClose(z[0], latents[2 * i], 1e-5, `z[${i}][0]`);
        assertClose(z[1], latents[2 * i + 1], 1e-5, `z[${i}][1]`);
      }
      const loss = scalarOf(objective.loss(model, batch, settings));
      let expected = 0;
      for (let i = 0; i < rows; i++) expected += affine(w, b, row(points, i)).energy - affine(w, b, row(samples, i)).energy;
      assertClose(loss, expected / rows, 1e-5, 'sml loss');
      tf.dispose(Object.values(batch));
      model.dispose();
    });
  });

  describe('toy objective θ-gradients on a coupling flow', () => {
    /**
     * Compares ⟨∇θL, u⟩ from autodiff with the float64 finite difference of t ↦ L(θ + t·u) for a
     * random direction u. The SSM loss differentiates the energy three times (twice in x, once in
     * θ), so this checks every activation's third derivative on the path. FDSSM uses ε = 1 here:
     * at ε = 0.1 its (D/ε²)-scaled differences of float32 energies are too noisy for the check.
     */
    function checkDirectionalDerivative(name: 'ssm' | 'dsm' | 'fdssm' | 'ml', shiftActivation: 'swish' | 'elu'): void {
      const random = new RandomStream(11);
      const model = createCouplingFlow2d({ random, blocks: 2, hidden: 8, shiftActivation });
      const points = random.normalArray(16).map((v) => 1.5 * v);
      const batch: ToyBatch = { points: tf.tensor2d(points, [8, 2]), noise: tf.tensor2d(random.normalArray(16), [8, 2]) };
      model.initializeFromData(batch.points);
      const objective = getToyObjective(name);
      const settings = { ...DEFAULT_TOY_OBJECTIVE_SETTINGS, epsilon: name === 'fdssm' ? 1 : DEFAULT_TOY_OBJECTIVE_SETTINGS.epsilon };
      Object.assign(batch, objective.prepare(model, batch, random, settings));
      const loss = (): tf.Scalar => objective.loss(model, batch, settings);

      const directions = model.variables.map((v) => tf.tensor(random.normalArray(v.size), v.shape));
      const { value, grads } = tf.variableGrads(loss, model.variables);
      let analytic = 0;
      model.variables.forEach((variable, i) => {
        const gradient = grads[variable.name].dataSync();
        const direction = directions[i].dataSync();
        for (let k = 0; k < gradient.length; k++) analytic += gradient[k] * direction[k];
      });
      tf.dispose([value, ...Object.values(grads)]);

      const original = model.variables.map((v) => tf.clone(v));
      const lossAt = (t: number): number => {
        tf.tidy(() => model.variables.forEach((variable, i) => variable.assign(tf.add(original[i], tf.mul(directions[i], t)))));
        return scalarOf(loss());
      };
      const numeric = derivative(lossAt, 0, 1, 2e-2);
      tf.tidy(() => model.variables.forEach((variable, i) => variable.assign(original[i])));
      assert.ok(Math.abs(analytic - numeric) <= 5e-3 * Math.max(1, Math.abs(numeric)), `${name} with ${shiftActivation} t_net: autodiff ${analytic}, finite difference ${numeric}`);
      tf.dispose([...original, ...directions, ...Object.values(batch)]);
      model.dispose();
    }

    for (const name of ['ssm', 'dsm', 'fdssm', 'ml'] as const) {
      // ELU's second derivative jumps at 0, so the SSM loss of an ELU t_net jumps in θ wherever a
      // pre-activation crosses 0 and has no finite-difference reference (the authors pair SSM
      // with Swish in every configuration).
      const activations = name === 'ssm' ? (['swish'] as const) : (['swish', 'elu'] as const);
      for (const shiftActivation of activations) {
        it(`${name} θ-gradient, ${shiftActivation} t_net, matches finite differences`, () => checkDirectionalDerivative(name, shiftActivation));
      }
    }
  });
});
