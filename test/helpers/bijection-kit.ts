/**
 * A shared property kit for bijections: one set of checks that every `FlowLayer` and every
 * `EnergyFlow` must pass, run on the backend of the enclosing `forEachBackend` block.
 *
 * Layer checks: output shape and finite values, inverse∘forward = identity, the log-det against
 * log|det J| of a numerically built Jacobian (for constant-Jacobian layers against
 * `constantLogDet()`, and the Jacobian must not change with the input), gradients reach every
 * parameter, and no tensor leaks.
 * Model checks: shapes and finite values of E, log p and log Z; the model's inverse undoes its
 * layers; log p(x) = log N(g(x)) + log|det J_g(x)| with J_g built numerically; log Z against the
 * numerical Jacobians of the constant-Jacobian layers; explicit energy derivatives (when the model
 * has them) against nested autodiff, including the θ-gradient of a score-matching loss; gradients
 * reach every parameter; no tensor leaks.
 *
 * Numerical Jacobians use central differences of the float32 forward pass, differenced and
 * combined in float64 with one Richardson step (stencils at h and h/2), so the error of each entry
 * is about float32 rounding divided by h. Keep D small (up to a few dozen): the Jacobian costs
 * 4D forward rows per sample and its log-det O(D³).
 *
 * Parameters are moved away from the initialisation before every check (W = −I or −Dirac would
 * make most checks trivial), by adding `perturbation`·N(0, 1) to every trainable variable.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import type { FlowLayer } from '../../src/layers/layer.js';
import type { EnergyFlow } from '../../src/models/energy-flow.js';
import { forwardThroughLayers } from '../../src/models/flow-core.js';
import { RandomStream } from '../../src/random/stream.js';
import { logAbsDetFloat64 } from '../../src/tensor/linalg.js';
import { firstMismatch, type BackendUnderTest, type Tolerance } from './backends.js';

/** Tolerances of the kit's comparisons; each defaults to the value in `DEFAULT_KIT_TOLERANCES`. */
export interface KitTolerances {
  /** inverse(forward(x)) against x. */
  inverse: Tolerance;
  /** A log-det in nats against log|det| of the numerical Jacobian. */
  logDet: Tolerance;
  /** Jacobian entries at two inputs of a constant-Jacobian layer. */
  jacobian: Tolerance;
  /** Explicit derivatives against autodiff; `absolute` is relative to the largest entry. */
  derivatives: Tolerance;
}

export const DEFAULT_KIT_TOLERANCES: KitTolerances = {
  inverse: { relative: 1e-4, absolute: 1e-4 },
  logDet: { relative: 1e-4, absolute: 2e-3 },
  jacobian: { relative: 1e-4, absolute: 1e-4 },
  derivatives: { relative: 1e-3, absolute: 1e-3 },
};

interface CommonCase {
  /** The title of the `describe` block. */
  name: string;
  /** The shape of one input sample, without the batch axis. */
  sampleShape: number[];
  /** Samples per batch. Default 2. */
  batch?: number;
  /** Seed of the inputs, the perturbation and the random directions. Default 1. */
  seed?: number;
  /** Standard deviation of the inputs. Default 1. */
  inputScale?: number;
  /** Standard deviation of the noise added to every trainable variable. Default 0.1. */
  perturbation?: number;
  /** Finite-difference step h of the numerical Jacobian. Default 0.05. */
  step?: number;
  tolerances?: Partial<KitTolerances>;
}

export interface LayerKitCase extends CommonCase {
  /** Creates the layer on the current backend; the kit disposes it afterwards. */
  create(random: RandomStream): FlowLayer;
}

export interface FlowKitCase extends CommonCase {
  /** Creates the model on the current backend; the kit disposes it afterwards. */
  create(random: RandomStream): EnergyFlow;
}

interface ResolvedCase {
  sampleShape: number[];
  dimension: number;
  batch: number;
  seed: number;
  inputScale: number;
  perturbation: number;
  step: number;
  tolerances: KitTolerances;
}

