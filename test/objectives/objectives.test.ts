import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import type { FcFlow } from '../../src/models/fc-flow.js';
import { getObjective } from '../../src/objectives/index.js';
import { OBJECTIVE_NAMES, type Objective, type ObjectiveOptions, type PreparedBatch } from '../../src/objectives/objective.js';
import { RandomStream } from '../../src/random/stream.js';
import { firstMismatch, forEachBackend, type Tolerance } from '../helpers/backends.js';
import { gradient as numericalGradient } from '../helpers/finite-difference.js';
import { createFcFixture, disposeModel, randomRows, rowsToTensor, tensorToRows } from '../reference/fc-fixture.js';
import {
  type FcReferenceModel,
  flattenParameters,
  referenceInverse,
  withParameters,
} from '../reference/fc-reference.js';
import {
  referenceDsmLoss,
  referenceFdssmDirections,
  referenceFdssmLoss,
  referenceMlLoss,
  referenceSmlLoss,
  referenceSsmLoss,
} from '../reference/losses-reference.js';

const BATCH = 3;
const SEED = 77;

const BASE_OPTIONS: ObjectiveOptions = {
  sigma: 0.4,
  epsilon: 0.3,
  slices: 2,
  energyWeight: 0.05,
  channels: 3,
  explicitDerivatives: true,
};

/** A loss passes through a few dozen float32 products and sums (observed errors: below 2e-6). */
const LOSS_TOLERANCE: Tolerance = { relative: 2e-5, absolute: 1e-5 };

const MODELS = [
  { dimension: 6, depth: 2, residual: false, seed: 51 },
  { dimension: 5, depth: 3, residual: true, seed: 52 },
] as const;

/**
 * Returns the float64 loss of `name` for the reference model, with the objective's random draws
 * reproduced from a stream seeded like the one `prepare` used.
 */
function referenceLoss(
  name: string,
  reference: FcReferenceModel,
  rows: Float64Array[],
  options: ObjectiveOptions,
): number {
  const random = new RandomStream(SEED);
  const dimension = reference.dimension;
  switch (name) {
    case 'ml':
      return referenceMlLoss(reference, rows);
    case 'sml': {
      const latents = randomRows(random, rows.length, dimension);
      return referenceSmlLoss(reference, rows, latents.map((z) => referenceInverse(reference, z)));
    }
    case 'ssm': {
      const count = options.slices * rows.length;
      const signs = random.rademacherArray(count * dimension);
      const directions = Array.from({ length: count }, (_, r) => Float64Array.from(signs.subarray(r * dimension, (r + 1) * dimension)));
      return referenceSsmLoss(reference, rows, directions, options.slices, options);
    }
    case 'dsm':
      return referenceDsmLoss(reference, rows, randomRows(random, rows.length, dimension), options.sigma, options);
    case 'fdssm': {
      const directions = referenceFdssmDirections(randomRows(random, rows.length, dimension), options.epsilon);
      return referenceFdssmLoss(reference, rows, directions, options.epsilon, options.energyWeight);
    }
    default:
      throw new Error(`no reference loss for ${name}`);
  }
}

/** Returns the θ-gradient of the objective's loss, flattened in `model.variables` order, and the loss. */
function lossAndGradient(
  objective: Objective,
  model: FcFlow,
  x: tf.Tensor,
  prepared: PreparedBatch,
  options: ObjectiveOptions,
): { loss: number; gradient: Float64Array; perVariable: Float32Array[] } {
  const { value, grads } = tf.variableGrads(() => objective.loss(model, x, prepared, options), model.variables);
  const perVariable = model.variables.map((variable) => grads[variable.name].dataSync() as Float32Array);
  const loss = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads)]);
  return { loss, gradient: Float64Array.from(perVariable.flatMap((values) => Array.from(values))), perVariable };
}

/** Returns max |actual − expected| / max |expected|. */
function scaledError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return worst / scale;
}

