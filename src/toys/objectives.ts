/**
 * The five EBFlow objectives in the form of the authors' toy experiments.
 *
 * Every objective trains on noise-perturbed data x = data + std·n, n ~ N(0, I), std = 0.375 in
 * the 2-D experiments (the training loop draws the perturbation; the multimodal experiment uses
 * none), so the target density is the data convolved with N(0, std²·I). With E the energy of the
 * standard normal base and f = −E:
 *
 *   ml     L = −mean_b log q(x_b)        (every log-det, including log Z; base as configured)
 *   sml    L = mean_b [E(x_b) − E(x̂_b)], x̂ = g⁻¹(z), z ~ N(0, I), drawn without gradient
 *   dsm    L = mean_b ½‖∇f(x_b) + n_b/std‖²        (the same n as the perturbation)
 *   ssm    L = mean_b [½‖∇f(x_b)‖² + v_bᵀ∇²f(x_b) v_b],  v Rademacher, one slice
 *   fdssm  L = (D/ε²) · mean_b [(E₊ − E₋)²/8 + 2E₀ − E₊ − E₋],  E± = E(x ± v),
 *          v = ε·g/√(‖g‖² + 1e-8), g ~ N(0, I), ε = 0.1
 *
 * These differ from the image objectives of src/objectives/ in their reductions (means over the
 * batch, no division by D; SML divides by B, not 2B), in FDSSM's D/ε² factor and norm offset,
 * and in having no λ term. Score-matching derivatives come from nested `tf.grad`, because the
 * toy flows have no explicit derivative formulas.
 *
 * Cost per step, for a flow whose forward pass costs F per row, before the θ backward pass:
 *   ml     B·F plus the constant log-dets
 *   sml    2B·F plus B inverse rows
 *   fdssm  3B·F
 *   dsm    about 3B·F (second order)
 *   ssm    about 10B·F (third order)
 * These are estimates from the derivative order, not measurements.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { EnergyFlow } from '../models/energy-flow.js';
import { nestedEnergyDerivatives, requirePrepared } from '../objectives/derivatives.js';
import { OBJECTIVE_NAMES, type ObjectiveName } from '../objectives/objective.js';
import type { RandomStream } from '../random/stream.js';
import { flowLogDensity, type BaseDistribution } from './density.js';

/** Hyper-parameters of the toy objectives. */
export interface ToyObjectiveSettings {
  /** std of the data perturbation, which DSM's target uses; 0.375 in the 2-D experiments. */
  noiseStd: number;
  /** FDSSM's ε; 0.1 (hard-coded in the authors' toy code). */
  epsilon: number;
  /** The base distribution of ML's log q; 'gaussian' unless reproducing the authors' Laplace ML. */
  mlBase: BaseDistribution;
}

export const DEFAULT_TOY_OBJECTIVE_SETTINGS: ToyObjectiveSettings = { noiseStd: 0.375, epsilon: 0.1, mlBase: 'gaussian' };

/** FDSSM adds this inside the square root of ‖g‖², as the authors' toy code does. */
const FDSSM_NORM_OFFSET = 1e-8;

/**
 * A batch's tensors, all with the batch on the first axis: `points` [B, D] (the perturbed
 * training points x), `noise` [B, D] (the n of the perturbation, absent without one) and the
 * objective's own draws (`directions`, `samples`). Row slices of a batch are batches, which lets
 * the training loop split a large batch into chunks.
 */
export type ToyBatch = Record<string, tf.Tensor>;

export interface ToyObjective {
  readonly name: ObjectiveName;
  /** Returns the tensors the loss needs besides `points` and `noise`, drawn without gradient. */
  prepare(model: EnergyFlow, batch: ToyBatch, random: RandomStream, settings: ToyObjectiveSettings): ToyBatch;
  /** Returns the scalar loss, a mean over the batch rows, differentiable in the model's variables. */
  loss(model: EnergyFlow, batch: ToyBatch, settings: ToyObjectiveSettings): tf.Scalar;
}

function points(batch: ToyBatch, objective: string): tf.Tensor2D {
  return requirePrepared(batch, 'points', objective) as tf.Tensor2D;
}

const toyMl: ToyObjective = {
  name: 'ml',
  prepare: () => ({}),
  loss(model, batch, settings) {
    const x = points(batch, 'toy ml');
    return tf.tidy(() => tf.neg(tf.mean(flowLogDensity(model, x, settings.mlBase))) as tf.Scalar);
  },
};