function resolveCase(kitCase: CommonCase): ResolvedCase {
  return {
    sampleShape: kitCase.sampleShape,
    dimension: kitCase.sampleShape.reduce((product, size) => product * size, 1),
    batch: kitCase.batch ?? 2,
    seed: kitCase.seed ?? 1,
    inputScale: kitCase.inputScale ?? 1,
    perturbation: kitCase.perturbation ?? 0.1,
    step: kitCase.step ?? 0.05,
    tolerances: { ...DEFAULT_KIT_TOLERANCES, ...kitCase.tolerances },
  };
}

/** Registers the layer checks as tests in a `describe` block named after the case. */
export function registerLayerKit(kitCase: LayerKitCase, backend: BackendUnderTest): void {
  const settings = resolveCase(kitCase);
  const { batch, dimension, sampleShape, tolerances } = settings;

  describe(kitCase.name, () => {
    test('forward keeps the shape with finite values', () => {
      withSubject(kitCase, settings, (layer, x) => {
        const { y, logDet } = layer.forward(x);
        assert.equal(y.shape[0], batch, 'batch size of y');
        assert.equal(y.size, batch * dimension, `y has ${y.size / batch} elements per sample, expected ${dimension}`);
        assert.ok(allFinite(y), `y has non-finite values on ${backend.name}`);
        if (layer.constantJacobian) {
          assert.equal(logDet, null, 'a constant-Jacobian layer returns logDet = null');
        } else {
          assert.ok(logDet !== null, 'an input-dependent layer returns its log-det');
          assert.deepEqual(logDet.shape, [batch]);
          assert.ok(allFinite(logDet), 'logDet has non-finite values');
        }
        tf.dispose([y, logDet ?? []]);
      });
    });

    test('inverse undoes forward', () => {
      withSubject(kitCase, settings, (layer, x) => {
        const { y, logDet } = layer.forward(x);
        const restored = layer.inverse(y);
        assert.deepEqual(restored.shape, x.shape);
        assert.equal(firstMismatch(restored.dataSync(), x.dataSync(), tolerances.inverse, 'inverse(forward(x))'), null);
        tf.dispose([y, logDet ?? [], restored]);
      });
    });

    test('log-det matches the numerical Jacobian', () => {
      withSubject(kitCase, settings, (layer, x) => {
        const samples = splitSamples(x, dimension);
        const { y, logDet } = layer.forward(x);
        const reported = layer.constantJacobian ? constantLogDetValue(layer) : null;
        const perSample = logDet === null ? null : logDet.dataSync();
        tf.dispose([y, logDet ?? []]);
        samples.forEach((sample, b) => {
          const jacobian = numericalJacobian((input) => layer.forward(input).y, sample, sampleShape, settings.step);
          const expected = logAbsDetFloat64(jacobian, dimension);
          const actual = reported ?? (perSample as Float32Array)[b];
          assert.equal(firstMismatch([actual], [expected], tolerances.logDet, `log-det of sample ${b}`), null);
        });
      });
    });

    test('constant Jacobian does not depend on the input', (context) => {
      withSubject(kitCase, settings, (layer, x) => {
        if (!layer.constantJacobian) {
          context.skip('input-dependent layer');
          return;
        }
        const random = new RandomStream(settings.seed + 1000);
        const other = random.normalArray(dimension).map((value) => 3 * value + 1);
        const [first] = splitSamples(x, dimension);
        const atFirst = numericalJacobian((input) => layer.forward(input).y, first, sampleShape, settings.step);
        const atOther = numericalJacobian((input) => layer.forward(input).y, other, sampleShape, settings.step);
        assert.equal(firstMismatch(atOther, atFirst, tolerances.jacobian, 'Jacobian at a second input'), null);
      });
    });

    test('gradients reach every parameter', () => {
      withSubject(kitCase, settings, (layer, x) => {
        const weights = tf.tidy(() => {
          const { y } = layer.forward(x);
          return tf.randomNormal(y.shape, 0, 1, 'float32', settings.seed);
        });
        const loss = (): tf.Scalar => {
          const { y, logDet } = layer.forward(x);
          let total: tf.Scalar = tf.sum(tf.mul(y, weights));
          if (logDet !== null) total = tf.add(total, tf.sum(logDet));
          if (layer.constantJacobian && layer.constantLogDet !== undefined) total = tf.add(total, layer.constantLogDet());
          return total;
        };
        checkGradientsReachEveryParameter(layer.name, layer.variables, loss);
        weights.dispose();
      });
    });

    test('does not leak tensors', () => {
      withSubject(kitCase, settings, (layer, x) => {
        const exercise = (): void => {
          const { y, logDet } = layer.forward(x);
          const restored = layer.inverse(y);
          const constant = layer.constantJacobian && layer.constantLogDet !== undefined ? layer.constantLogDet() : null;
          tf.dispose([y, logDet ?? [], restored, constant ?? []]);
          if (layer.variables.length > 0) {
            const { value, grads } = tf.variableGrads(() => tf.sum(layer.forward(x).y), layer.variables);
            tf.dispose([value, ...Object.values(grads)]);
          }
        };
        // The first call may create lasting tensors (for example tfjs's cached scalars).
        exercise();
        const before = tf.memory().numTensors;
        exercise();
        assert.equal(tf.memory().numTensors, before, `${layer.name} leaked tensors`);
      });
    });
  });
}

