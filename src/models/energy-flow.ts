/**
 * The contract every EBFlow model meets: a normalizing flow read as an energy-based model.
 *
 * With z = g(x) and a standard normal base,
 *   log p(x) = log N(g(x)) + Σ_{l ∈ S_n} log|det J_l(x)| + Σ_{l ∈ S_lin} log|det J_l|
 *            = −E(x) − log Z,
 * where the energy E collects the base density and the input-dependent log-dets, and
 * log Z = −Σ_{l ∈ S_lin} log|det J_l| collects the constant ones. Score matching needs only ∇ₓE,
 * which does not depend on Z, so it never pays the O(D³) log-dets.
 */
import type * as tf from '@tensorflow/tfjs-core';

import type { FlowLayer } from '../layers/layer.js';

/** Explicit input derivatives of the energy, per sample. */
export interface EnergyDerivatives {
  /** E(x), shape [B], nats. */
  energy: tf.Tensor1D;
  /** ∇ₓE(x), the same shape as x. The model's score is its negative. */
  gradient: tf.Tensor;
  /** (∇²ₓE(x)) v for the direction v passed in, the same shape as x; present only when v was given. */
  hessianVector?: tf.Tensor;
}

export interface EnergyFlow {
  /** The architecture's name as scenario files spell it ("fc", "cnn", …). */
  readonly architecture: string;
  /** The shape of one sample, without the batch axis (for example [784] or [28, 28, 1]). */
  readonly sampleShape: number[];
  /** D, the number of elements of one sample. */
  readonly dimension: number;
  /** The layers from data to latent. */
  readonly layers: readonly FlowLayer[];
  /** Every trainable parameter, in a fixed order (layers in order, then each layer's own order). */
  readonly variables: tf.Variable[];

  /** Returns E(x) per sample, shape [B], nats. Never computes a constant-Jacobian log-det. */
  energy(x: tf.Tensor): tf.Tensor1D;
  /** Returns log Z(θ) = −Σ_{S_lin} log|det J_l| as a scalar, differentiable in θ. */
  logNormalizer(): tf.Scalar;
  /** Returns the exact log p(x) = −E(x) − log Z per sample, shape [B], nats. */
  logProb(x: tf.Tensor): tf.Tensor1D;
  /** Maps latents z (shape [B, …latent shape]) to data space by inverting every layer. */
  inverse(z: tf.Tensor): tf.Tensor;
  /**
   * Returns E, ∇ₓE and optionally (∇²ₓE)v computed by explicit, layer-by-layer formulas, so
   * a θ-gradient of a score-matching loss needs one level of autodiff instead of nested tapes.
   * x and v are constants: the results are differentiable once in θ, not in x or v. Models
   * without such formulas leave it undefined and the objectives fall back to nested `tf.grad`.
   */
  energyDerivatives?(x: tf.Tensor, direction?: tf.Tensor): EnergyDerivatives;
  /**
   * Returns E(x) like `energy` for an x that is a constant: the result is differentiable in θ
   * but not in x, so a model can skip the input gradient of its first layer. Optional; the
   * objectives that never differentiate in x (ml, sml, fdssm) use it on the explicit path.
   */
  constantInputEnergy?(x: tf.Tensor): tf.Tensor1D;
  /**
   * Returns E at the 3B rows [x; x + v; x − v], shape [3B], like `constantInputEnergy` of the
   * three stacked, for constant x and v of one shape. Optional. fdssm uses it on the explicit
   * path, so that a model with a linear first layer can share that layer's product among the rows.
   */
  shiftedEnergies?(x: tf.Tensor, shift: tf.Tensor): tf.Tensor1D;
  /**
   * Returns E(x) per sample and log Z like `constantInputEnergy` and `logNormalizer`, from one
   * pass that shares their work (the CNN builds each convolution's Toeplitz matrix once for both).
   * Differentiable once in θ. Optional; the ml objective uses it on the explicit path.
   */
  constantInputEnergyAndLogNormalizer?(x: tf.Tensor): { energy: tf.Tensor1D; logNormalizer: tf.Scalar };
}
