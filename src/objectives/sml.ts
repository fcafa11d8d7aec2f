/**
 * `sml`: sampling-based maximum likelihood. ∇θ log Z = −E_{x̂~p_θ}[∇θ E(x̂)] is estimated with B
 * exact model samples x̂ = g⁻¹(z), z ~ N(0, I), drawn in `prepare` and treated as constants:
 *   L_sml = (1/(2B)) Σ_b [E(x_b) − E(x̂_b)],
 * with one energy pass over the 2B rows [x; x̂]. The divisor is 2B, the length of the
 * concatenated batch, as in the authors' PyTorch code for image data. No log-det is computed.
 *
 * Cost for the FC model: `prepare` inverts the flow with a linear solve per dense layer and 100
 * Newton steps per SLR, O(D³L + BD²L). The loss is O(BD²L) with first-order autodiff.
 */
import * as tf from '@tensorflow/tfjs-core';

import { float32TensorFrom } from '../tensor/wasm-memory.js';
import { constantInputEnergyOf, elementsPerSample, requirePrepared } from './derivatives.js';
import type { Objective } from './objective.js';

export const smlObjective: Objective = {
  name: 'sml',

  /**
   * Draws z ~ N(0, I) of shape [B, D] from the stream (B·D normals, row-major) and returns
   * `samples` = model.inverse(z), reshaped to x's shape.
   */
  prepare(model, x, random) {
    const batch = x.shape[0];
    const dimension = elementsPerSample(x);
    return tf.tidy(() => {
      const latents = float32TensorFrom([batch, dimension], (values) => random.fillNormal(values));
      return { samples: tf.reshape(model.inverse(latents), x.shape) };
    });
  },

  /** Returns (Σ_b E(x_b) − Σ_b E(x̂_b)) / (2B), nats. */
  loss(model, x, prepared, options) {
    const samples = requirePrepared(prepared, 'samples', 'sml');
    return tf.tidy(() => {
      const batch = x.shape[0];
      const energy = constantInputEnergyOf(model, tf.concat([x, samples], 0), options.explicitDerivatives);
      const [dataEnergy, sampleEnergy] = tf.split(energy, [batch, batch]);
      return tf.div(tf.sub(tf.sum(dataEnergy), tf.sum(sampleEnergy)), 2 * batch) as tf.Scalar;
    });
  },
};
