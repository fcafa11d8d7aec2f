/**
 * Gradient clipping by global L2 norm, as PyTorch's clip_grad_norm_: with the norm over all
 * gradients n = √(Σ‖g_i‖²), every gradient is scaled by min(1, maxNorm/(n + 1e-6)).
 */
import * as tf from '@tensorflow/tfjs-core';

import { fusedUpdateAvailable, sumOfSquares } from '../tensor/fused-update.js';

/** PyTorch's clip_grad_norm_ adds this to the norm before dividing. */
const NORM_OFFSET = 1e-6;

/**
 * Returns the global L2 norm √(Σ_i ‖g_i‖²) of `gradients` as a scalar tensor. O(P): one read of
 * each gradient on the wasm backend (sums in float64), two tensor ops per gradient elsewhere.
 * So a norm whose square overflows float32 (a norm above about 1.8e19) is finite on wasm and
 * infinite elsewhere, where the session then skips the step.
 */
export function globalNorm(gradients: readonly tf.Tensor[]): tf.Scalar {
  if (gradients.length === 0) {
    throw new RangeError('gradient clipping: received no gradients; pass at least one tensor');
  }
  if (fusedUpdateAvailable() && gradients.every((g) => g.dtype === 'float32')) {
    return tf.scalar(Math.sqrt(sumOfSquares(gradients)));
  }
  return tf.tidy(() => tf.sqrt(tf.addN(gradients.map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
}

/**
 * Returns the factor min(1, maxNorm/(norm + 1e-6)) that clipping multiplies every gradient by,
 * for a finite `norm`; optimisers take it as their `gradientScale`.
 */
export function clipScale(norm: number, maxNorm: number): number {
  if (!(Number.isFinite(maxNorm) && maxNorm > 0)) {
    throw new RangeError(`gradient clipping: maxNorm must be a finite number > 0, received ${maxNorm}`);
  }
  return Math.min(1, maxNorm / (norm + NORM_OFFSET));
}

/**
 * Returns new tensors g_i·min(1, maxNorm/(norm + 1e-6)), where `norm` is the global norm of
 * `gradients` (computed here when not passed). The inputs stay owned by the caller. A
 * non-finite norm yields non-finite gradients: the caller must check the norm and skip the
 * update. O(P).
 */
export function clipByGlobalNorm(gradients: readonly tf.Tensor[], maxNorm: number, norm?: tf.Scalar): tf.Tensor[] {
  if (!(Number.isFinite(maxNorm) && maxNorm > 0)) {
    throw new RangeError(`gradient clipping: maxNorm must be a finite number > 0, received ${maxNorm}`);
  }
  return tf.tidy(() => {
    const total = norm ?? globalNorm(gradients);
    const scale = tf.minimum(tf.scalar(1), tf.div(tf.scalar(maxNorm), tf.add(total, tf.scalar(NORM_OFFSET))));
    return gradients.map((g) => tf.mul(g, scale));
  });
}