/** Registers the model checks as tests in a `describe` block named after the case. */
export function registerFlowKit(kitCase: FlowKitCase, backend: BackendUnderTest): void {
  const settings = resolveCase(kitCase);
  const { batch, dimension, sampleShape, tolerances } = settings;

  describe(kitCase.name, () => {
    test('energy, log-density and log-normaliser are finite', () => {
      withSubject(kitCase, settings, (model, x) => {
        const energy = model.energy(x);
        const logProb = model.logProb(x);
        const logNormalizer = model.logNormalizer();
        assert.deepEqual(energy.shape, [batch]);
        assert.deepEqual(logProb.shape, [batch]);
        assert.equal(logNormalizer.rank, 0);
        for (const [label, tensor] of [['energy', energy], ['logProb', logProb], ['logNormalizer', logNormalizer]] as const) {
          assert.ok(allFinite(tensor), `${label} has non-finite values on ${backend.name}`);
        }
        // log p = −E − log Z.
        const expected = Array.from(energy.dataSync(), (e) => -e - logNormalizer.dataSync()[0]);
        assert.equal(firstMismatch(logProb.dataSync(), expected, backend.accumulated, 'logProb vs −E − log Z'), null);
        tf.dispose([energy, logProb, logNormalizer]);
      });
    });

    test('inverse undoes the layers', () => {
      withSubject(kitCase, settings, (model, x) => {
        const { z, logDet } = forwardThroughLayers(model.layers, x);
        const restored = model.inverse(z);
        assert.equal(restored.size, x.size);
        assert.equal(firstMismatch(restored.dataSync(), x.dataSync(), tolerances.inverse, 'inverse(g(x))'), null);
        tf.dispose([z, logDet ?? [], restored]);
      });
    });

    test('log-density matches the numerical Jacobian', () => {
      withSubject(kitCase, settings, (model, x) => {
        const logProb = model.logProb(x);
        const actual = logProb.dataSync();
        logProb.dispose();
        const toLatent = (input: tf.Tensor): tf.Tensor => {
          const { z, logDet } = forwardThroughLayers(model.layers, input);
          logDet?.dispose();
          return z;
        };
        splitSamples(x, dimension).forEach((sample, b) => {
          const latent = tf.tidy(() => toLatent(tf.tensor(sample, [1, ...sampleShape])).dataSync());
          const jacobian = numericalJacobian(toLatent, sample, sampleShape, settings.step);
          const expected = standardNormalLogDensity64(latent) + logAbsDetFloat64(jacobian, dimension);
          assert.equal(firstMismatch([actual[b]], [expected], tolerances.logDet, `log p of sample ${b}`), null);
        });
      });
    });

    test('log-normaliser matches constant-Jacobian layers', () => {
      withSubject(kitCase, settings, (model, x) => {
        const logNormalizer = model.logNormalizer();
        const actual = logNormalizer.dataSync()[0];
        logNormalizer.dispose();
        // Walk the first sample through the layers and take each constant-Jacobian layer's
        // numerical log-det at its own input.
        let input = tf.tensor(splitSamples(x, dimension)[0], [1, ...sampleShape]);
        let expected = 0;
        for (const layer of model.layers) {
          const layerShape = input.shape.slice(1);
          if (layer.constantJacobian) {
            const jacobian = numericalJacobian((u) => layer.forward(u).y, input.dataSync() as Float32Array, layerShape, settings.step);
            expected -= logAbsDetFloat64(jacobian, dimension);
          }
          const { y, logDet } = layer.forward(input);
          tf.dispose([input, logDet ?? []]);
          input = y;
        }
        input.dispose();
        assert.equal(firstMismatch([actual], [expected], tolerances.logDet, 'log Z'), null);
      });
    });

    test('explicit derivatives match autodiff', (context) => {
      withSubject(kitCase, settings, (model, x) => {
        const explicit = model.energyDerivatives?.bind(model);
        if (explicit === undefined) {
          context.skip('the model has no explicit derivatives');
          return;
        }
        const direction = rademacher(x.shape, settings.seed + 2);
        const derivatives = explicit(x, direction);
        const energy = model.energy(x);
        const gradient = tf.grad((u) => tf.sum(model.energy(u)))(x);
        const hessianVector = tf.grad((u) => tf.sum(tf.mul(tf.grad((w) => tf.sum(model.energy(w)))(u), direction)))(x);

        assert.equal(firstMismatch(derivatives.energy.dataSync(), energy.dataSync(), backend.accumulated, 'energy'), null);
        assert.deepEqual(derivatives.gradient.shape, x.shape);
        assert.ok(derivatives.hessianVector !== undefined, 'a direction was given, so hessianVector must be present');
        assert.deepEqual(derivatives.hessianVector.shape, x.shape);
        assertCloseToLargest(derivatives.gradient.dataSync(), gradient.dataSync(), tolerances.derivatives, '∇ₓE');
        assertCloseToLargest(derivatives.hessianVector.dataSync(), hessianVector.dataSync(), tolerances.derivatives, '(∇²ₓE)v');

        const withoutDirection = explicit(x);
        assert.equal(withoutDirection.hessianVector, undefined, 'no direction, no hessianVector');
        tf.dispose([derivatives.energy, derivatives.gradient, derivatives.hessianVector, energy, gradient, hessianVector]);
        tf.dispose([withoutDirection.energy, withoutDirection.gradient, direction]);
      });
    });

    test('explicit score-matching θ-gradient matches nested autodiff', (context) => {
      withSubject(kitCase, settings, (model, x) => {
        const explicit = model.energyDerivatives?.bind(model);
        if (explicit === undefined) {
          context.skip('the model has no explicit derivatives');
          return;
        }
        const direction = rademacher(x.shape, settings.seed + 3);
        // L(θ) = Σ_b [½‖∇ₓE‖² + vᵀ(∇²ₓE)v], the sliced score-matching loss up to scaling.
        const explicitLoss = (): tf.Scalar => {
          const { energy, gradient, hessianVector } = explicit(x, direction);
          energy.dispose();
          return tf.add(tf.mul(tf.sum(tf.square(gradient)), 0.5), tf.sum(tf.mul(direction, hessianVector as tf.Tensor)));
        };
        const nestedLoss = (): tf.Scalar => {
          const energyGradient = (u: tf.Tensor): tf.Tensor => tf.grad((w) => tf.sum(model.energy(w)))(u);
          const gradient = energyGradient(x);
          const hessianVector = tf.grad((u) => tf.sum(tf.mul(energyGradient(u), direction)))(x);
          return tf.add(tf.mul(tf.sum(tf.square(gradient)), 0.5), tf.sum(tf.mul(direction, hessianVector)));
        };
        const fromExplicit = tf.variableGrads(explicitLoss, model.variables);
        const fromNested = tf.variableGrads(nestedLoss, model.variables);
        assert.equal(firstMismatch([fromExplicit.value.dataSync()[0]], [fromNested.value.dataSync()[0]], tolerances.derivatives, 'loss'), null);
        assertSameGradients(model.variables, fromExplicit.grads, fromNested.grads, tolerances.derivatives, '∂L');
        tf.dispose([fromExplicit.value, fromNested.value, ...Object.values(fromExplicit.grads), ...Object.values(fromNested.grads), direction]);
      });
    });

    test('constant-input energy and its θ-gradient match the energy', (context) => {
      withSubject(kitCase, settings, (model, x) => {
        const constant = model.constantInputEnergy?.bind(model);
        if (constant === undefined) {
          context.skip('the model has no constant-input energy');
          return;
        }
        const weights = tf.tensor1d(Array.from({ length: x.shape[0] }, (_, b) => 0.5 + b));
        const fromConstant = tf.variableGrads(() => tf.sum(tf.mul(constant(x), weights)), model.variables);
        const fromEnergy = tf.variableGrads(() => tf.sum(tf.mul(model.energy(x), weights)), model.variables);
        assert.equal(firstMismatch([fromConstant.value.dataSync()[0]], [fromEnergy.value.dataSync()[0]], tolerances.derivatives, 'Σ wE'), null);
        assertSameGradients(model.variables, fromConstant.grads, fromEnergy.grads, tolerances.derivatives, '∂E');
        tf.dispose([weights, fromConstant.value, fromEnergy.value, ...Object.values(fromConstant.grads), ...Object.values(fromEnergy.grads)]);
      });
    });

    test('shifted energies match stacked energies', (context) => {
      withSubject(kitCase, settings, (model, x) => {
        const shifted = model.shiftedEnergies?.bind(model);
        if (shifted === undefined) {
          context.skip('the model has no shifted energies');
          return;
        }
        // A smooth shift smaller than x, and weights that differ between the 3B rows.
        const shift = tf.tidy(() => tf.mul(tf.sin(tf.add(tf.mul(x, 3.7), 0.4)), 0.25));
        const weights = tf.tensor1d(Array.from({ length: 3 * x.shape[0] }, (_, row) => 0.5 + ((row * 7) % 5) - 0.3 * row));
        const fromShifted = tf.variableGrads(() => tf.sum(tf.mul(shifted(x, shift), weights)), model.variables);
        const fromStacked = tf.variableGrads(() => {
          const stacked = tf.concat([x, tf.add(x, shift), tf.sub(x, shift)], 0);
          return tf.sum(tf.mul(model.energy(stacked), weights));
        }, model.variables);
        assert.equal(firstMismatch([fromShifted.value.dataSync()[0]], [fromStacked.value.dataSync()[0]], tolerances.derivatives, 'Σ wE'), null);
        assertSameGradients(model.variables, fromShifted.grads, fromStacked.grads, tolerances.derivatives, '∂E');
        const mismatched = tf.zeros([x.shape[0] + 1, ...x.shape.slice(1)]);
        assert.throws(() => shifted(x, mismatched), /shift shape/);
        tf.dispose([mismatched, shift, weights, fromShifted.value, fromStacked.value, ...Object.values(fromShifted.grads), ...Object.values(fromStacked.grads)]);
      });
    });

    test('shared energy and log-normaliser pass matches both', (context) => {
      withSubject(kitCase, settings, (model, x) => {
        const shared = model.constantInputEnergyAndLogNormalizer?.bind(model);
        if (shared === undefined) {
          context.skip('the model has no shared pass');
          return;
        }
        // The ML loss mean E + log Z, from the shared pass and from the two separate calls.
        const fromShared = tf.variableGrads(() => {
          const { energy, logNormalizer } = shared(x);
          return tf.add(tf.mean(energy), logNormalizer) as tf.Scalar;
        }, model.variables);
        const fromSeparate = tf.variableGrads(() => tf.add(tf.mean(model.energy(x)), model.logNormalizer()) as tf.Scalar, model.variables);
        assert.equal(firstMismatch([fromShared.value.dataSync()[0]], [fromSeparate.value.dataSync()[0]], tolerances.derivatives, 'mean E + log Z'), null);
        assertSameGradients(model.variables, fromShared.grads, fromSeparate.grads, tolerances.derivatives, '∂L');
        tf.dispose([fromShared.value, fromSeparate.value, ...Object.values(fromShared.grads), ...Object.values(fromSeparate.grads)]);
      });
    });

    test('gradients reach every parameter', () => {
      withSubject(kitCase, settings, (model, x) => {
        checkGradientsReachEveryParameter(model.architecture, model.variables, () => tf.sum(model.logProb(x)));
      });
    });

    test('does not leak tensors', () => {
      withSubject(kitCase, settings, (model, x) => {
        const direction = rademacher(x.shape, settings.seed + 4);
        const exercise = (): void => {
          const { z, logDet } = forwardThroughLayers(model.layers, x);
          const restored = model.inverse(z);
          const logProb = model.logProb(x);
          tf.dispose([z, logDet ?? [], restored, logProb]);
          const { value, grads } = tf.variableGrads(() => tf.sum(model.logProb(x)), model.variables);
          tf.dispose([value, ...Object.values(grads)]);
          if (model.energyDerivatives !== undefined) {
            const { energy, gradient, hessianVector } = model.energyDerivatives(x, direction);
            tf.dispose([energy, gradient, hessianVector ?? []]);
          }
        };
        exercise();
        const before = tf.memory().numTensors;
        exercise();
        assert.equal(tf.memory().numTensors, before, `${model.architecture} model leaked tensors`);
        direction.dispose();
      });
    });
  });
}

