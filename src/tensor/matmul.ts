/**
 * Matrix product that is differentiable to any order and avoids slow transposed kernels.
 *
 * The wasm backend of tfjs 4.22 computes `tf.matMul` with `transposeA` or `transposeB` on a
 * slow path, about 10 times slower than the plain product, and tfjs's built-in MatMul gradient
 * uses those flags on every backward pass. This module transposes explicitly and then calls the
 * plain product, in the forward pass and in its gradient, which is built with `tf.customGrad`
 * from this same function, so every further derivative takes the fast path too.
 */
import * as tf from '@tensorflow/tfjs-core';

import './register-gradients.js';

/** a·b for untransposed 2-D operands, with a gradient defined through itself. */
const plainMatMul = tf.customGrad(((a: tf.Tensor2D, b: tf.Tensor2D, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
      const [savedA, savedB] = saved as [tf.Tensor2D, tf.Tensor2D];
      // d(a·b) = da·b + a·db, so ∂L/∂a = dy·bᵀ and ∂L/∂b = aᵀ·dy.
      return [plainMatMul(dy, tf.transpose(savedB)), plainMatMul(tf.transpose(savedA), dy)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * Computes op(a)·op(b) for 2-D tensors, where op transposes when the flag is set.
 *
 * The result has shape [m, n] for op(a) of shape [m, k] and op(b) of shape [k, n]. Cost: 2mkn
 * floating-point operations plus one explicit transpose per set flag (O(mk) or O(kn)); each
 * derivative costs the same again.
 */
export function matMul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2) {
    throw new Error(`matMul: both operands must be 2-D, received shapes [${a.shape}] and [${b.shape}]; reshape them first.`);
  }
  const innerA = transposeA ? a.shape[0] : a.shape[1];
  const innerB = transposeB ? b.shape[1] : b.shape[0];
  if (innerA !== innerB) {
    throw new Error(
      `matMul: inner dimensions differ: a is [${a.shape}] with transposeA=${transposeA} and ` +
        `b is [${b.shape}] with transposeB=${transposeB}, giving ${innerA} and ${innerB}.`,
    );
  }
  return tf.tidy(() => {
    const left = transposeA ? tf.transpose(a as tf.Tensor2D) : (a as tf.Tensor2D);
    const right = transposeB ? tf.transpose(b as tf.Tensor2D) : (b as tf.Tensor2D);
    return plainMatMul(left, right);
  });
}