const toySml: ToyObjective = {
  name: 'sml',
  /** Draws z ~ N(0, I) [B, D] and returns `samples` = g⁻¹(z). */
  prepare(model, batch, random) {
    const x = points(batch, 'toy sml');
    const [rows, dimension] = x.shape;
    return tf.tidy(() => ({ samples: model.inverse(tf.tensor2d(random.normalArray(rows * dimension), [rows, dimension])) }));
  },
  loss(model, batch) {
    const x = points(batch, 'toy sml');
    const samples = requirePrepared(batch, 'samples', 'toy sml');
    return tf.tidy(() => {
      const rows = x.shape[0];
      const [dataEnergy, sampleEnergy] = tf.split(model.energy(tf.concat([x, samples], 0)), [rows, rows]);
      return tf.mean(tf.sub(dataEnergy, sampleEnergy)) as tf.Scalar;
    });
  },
};

const toyDsm: ToyObjective = {
  name: 'dsm',
  prepare: () => ({}),
  loss(model, batch, settings) {
    const x = points(batch, 'toy dsm');
    const noise = requirePrepared(batch, 'noise', 'toy dsm');
    if (!(settings.noiseStd > 0)) {
      throw new RangeError(`toy dsm objective: settings.noiseStd must be > 0, received ${settings.noiseStd}; DSM needs the perturbation`);
    }
    return tf.tidy(() => {
      const { gradient } = nestedEnergyDerivatives(model, x);
      // ∇f + n/std = n/std − ∇E.
      const residual = tf.sub(tf.div(noise, settings.noiseStd), gradient);
      return tf.mean(tf.mul(tf.sum(tf.square(residual), 1), 0.5)) as tf.Scalar;
    });
  },
};

const toySsm: ToyObjective = {
  name: 'ssm',
  /** Draws `directions`, B·D Rademacher values. */
  prepare(_model, batch, random) {
    const x = points(batch, 'toy ssm');
    return { directions: tf.tensor2d(random.rademacherArray(x.size), x.shape as [number, number]) };
  },
  loss(model, batch) {
    const x = points(batch, 'toy ssm');
    const directions = requirePrepared(batch, 'directions', 'toy ssm');
    return tf.tidy(() => {
      const { gradient, hessianVector } = nestedEnergyDerivatives(model, x, directions);
      if (hessianVector === undefined) throw new Error('toy ssm objective: no Hessian-vector product was computed');
      // ½‖∇f‖² + vᵀ∇²f v = ½‖∇E‖² − vᵀ∇²E v.
      const perRow = tf.sub(tf.mul(tf.sum(tf.square(gradient), 1), 0.5), tf.sum(tf.mul(directions, hessianVector), 1));
      return tf.mean(perRow) as tf.Scalar;
    });
  },
};

const toyFdssm: ToyObjective = {
  name: 'fdssm',
  /** Draws g ~ N(0, I) [B, D] and returns `directions` v = ε·g/√(‖g‖² + 1e-8). */
  prepare(_model, batch, random, settings) {
    const x = points(batch, 'toy fdssm');
    if (!(settings.epsilon > 0)) {
      throw new RangeError(`toy fdssm objective: settings.epsilon must be > 0, received ${settings.epsilon}`);
    }
    return tf.tidy(() => {
      const gaussian = tf.tensor2d(random.normalArray(x.size), x.shape as [number, number]);
      const norms = tf.sqrt(tf.add(tf.sum(tf.square(gaussian), 1, true), FDSSM_NORM_OFFSET));
      return { directions: tf.mul(tf.div(gaussian, norms), settings.epsilon) };
    });
  },
  loss(model, batch, settings) {
    const x = points(batch, 'toy fdssm');
    const directions = requirePrepared(batch, 'directions', 'toy fdssm');
    return tf.tidy(() => {
      const [rows, dimension] = x.shape;
      const energies = model.energy(tf.concat([x, tf.add(x, directions), tf.sub(x, directions)], 0));
      const [centre, plus, minus] = tf.split(energies, [rows, rows, rows]);
      const perRow = tf.add(tf.div(tf.square(tf.sub(plus, minus)), 8), tf.sub(tf.mul(centre, 2), tf.add(plus, minus)));
      return tf.mul(tf.mean(perRow), dimension / (settings.epsilon * settings.epsilon)) as tf.Scalar;
    });
  },
};

const TOY_OBJECTIVES: Readonly<Record<ObjectiveName, ToyObjective>> = {
  ml: toyMl,
  sml: toySml,
  dsm: toyDsm,
  ssm: toySsm,
  fdssm: toyFdssm,
};

/** Returns the toy objective called `name`, or raises an error listing the allowed names. */
export function getToyObjective(name: string): ToyObjective {
  if (!(OBJECTIVE_NAMES as readonly string[]).includes(name)) {
    throw new Error(`getToyObjective: unknown objective "${name}"; expected one of ${OBJECTIVE_NAMES.join(', ')}`);
  }
  return TOY_OBJECTIVES[name as ObjectiveName];
}