/** Asserts that two θ-gradients have an entry for every variable and agree within `tolerance` of the largest entry. */
function assertSameGradients(
  variables: readonly tf.Variable[],
  first: tf.NamedTensorMap,
  second: tf.NamedTensorMap,
  tolerance: Tolerance,
  quantity: string,
): void {
  for (const variable of variables) {
    const a = first[variable.name];
    const b = second[variable.name];
    assert.ok(a !== undefined, `θ-gradient of ${variable.name} is missing on the first path`);
    assert.ok(b !== undefined, `θ-gradient of ${variable.name} is missing on the second path`);
    assertCloseToLargest(a.dataSync(), b.dataSync(), tolerance, `${quantity}/∂${variable.name}`);
  }
}

/**
 * Creates the subject, perturbs its variables, draws the input batch, runs `check`, and disposes
 * everything, also when `check` throws.
 */
function withSubject<Subject extends FlowLayer | EnergyFlow>(
  kitCase: { create(random: RandomStream): Subject },
  settings: ResolvedCase,
  check: (subject: Subject, x: tf.Tensor) => void,
): void {
  const random = new RandomStream(settings.seed);
  const subject = kitCase.create(random);
  perturbVariables(subject.variables, random, settings.perturbation);
  const values = random.normalArray(settings.batch * settings.dimension).map((value) => settings.inputScale * value);
  const x = tf.tensor(values, [settings.batch, ...settings.sampleShape]);
  try {
    check(subject, x);
  } finally {
    x.dispose();
    disposeSubject(subject);
  }
}

