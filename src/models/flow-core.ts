/**
 * Helpers every EBFlow model shares: the standard normal base, and the energy, normalising
 * constant, log-density and inverse of a flow given as a list of layers.
 *
 * With z = g(x) the output of the last layer,
 *   E(x)     = −[log N(z) + Σ_{l ∈ S_n} log|det J_l(x)|]     (layers with `constantJacobian = false`)
 *   log Z(θ) = −Σ_{l ∈ S_lin} log|det J_l|                    (layers with `constantJacobian = true`)
 *   log p(x) = −E(x) − log Z(θ).
 * The energy never calls `constantLogDet()`, so score-matching objectives never pay for it.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { FlowLayer } from '../layers/layer.js';
import { sumLogAbsDet } from '../tensor/linalg.js';

/** ln(2π), the per-dimension constant of the standard normal log-density. */
export const LOG_TWO_PI = Math.log(2 * Math.PI);

/**
 * Returns log N(z; 0, I) = −½‖z‖² − (D/2)·ln(2π) per sample, shape [B], nats. The norm runs over
 * every non-batch axis of z. O(BD).
 */
export function standardNormalLogDensity(z: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const flat = flattenSamples(z);
    const dimension = flat.shape[1];
    const halfSquaredNorm = tf.mul(tf.sum(tf.square(flat), 1), 0.5);
    return tf.neg(tf.add(halfSquaredNorm, 0.5 * dimension * LOG_TWO_PI)) as tf.Tensor1D;
  });
}

/**
 * Reshapes a batch [B, …] to [B, D] with D the product of the non-batch axes. When `dimension` is
 * given, a different D raises an error naming `component`. The reshape is a view: O(1).
 */
export function flattenSamples(x: tf.Tensor, dimension?: number, component = 'flattenSamples'): tf.Tensor2D {
  if (x.rank < 1) {
    throw new Error(`${component}: expected a batch of shape [B, …], received a scalar`);
  }
  const batch = x.shape[0];
  const perSample = x.shape.slice(1).reduce((product, size) => product * size, 1);
  if (dimension !== undefined && perSample !== dimension) {
    throw new Error(
      `${component}: each sample must have ${dimension} elements, received shape [${x.shape.join(', ')}] ` +
        `(${perSample} per sample); pass a batch whose non-batch axes multiply to ${dimension}`,
    );
  }
  return x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [batch, perSample]);
}

/** The output of a layer stack and the summed input-dependent log-dets. */
export interface StackForward {
  /** The last layer's output. */
  z: tf.Tensor;
  /** Σ over the layers with `constantJacobian = false` of their per-sample log-det, shape [B]; null if none. */
  logDet: tf.Tensor1D | null;
}

/**
 * Runs x through the layers in order and sums the per-sample log-dets of the input-dependent
 * layers. Constant-Jacobian layers return no log-det and none is computed for them. The cost is
 * the sum of the layers' forward costs.
 */
export function forwardThroughLayers(layers: readonly FlowLayer[], x: tf.Tensor): StackForward {
  const result = tf.tidy(() => {
    let current = x;
    let logDet: tf.Tensor1D | null = null;
    for (const layer of layers) {
      const out = layer.forward(current);
      current = out.y;
      if (out.logDet !== null) {
        logDet = logDet === null ? out.logDet : (tf.add(logDet, out.logDet) as tf.Tensor1D);
      }
    }
    return logDet === null ? { z: current } : { z: current, logDet };
  });
  return { z: result.z, logDet: result.logDet ?? null };
}

/**
 * Returns E(x) = −[log N(g(x)) + Σ_{S_n} log|det J_l(x)|] per sample, shape [B], nats, for a
 * flow with a standard normal base. Never calls `constantLogDet()`. The cost is one forward pass.
 */
export function energyThroughLayers(layers: readonly FlowLayer[], x: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const { z, logDet } = forwardThroughLayers(layers, x);
    const logBase = standardNormalLogDensity(z);
    const logUnnormalised = logDet === null ? logBase : tf.add(logBase, logDet);
    return tf.neg(logUnnormalised) as tf.Tensor1D;
  });
}

/**
 * Returns log Z(θ) = −Σ_{S_lin} log|det J_l| as a scalar in nats, differentiable in θ. The cost is
 * the sum of the constant-Jacobian layers' `constantLogDet()` costs (O(D³) each for a dense layer).
 * The log-dets of layers with `constantLogDetMatrix()` are computed together by `sumLogAbsDet`,
 * which can run two of them at once on two threads.
 */
export function logNormalizerOfLayers(layers: readonly FlowLayer[]): tf.Scalar {
  return tf.tidy(() => {
    let total: tf.Scalar = tf.scalar(0);
    const matrices: tf.Tensor2D[] = [];
    for (const layer of layers) {
      if (!layer.constantJacobian) continue;
      if (layer.constantLogDetMatrix !== undefined) {
        matrices.push(layer.constantLogDetMatrix());
        continue;
      }
      if (layer.constantLogDet === undefined) {
        throw new Error(
          `logNormalizerOfLayers: layer "${layer.name}" has constantJacobian = true but no constantLogDet(); ` +
            'implement constantLogDet() on every constant-Jacobian layer',
        );
      }
      total = tf.add(total, layer.constantLogDet());
    }
    if (matrices.length > 0) total = tf.add(total, sumLogAbsDet(matrices));
    return tf.neg(total);
  });
}

/**
 * Maps latents z back to data space by inverting the layers in reverse order. Meant for sampling,
 * outside any gradient tape. The cost is the sum of the layers' inverse costs.
 */
export function inverseThroughLayers(layers: readonly FlowLayer[], z: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    let current = z;
    for (let index = layers.length - 1; index >= 0; index--) {
      current = layers[index].inverse(current);
    }
    return current;
  });
}

/** Lists every trainable variable of the layers: layers in order, then each layer's own order. */
export function collectVariables(layers: readonly FlowLayer[]): tf.Variable[] {
  return layers.flatMap((layer) => layer.variables);
}