forEachBackend(() => {
  for (const settings of MODELS) {
    const label = `L = ${settings.depth}, D = ${settings.dimension}`;
    for (const name of OBJECTIVE_NAMES) {
      for (const explicit of [true, false]) {
        const path = explicit ? 'explicit' : 'generic';
        it(`${name} loss and θ-gradient match float64 (${label}, ${path})`, () => {
          const objective = getObjective(name);
          const options = { ...BASE_OPTIONS, explicitDerivatives: explicit };
          const { model, reference } = createFcFixture(settings);
          const rows = randomRows(new RandomStream(3), BATCH, settings.dimension, 1.2);
          const x = rowsToTensor(rows);
          const prepared = objective.prepare(model, x, new RandomStream(SEED), options);
          if (name === 'sml') {
            // The samples equal the float64 inverse of the same latents.
            const latents = randomRows(new RandomStream(SEED), BATCH, settings.dimension);
            const expected = latents.flatMap((z) => Array.from(referenceInverse(reference, z)));
            assert.equal(firstMismatch(prepared.samples.dataSync(), expected, { relative: 1e-4, absolute: 1e-4 }, 'x̂'), null);
          }

          const { loss, gradient, perVariable } = lossAndGradient(objective, model, x, prepared, options);
          const expectedLoss = referenceLoss(name, reference, rows, options);
          assert.equal(firstMismatch([loss], [expectedLoss], LOSS_TOLERANCE, `${name} loss`), null);

          // SML's samples depend on θ in the reference function but are constants in the
          // objective, so its θ-gradient is checked with the samples held fixed.
          let lossOfParameters = (flat: Float64Array): number => referenceLoss(name, withParameters(reference, flat), rows, options);
          if (name === 'sml') {
            const samples = tensorToRows(prepared.samples);
            lossOfParameters = (flat) => referenceSmlLoss(withParameters(reference, flat), rows, samples);
          }
          const expectedGradient = numericalGradient(lossOfParameters, flattenParameters(reference));
          const error = scaledError(gradient, expectedGradient);
          assert.ok(error < 5e-5, `${name} θ-gradient: max error ${error.toExponential(2)} of the largest entry`);
          for (const [index, values] of perVariable.entries()) {
            assert.ok(values.some((value) => value !== 0), `${name}: no gradient reaches variable ${index}`);
          }

          tf.dispose([x, ...Object.values(prepared)]);
          disposeModel(model);
        });
      }
    }
  }

  it('explicit and nested θ-gradients agree for ssm and dsm', () => {
    for (const name of ['ssm', 'dsm'] as const) {
      const objective = getObjective(name);
      const { model } = createFcFixture({ dimension: 7, depth: 3, residual: false, seed: 60 });
      const x = rowsToTensor(randomRows(new RandomStream(4), BATCH, 7));
      const prepared = objective.prepare(model, x, new RandomStream(SEED), BASE_OPTIONS);
      const explicit = lossAndGradient(objective, model, x, prepared, BASE_OPTIONS);
      const nested = lossAndGradient(objective, model, x, prepared, { ...BASE_OPTIONS, explicitDerivatives: false });
      assert.equal(firstMismatch([nested.loss], [explicit.loss], LOSS_TOLERANCE, `${name} loss`), null);
      const error = scaledError(nested.gradient, explicit.gradient);
      assert.ok(error < 2e-5, `${name}: explicit and nested θ-gradients differ by ${error.toExponential(2)}`);
      tf.dispose([x, ...Object.values(prepared)]);
      disposeModel(model);
    }
  });

  it('ssm and dsm on a Gaussian model equal their closed forms', () => {
    // One dense layer: E(x) = ½‖Wx + b‖² + (D/2)ln 2π, ∇E = Wᵀ(Wx + b), ∇²E = WᵀW.
    const dimension = 5;
    const { model, reference } = createFcFixture({ dimension, depth: 1, residual: false, seed: 70, weightNoise: 1 });
    const w = reference.weights[0];
    const b = reference.biases[0];
    const apply = (matrix: Float64Array, vector: ArrayLike<number>, transpose: boolean): Float64Array =>
      Float64Array.from({ length: dimension }, (_, i) => {
        let total = 0;
        for (let j = 0; j < dimension; j++) total += (transpose ? matrix[j * dimension + i] : matrix[i * dimension + j]) * vector[j];
        return total;
      });
    const energy = (x: ArrayLike<number>): number => {
      const z = apply(w, x, false).map((value, i) => value + b[i]);
      return 0.5 * z.reduce((total, value) => total + value * value, 0) + 0.5 * dimension * Math.log(2 * Math.PI);
    };
    const score = (x: ArrayLike<number>): Float64Array => apply(w, apply(w, x, false).map((value, i) => value + b[i]), true);
    const squaredNorm = (values: ArrayLike<number>): number => Array.from(values).reduce((total, value) => total + value * value, 0);

    const rows = randomRows(new RandomStream(5), BATCH, dimension);
    const x = rowsToTensor(rows);
    const { slices, sigma, energyWeight, channels } = BASE_OPTIONS;

    // SSM: (1/(k²BD)) Σ_r [½‖WᵀWx_r + Wᵀb‖² − ‖W v_r‖²] + (λ/(kC)) mean E.
    const ssm = getObjective('ssm');
    for (const explicit of [true, false]) {
      const options = { ...BASE_OPTIONS, explicitDerivatives: explicit };
      const prepared = ssm.prepare(model, x, new RandomStream(SEED), options);
      const directions = tensorToRows(prepared.directions);
      let total = 0;
      directions.forEach((v, r) => {
        total += 0.5 * squaredNorm(score(rows[r % BATCH])) - squaredNorm(apply(w, v, false));
      });
      const meanEnergy = rows.reduce((sum, row) => sum + energy(row), 0) / BATCH;
      const expected = total / (slices * slices * BATCH * dimension) + (energyWeight / (slices * channels)) * meanEnergy;
      const loss = ssm.loss(model, x, prepared, options);
      assert.equal(firstMismatch(loss.dataSync(), [expected], LOSS_TOLERANCE, `ssm (${explicit ? 'explicit' : 'nested'})`), null);
      tf.dispose([loss, ...Object.values(prepared)]);
    }

    // DSM: (1/(BD)) Σ_b ½‖n_b/σ − Wᵀ(Wx̃_b + b)‖² + (λ/C) mean E(x̃).
    const dsm = getObjective('dsm');
    for (const explicit of [true, false]) {
      const options = { ...BASE_OPTIONS, explicitDerivatives: explicit };
      const prepared = dsm.prepare(model, x, new RandomStream(SEED), options);
      const noise = tensorToRows(prepared.noise);
      let total = 0;
      let energies = 0;
      rows.forEach((row, r) => {
        const noisy = row.map((value, i) => value + sigma * noise[r][i]);
        const target = score(noisy).map((value, i) => noise[r][i] / sigma - value);
        total += 0.5 * squaredNorm(target);
        energies += energy(noisy);
      });
      const expected = total / (BATCH * dimension) + (energyWeight / channels) * (energies / BATCH);
      const loss = dsm.loss(model, x, prepared, options);
      assert.equal(firstMismatch(loss.dataSync(), [expected], LOSS_TOLERANCE, `dsm (${explicit ? 'explicit' : 'nested'})`), null);
      tf.dispose([loss, ...Object.values(prepared)]);
    }
    x.dispose();
    disposeModel(model);
  });

  it('only ml computes the linear log-dets', () => {
    const { model } = createFcFixture({ dimension: 4, depth: 2, residual: false, seed: 80 });
    // A layer's log-det is requested either alone (constantLogDet) or as its matrix for sumLogAbsDet.
    let calls = 0;
    for (const layer of model.denseLayers) {
      const original = layer.constantLogDet.bind(layer);
      layer.constantLogDet = () => {
        calls++;
        return original();
      };
      const originalMatrix = layer.constantLogDetMatrix.bind(layer);
      layer.constantLogDetMatrix = () => {
        calls++;
        return originalMatrix();
      };
    }
    const x = rowsToTensor(randomRows(new RandomStream(6), BATCH, 4));
    for (const name of OBJECTIVE_NAMES) {
      for (const explicit of [true, false]) {
        calls = 0;
        const objective = getObjective(name);
        const options = { ...BASE_OPTIONS, explicitDerivatives: explicit };
        const prepared = objective.prepare(model, x, new RandomStream(SEED), options);
        lossAndGradient(objective, model, x, prepared, options);
        assert.equal(calls, name === 'ml' ? 2 : 0, `${name} asked for a layer's log-det ${calls} times`);
        tf.dispose(Object.values(prepared));
      }
    }
    x.dispose();
    disposeModel(model);
  });

  it('non-finite inputs give a non-finite loss', () => {
    const { model } = createFcFixture({ dimension: 4, depth: 2, residual: false, seed: 81 });
    const x = tf.tensor2d([
      [0.1, Number.NaN, 0.3, 0.2],
      [0.5, 0.1, -0.2, 0.4],
    ]);
    for (const name of OBJECTIVE_NAMES) {
      const objective = getObjective(name);
      const prepared = objective.prepare(model, x, new RandomStream(SEED), BASE_OPTIONS);
      const loss = objective.loss(model, x, prepared, BASE_OPTIONS);
      assert.ok(Number.isNaN(loss.dataSync()[0]), `${name} loss is ${loss.dataSync()[0]}, expected NaN`);
      tf.dispose([loss, ...Object.values(prepared)]);
    }
    x.dispose();
    disposeModel(model);
  });

  it('repeated loss and gradient calls leak no tensors', () => {
    const { model } = createFcFixture({ dimension: 5, depth: 2, residual: true, seed: 82 });
    const x = rowsToTensor(randomRows(new RandomStream(7), BATCH, 5));
    for (const name of OBJECTIVE_NAMES) {
      for (const explicit of [true, false]) {
        const objective = getObjective(name);
        const options = { ...BASE_OPTIONS, explicitDerivatives: explicit };
        const random = new RandomStream(SEED);
        const step = (): void => {
          const prepared = objective.prepare(model, x, random, options);
          lossAndGradient(objective, model, x, prepared, options);
          tf.dispose(Object.values(prepared));
        };
        step();
        const before = tf.memory().numTensors;
        step();
        step();
        assert.equal(tf.memory().numTensors, before, `${name} (${explicit ? 'explicit' : 'nested'}) leaked tensors`);
      }
    }
    x.dispose();
    disposeModel(model);
  });

  it('loss rejects a prepared batch without its tensors', () => {
    const { model } = createFcFixture({ dimension: 3, depth: 2, residual: false, seed: 83 });
    const x = tf.zeros([2, 3]);
    assert.throws(() => getObjective('dsm').loss(model, x, {}, BASE_OPTIONS), /dsm objective: the prepared batch has no "noise"/);
    assert.throws(() => getObjective('ssm').prepare(model, x, new RandomStream(1), { ...BASE_OPTIONS, slices: 0 }), /slices must be an integer ≥ 1, received 0/);
    assert.throws(() => getObjective('fdssm').prepare(model, x, new RandomStream(1), { ...BASE_OPTIONS, epsilon: -1 }), /epsilon must be a finite positive number, received -1/);
    x.dispose();
    disposeModel(model);
  });
});

it('getObjective rejects an unknown name and lists the allowed ones', () => {
  assert.throws(() => getObjective('nce'), /unknown objective "nce"; expected one of ml, sml, ssm, dsm, fdssm/);
  for (const name of OBJECTIVE_NAMES) assert.equal(getObjective(name).name, name);
});
