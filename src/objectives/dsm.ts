/**
 * `dsm`: denoising score matching at one noise level σ. With n ~ N(0, I) and x̃ = x + σn, the
 * target score at x̃ is −(x̃ − x)/σ² = −n/σ, and with the model score s = −∇ₓE(x̃),
 *   L_dsm = (1/(B·D)) Σ_b ½‖s_b + n_b/σ‖² + (λ/C) · mean_b E(x̃_b),
 * the reduction of the authors' PyTorch code for image data. There is no σ² weighting, and the λ
 * term is left out when λ = 0. No log-det is computed.
 *
 * Derivatives: the score in x, then its θ-gradient (second order ∂θ∂x in total). With the FC
 * model's explicit formulas only the θ level is autodiff.
 * Cost for the FC model: O(BD²L) (2L matrix products forward, about twice that backward).
 */
import * as tf from '@tensorflow/tfjs-core';

import { float32TensorFrom } from '../tensor/wasm-memory.js';
import { elementsPerSample, energyDerivativesOf, requirePositive, requirePrepared } from './derivatives.js';
import type { Objective, ObjectiveOptions } from './objective.js';

export const dsmObjective: Objective = {
  name: 'dsm',

  /** Draws `noise` n, B·D standard normals from the stream, with x's shape. */
  prepare(_model, x, random, options) {
    checkOptions(options);
    return { noise: float32TensorFrom(x.shape, (values) => random.fillNormal(values)) };
  },

  /** Returns L_dsm (see the file comment). */
  loss(model, x, prepared, options) {
    checkOptions(options);
    const noise = requirePrepared(prepared, 'noise', 'dsm');
    return tf.tidy(() => {
      const batch = x.shape[0];
      const dimension = elementsPerSample(x);
      const noisy = tf.add(x, tf.mul(noise, options.sigma));
      const { energy, gradient } = energyDerivativesOf(model, noisy, undefined, options.explicitDerivatives);

      // s + n/σ = n/σ − ∇E.
      const residual = tf.sub(tf.div(noise, options.sigma), gradient);
      const matching = tf.div(tf.mul(tf.sum(tf.square(residual)), 0.5), batch * dimension);
      if (options.energyWeight === 0) return matching as tf.Scalar;
      return tf.add(matching, tf.mul(tf.mean(energy), options.energyWeight / options.channels)) as tf.Scalar;
    });
  },
};

function checkOptions(options: ObjectiveOptions): void {
  requirePositive(options.sigma, 'sigma', 'dsm');
  if (options.energyWeight !== 0 && !(Number.isInteger(options.channels) && options.channels >= 1)) {
    throw new Error(`dsm objective: options.channels must be an integer ≥ 1 when λ ≠ 0, received ${options.channels}`);
  }
}
