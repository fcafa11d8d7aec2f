/**
 * `ssm`: sliced score matching with Rademacher slices. With k slices the batch is replicated
 * slice-major (rows [copy₁ of all B; copy₂; …], kB rows), each row r gets its own direction
 * v_r ∈ {±1}^D, and with the model score s = −∇ₓE and Hessian H_f = −∇²ₓE,
 *   q_r   = ½‖s_r‖² + v_rᵀ H_f v_r = ½‖∇ₓE(x_r)‖² − v_rᵀ (∇²ₓE(x_r)) v_r,
 *   L_ssm = (1/(k²·B·D)) Σ_r q_r + (λ/(k·C)) · mean_r E(x_r),
 * the reduction of the authors' PyTorch code for image data. The λ term is left out when λ = 0.
 * No log-det is computed.
 *
 * Derivatives: the score and the Hessian-vector product in x, then the θ-gradient of both (third
 * order ∂θ∂x∂x in total). With the FC model's explicit formulas only the θ level is autodiff.
 * Cost for the FC model: O(kBD²L) (4L matrix products forward, about twice that backward).
 */
import * as tf from '@tensorflow/tfjs-core';

import { elementsPerSample, energyDerivativesOf, requirePrepared } from './derivatives.js';
import type { Objective, ObjectiveOptions } from './objective.js';

export const ssmObjective: Objective = {
  name: 'ssm',

  /**
   * Draws `directions`, kB·D Rademacher values from the stream, shape [kB, …sample shape],
   * slice-major like the replicated batch.
   */
  prepare(_model, x, random, options) {
    const slices = checkSlices(options);
    const rows = slices * x.shape[0];
    const values = random.rademacherArray(rows * elementsPerSample(x));
    return { directions: tf.tensor(values, [rows, ...x.shape.slice(1)], 'float32') };
  },

  /** Returns L_ssm (see the file comment). */
  loss(model, x, prepared, options) {
    const slices = checkSlices(options);
    const directions = requirePrepared(prepared, 'directions', 'ssm');
    return tf.tidy(() => {
      const batch = x.shape[0];
      const dimension = elementsPerSample(x);
      const replicated = slices === 1 ? x : tf.concat(new Array<tf.Tensor>(slices).fill(x), 0);
      const { energy, gradient, hessianVector } = energyDerivativesOf(
        model,
        replicated,
        directions,
        options.explicitDerivatives,
      );
      if (hessianVector === undefined) {
        throw new Error('ssm objective: the model returned no Hessian-vector product for the direction passed');
      }

      const halfSquaredScore = tf.mul(tf.sum(tf.square(gradient)), 0.5);
      const curvature = tf.sum(tf.mul(directions, hessianVector));
      const matching = tf.div(tf.sub(halfSquaredScore, curvature), slices * slices * batch * dimension);
      if (options.energyWeight === 0) return matching as tf.Scalar;
      const weight = options.energyWeight / (slices * options.channels);
      return tf.add(matching, tf.mul(tf.mean(energy), weight)) as tf.Scalar;
    });
  },
};

function checkSlices(options: ObjectiveOptions): number {
  if (!Number.isInteger(options.slices) || options.slices < 1) {
    throw new Error(`ssm objective: options.slices must be an integer ≥ 1, received ${options.slices}`);
  }
  if (options.energyWeight !== 0 && !(Number.isInteger(options.channels) && options.channels >= 1)) {
    throw new Error(`ssm objective: options.channels must be an integer ≥ 1 when λ ≠ 0, received ${options.channels}`);
  }
  return options.slices;
}