function perturbVariables(variables: readonly tf.Variable[], random: RandomStream, scale: number): void {
  for (const variable of variables) {
    const noise = random.normalArray(variable.size);
    tf.tidy(() => variable.assign(tf.add(variable, tf.mul(tf.tensor(noise, variable.shape), scale))));
  }
}

/** Calls the subject's own `dispose()` when it has one (it may own non-trainable state), else disposes its variables. */
function disposeSubject(subject: FlowLayer | EnergyFlow): void {
  const disposable = subject as { dispose?: () => void };
  if (typeof disposable.dispose === 'function') {
    disposable.dispose();
  } else {
    tf.dispose(subject.variables);
  }
}

/**
 * Returns the Jacobian of `map` at one sample as a row-major D×D Float64Array,
 * J[i·D + k] = ∂y_i/∂x_k, from central differences at steps h and h/2 combined by Richardson
 * extrapolation. One batched call of `map` on 4D rows.
 */
function numericalJacobian(
  map: (x: tf.Tensor) => tf.Tensor,
  sample: ArrayLike<number>,
  sampleShape: number[],
  step: number,
): Float64Array {
  const dimension = sample.length;
  const offsets = [step, -step, step / 2, -step / 2];
  const rows = new Float32Array(offsets.length * dimension * dimension);
  offsets.forEach((offset, o) => {
    for (let k = 0; k < dimension; k++) {
      const row = (o * dimension + k) * dimension;
      for (let i = 0; i < dimension; i++) rows[row + i] = sample[i];
      rows[row + k] += offset;
    }
  });
  const outputs = tf.tidy(() => map(tf.tensor(rows, [offsets.length * dimension, ...sampleShape])).dataSync());
  assert.equal(outputs.length, rows.length, `the map changed the dimension: ${outputs.length / (4 * dimension)} outputs per sample, expected ${dimension}`);

  // The perturbed input actually differs by the float32-rounded offset, so divide by that.
  const jacobian = new Float64Array(dimension * dimension);
  const output = (o: number, k: number, i: number): number => outputs[(o * dimension + k) * dimension + i];
  for (let k = 0; k < dimension; k++) {
    const wide = Math.fround(sample[k] + step) - Math.fround(sample[k] - step);
    const narrow = Math.fround(sample[k] + step / 2) - Math.fround(sample[k] - step / 2);
    for (let i = 0; i < dimension; i++) {
      const coarse = (output(0, k, i) - output(1, k, i)) / wide;
      const fine = (output(2, k, i) - output(3, k, i)) / narrow;
      jacobian[i * dimension + k] = (4 * fine - coarse) / 3;
    }
  }
  return jacobian;
}

