/**
 * `fdssm`: finite-difference sliced score matching. Each sample gets a direction
 * v_b = ε·g_b/‖g_b‖, g_b ~ N(0, I), uniform on the sphere of radius ε (no epsilon in the norm).
 * One energy pass over the 3B rows [x; x+v; x−v] gives E₀, E₊, E₋ and
 *   ℓ_b     = (E₊ − E₋)²/8 + 2E₀ − E₊ − E₋   (≈ ½(vᵀ∇f)² + vᵀ∇²f v for f = −E),
 *   L_fdssm = (1/(B·ε²)) Σ_b ℓ_b + (λ/ε²) · mean_b E₀,
 * the reduction of the authors' PyTorch code for image data. There is no division by D, because
 * E[vvᵀ] = (ε²/D)·I already puts the estimate on a per-dimension scale, and the λ term is left out
 * when λ = 0. No log-det and no input derivative are computed: first-order autodiff only.
 *
 * Cost for the FC model: O(BD²L), one forward pass over 3B rows and its backward pass. The first
 * layer's product and its weight gradient run on the 2B rows [x; v] (`FcFlow.shiftedEnergies`).
 */
import * as tf from '@tensorflow/tfjs-core';

import { float32TensorFrom } from '../tensor/wasm-memory.js';
import { elementsPerSample, requirePositive, requirePrepared, shiftedEnergiesOf } from './derivatives.js';
import type { Objective } from './objective.js';

export const fdssmObjective: Objective = {
  name: 'fdssm',

  /**
   * Draws g, B·D standard normals from the stream (row-major), and returns `directions`
   * v_b = ε·g_b/‖g_b‖ with x's shape.
   */
  prepare(_model, x, random, options) {
    requirePositive(options.epsilon, 'epsilon', 'fdssm');
    const batch = x.shape[0];
    const dimension = elementsPerSample(x);
    return tf.tidy(() => {
      const gaussian = float32TensorFrom([batch, dimension], (values) => random.fillNormal(values));
      // √(Σg²) per row: tf.norm's power kernel is several times slower on wasm than a square.
      const norms = tf.sqrt(tf.sum(tf.square(gaussian), 1, true));
      const directions = tf.mul(tf.div(gaussian, norms), options.epsilon);
      return { directions: tf.reshape(directions, x.shape) };
    });
  },

  /** Returns L_fdssm (see the file comment). */
  loss(model, x, prepared, options) {
    requirePositive(options.epsilon, 'epsilon', 'fdssm');
    const directions = requirePrepared(prepared, 'directions', 'fdssm');
    return tf.tidy(() => {
      const batch = x.shape[0];
      const energy = shiftedEnergiesOf(model, x, directions, options.explicitDerivatives);
      const [centre, plus, minus] = tf.split(energy, [batch, batch, batch]);

      const difference = tf.sub(plus, minus);
      const perSample = tf.add(
        tf.div(tf.square(difference), 8),
        tf.sub(tf.mul(centre, 2), tf.add(plus, minus)),
      );
      const epsilonSquared = options.epsilon * options.epsilon;
      const matching = tf.div(tf.sum(perSample), batch * epsilonSquared);
      if (options.energyWeight === 0) return matching as tf.Scalar;
      return tf.add(matching, tf.mul(tf.mean(centre), options.energyWeight / epsilonSquared)) as tf.Scalar;
    });
  },
};
