/**
 * `ml`: maximum likelihood,
 *   L_ml = (1/B) Σ_b −log p(x_b) = mean_b E(x_b) + log Z(θ),
 * in nats per sample (not divided by D, as in the authors' PyTorch code). The θ-gradient flows through the
 * constant-Jacobian log-dets (log|det W| per dense layer, gradient W⁻ᵀ).
 *
 * Cost for the FC model: O(D³L) for the log-dets and their gradients plus O(BD²L) for the
 * forward and backward passes; first-order autodiff only.
 */
import * as tf from '@tensorflow/tfjs-core';

import { constantInputEnergyOf } from './derivatives.js';
import type { Objective } from './objective.js';

export const mlObjective: Objective = {
  name: 'ml',

  /** ML needs nothing besides x. */
  prepare() {
    return {};
  },

  /** Returns −mean_b log p(x_b) = mean_b E(x_b) + log Z, nats. */
  loss(model, x, _prepared, options) {
    return tf.tidy(() => {
      if (options.explicitDerivatives && model.constantInputEnergyAndLogNormalizer !== undefined) {
        const { energy, logNormalizer } = model.constantInputEnergyAndLogNormalizer(x);
        return tf.add(tf.mean(energy), logNormalizer) as tf.Scalar;
      }
      const energy = constantInputEnergyOf(model, x, options.explicitDerivatives);
      return tf.add(tf.mean(energy), model.logNormalizer()) as tf.Scalar;
    });
  },
};
