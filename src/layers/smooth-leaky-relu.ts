/**
 * The smooth leaky ReLU, the only non-linearity of EBFlow's FC and CNN models:
 *   f(x)  = α·x + (1−α)·softplus(x) [+ x when residual]
 *   f′(x) = α + (1−α)·σ(x)          [+ 1 when residual]
 * applied element-wise. Its Jacobian is diagonal and depends on x, so its log-det Σ ln f′(x_i)
 * is part of the energy. f′ lies in (α, 1), or (1+α, 2) with the residual term, so ln f′ is
 * always finite.
 */
import * as tf from '@tensorflow/tfjs-core';

import { sigmoid, smoothLeakyRelu, softplus } from '../tensor/elementwise.js';
import type { FlowLayer, LayerForward } from './layer.js';

/** The slope of the negative side used by every shipped configuration. */
export const DEFAULT_SLR_ALPHA = 0.3;
/** Newton iterations of the inverse; fixed, with no convergence test, as in the authors' PyTorch code. */
export const NEWTON_ITERATIONS = 100;
/** Lower bound on f′ in the Newton step, as in the authors' PyTorch code. */
export const NEWTON_SLOPE_FLOOR = 0.01;

export interface SmoothLeakyReluOptions {
  /** A short name for messages, such as "slr[0]". */
  name: string;
  /** α in (0, 1): the slope for x → −∞ (without the residual term). */
  alpha?: number;
  /** Adds x to the output (slope range (1+α, 2) instead of (α, 1)). */
  residual: boolean;
}

export class SmoothLeakyReluLayer implements FlowLayer {
  readonly name: string;
  readonly constantJacobian = false;
  readonly variables: tf.Variable[] = [];
  readonly alpha: number;
  readonly residual: boolean;

  constructor(options: SmoothLeakyReluOptions) {
    const alpha = options.alpha ?? DEFAULT_SLR_ALPHA;
    if (!(alpha > 0 && alpha < 1)) {
      throw new Error(`SmoothLeakyReluLayer "${options.name}": alpha must lie in (0, 1), received ${alpha}`);
    }
    this.name = options.name;
    this.alpha = alpha;
    this.residual = options.residual;
  }

  /** Maps x [B, …] to f(x) with log-det Σ_i ln f′(x_i) per sample, shape [B]. O(BD). */
  forward(x: tf.Tensor): LayerForward {
    return tf.tidy(() => {
      const { y, logSlope } = smoothLeakyRelu(x, this.alpha, this.residual);
      const perSample = tf.reshape(logSlope, [x.shape[0], -1]);
      return { y, logDet: tf.sum(perSample, 1) as tf.Tensor1D };
    });
  }

  /**
   * Inverts f element-wise with exactly 100 Newton steps x ← x − (f(x) − y)/max(f′(x), 0.01)
   * from x₀ = y, as the authors' PyTorch code does. The iteration runs in float64 in JavaScript on values
   * read from the backend, and its result is returned as a new float32 tensor, so it is never
   * differentiated. O(BD) exponentials and logarithms per step, at most 100 steps.
   */
  inverse(y: tf.Tensor): tf.Tensor {
    const values = y.dataSync();
    const result = new Float32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      result[i] = invertSmoothLeakyReluScalar(values[i], this.alpha, this.residual);
    }
    return tf.tensor(result, y.shape, 'float32');
  }
}

/**
 * Returns x with f(x) = target by the Newton iteration of the authors' PyTorch code (100 steps,
 * slope floor 0.01, start at the target), in float64. A non-finite target gives a non-finite
 * result.
 *
 * The step is a fixed function of x, so once an iterate repeats, the rest of the 100 steps is
 * known. The loop stops at a fixed point (step exactly 0), or at a 2-cycle between neighbouring
 * floats, and returns the iterate that step 100 would reach. Most targets settle within 10 steps.
 */
export function invertSmoothLeakyReluScalar(target: number, alpha: number, residual: boolean): number {
  let previous = Number.NaN;
  let current = target;
  for (let step = 0; step < NEWTON_ITERATIONS; step++) {
    const next = newtonStep(current, target, alpha, residual);
    if (next === current) return current;
    if (next === previous) {
      // Iterates step−1, step, step+1, … alternate between `previous` and `current`.
      return (NEWTON_ITERATIONS - (step - 1)) % 2 === 0 ? previous : current;
    }
    previous = current;
    current = next;
  }
  return current;
}

/** Returns one Newton step x − (f(x) − target)/max(f′(x), 0.01) for the SLR, in float64. */
export function newtonStep(x: number, target: number, alpha: number, residual: boolean): number {
  const linearSlope = residual ? alpha + 1 : alpha;
  // One exponential serves both softplus and the logistic function.
  const decay = Math.exp(-Math.abs(x));
  const softplusValue = Math.max(x, 0) + Math.log1p(decay);
  const logistic = x >= 0 ? 1 / (1 + decay) : decay / (1 + decay);
  const value = linearSlope * x + (1 - alpha) * softplusValue;
  const slope = linearSlope + (1 - alpha) * logistic;
  return x - (value - target) / Math.max(slope, NEWTON_SLOPE_FLOOR);
}

/** f, ln f′ and the derivatives f′, f″, f‴ of the smooth leaky ReLU at h, element-wise. */
export interface SmoothLeakyReluTerms {
  /** f(h). */
  y: tf.Tensor;
  /** f′(h) = α + (1−α)σ(h) [+1]. */
  slope: tf.Tensor;
  /** ln f′(h). */
  logSlope: tf.Tensor;
  /** f″(h) = (1−α)σ(h)(1−σ(h)). */
  curvature: tf.Tensor;
  /** f‴(h) = (1−α)σ(h)(1−σ(h))(1−2σ(h)); present when requested. */
  thirdDerivative?: tf.Tensor;
}

/**
 * Returns f(h), f′(h), ln f′(h), f″(h) and optionally f‴(h), all from one σ(h) and one
 * softplus(h). Every op is differentiable to any order, so explicit score formulas built from
 * these terms can be differentiated again in θ. O(BD).
 */
export function smoothLeakyReluTerms(
  h: tf.Tensor,
  alpha: number,
  residual: boolean,
  withThirdDerivative: boolean,
): SmoothLeakyReluTerms {
  return tf.tidy(() => {
    const linearSlope = residual ? alpha + 1 : alpha;
    const logistic = sigmoid(h);
    const y = tf.add(tf.mul(h, linearSlope), tf.mul(softplus(h), 1 - alpha));
    const slope = tf.add(tf.mul(logistic, 1 - alpha), linearSlope);
    const logSlope = tf.log(slope);
    // σ(1−σ) = σ − σ², the logistic function's derivative.
    const logisticDerivative = tf.sub(logistic, tf.square(logistic));
    const curvature = tf.mul(logisticDerivative, 1 - alpha);
    if (!withThirdDerivative) {
      return { y, slope, logSlope, curvature };
    }
    const thirdDerivative = tf.mul(curvature, tf.sub(1, tf.mul(logistic, 2)));
    return { y, slope, logSlope, curvature, thirdDerivative };
  });
}
