/**
 * The contract every training objective meets.
 *
 * A training step calls `prepare` outside the gradient tape (it draws noise, directions or model
 * samples from the run's random stream) and then `loss` inside `tf.variableGrads`, so the
 * θ-gradient of the returned scalar is the training direction. Splitting the two keeps sampling
 * and noise out of the tape and lets the runner time them as separate phases.
 */
import type * as tf from '@tensorflow/tfjs-core';

import type { EnergyFlow } from '../models/energy-flow.js';
import type { RandomStream } from '../random/stream.js';

export type ObjectiveName = 'ml' | 'sml' | 'ssm' | 'dsm' | 'fdssm';
export const OBJECTIVE_NAMES: readonly ObjectiveName[] = ['ml', 'sml', 'ssm', 'dsm', 'fdssm'];

/** Hyper-parameters shared by the objectives; each objective reads the ones it needs. */
export interface ObjectiveOptions {
  /** DSM noise standard deviation σ, in model-input units (logit space with MaP). */
  sigma: number;
  /** FDSSM direction norm ε, in model-input units. */
  epsilon: number;
  /** SSM slice count k (rows replicated k times, one Rademacher direction per row). */
  slices: number;
  /** Weight λ of the "low energy" term of SSM, DSM and FDSSM (0 turns it off). */
  energyWeight: number;
  /** Channel count C, which scales λ as in the reference (λ/(kC) for SSM, λ/C for DSM). */
  channels: number;
  /** Use the model's explicit derivatives when it has them (true) or always nest tf.grad (false). */
  explicitDerivatives: boolean;
}

/** Tensors drawn before the tape: noise, directions or model samples. Owned by the step. */
export type PreparedBatch = Record<string, tf.Tensor>;

export interface Objective {
  readonly name: ObjectiveName;
  /** Draws what the loss needs besides x, without recording gradients. */
  prepare(model: EnergyFlow, x: tf.Tensor, random: RandomStream, options: ObjectiveOptions): PreparedBatch;
  /** Returns the scalar loss; differentiable in the model's variables. */
  loss(model: EnergyFlow, x: tf.Tensor, prepared: PreparedBatch, options: ObjectiveOptions): tf.Scalar;
}