function checkGradientsReachEveryParameter(owner: string, variables: readonly tf.Variable[], loss: () => tf.Scalar): void {
  if (variables.length === 0) return;
  const { value, grads } = tf.variableGrads(loss, [...variables]);
  for (const variable of variables) {
    const gradient = grads[variable.name];
    assert.ok(gradient !== undefined, `${owner}: no gradient reaches ${variable.name}`);
    assert.ok(allFinite(gradient), `${owner}: the gradient of ${variable.name} has non-finite values`);
    const norm = Math.sqrt((gradient.dataSync() as Float32Array).reduce((sum, g) => sum + g * g, 0));
    assert.ok(norm > 0, `${owner}: the gradient of ${variable.name} is zero`);
  }
  tf.dispose([value, ...Object.values(grads)]);
}

/** Compares element-wise with an absolute bound of `tolerance.absolute` times the largest |expected|. */
function assertCloseToLargest(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: Tolerance, label: string): void {
  let largest = 0;
  for (let i = 0; i < expected.length; i++) largest = Math.max(largest, Math.abs(expected[i]));
  const scaled = { relative: tolerance.relative, absolute: tolerance.absolute * largest };
  assert.equal(firstMismatch(actual, expected, scaled, label), null);
}

function splitSamples(x: tf.Tensor, dimension: number): Float32Array[] {
  const values = x.dataSync() as Float32Array;
  const samples: Float32Array[] = [];
  for (let b = 0; b < x.shape[0]; b++) samples.push(values.slice(b * dimension, (b + 1) * dimension));
  return samples;
}

function standardNormalLogDensity64(z: ArrayLike<number>): number {
  let squared = 0;
  for (let i = 0; i < z.length; i++) squared += z[i] * z[i];
  return -0.5 * squared - 0.5 * z.length * Math.log(2 * Math.PI);
}

function rademacher(shape: number[], seed: number): tf.Tensor {
  const size = shape.reduce((product, n) => product * n, 1);
  return tf.tensor(new RandomStream(seed).rademacherArray(size), shape);
}

function constantLogDetValue(layer: FlowLayer): number {
  assert.ok(layer.constantLogDet !== undefined, `${layer.name} has constantJacobian = true but no constantLogDet()`);
  const value = layer.constantLogDet();
  const result = value.dataSync()[0];
  value.dispose();
  return result;
}

function allFinite(tensor: tf.Tensor): boolean {
  return tensor.dataSync().every((value) => Number.isFinite(value));
}
