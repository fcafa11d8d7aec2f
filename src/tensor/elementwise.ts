/**
 * Element-wise functions whose derivatives are correct to any order.
 *
 * tfjs-core 4.22 defines the gradients of `tf.tanh`, `tf.sigmoid` and `tf.exp` from the kernel's
 * saved output, and that saved copy is not connected to the input on the gradient tape. A nested
 * `tf.grad` through them therefore drops the second-order term without any error: the second
 * derivative of x·tanh(x) comes out as 0.51 instead of −0.06 at x = −1.3 (see
 * test/tensor/elementwise.test.ts). Score matching differentiates the energy two or three times,
 * so the flows use the wrappers below instead.
 *
 * Each wrapper is a `tf.customGrad` whose gradient is built from differentiable ops applied to the
 * input it saved, and every derivative is expressed through the wrappers themselves, so each
 * further `tf.grad` again finds a correct gradient. Every function costs O(N) for N elements.
 */
import * as tf from '@tensorflow/tfjs-core';

import './register-gradients.js';

/** An element-wise function on tensors of any shape. */
export type ElementwiseFunction = (x: tf.Tensor) => tf.Tensor;

/**
 * Builds an element-wise function from its forward computation and its derivative.
 * `derivative` must itself use only differentiable ops and wrappers from this module.
 */
function withHigherOrderGradient(forward: ElementwiseFunction, derivative: ElementwiseFunction): ElementwiseFunction {
  const op = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    // The gradient must read x from the saved list: the closure's x is not on the outer tape.
    save([x]);
    return {
      value: forward(x),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, derivative(saved[0])),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (x: tf.Tensor) => op(x);
}

/**
 * Computes e^x. Its derivative is e^x, written with this wrapper.
 */
export const exp: ElementwiseFunction = withHigherOrderGradient(
  (x) => tf.exp(x),
  (x) => exp(x),
);

/**
 * Computes the logistic function σ(x) = 1 / (1 + e^−x). Its derivative is σ(x)·σ(−x), which
 * stays accurate in float32 where σ(x)·(1 − σ(x)) rounds to 0 (x above about 17).
 */
export const sigmoid: ElementwiseFunction = withHigherOrderGradient(
  (x) => tf.sigmoid(x),
  (x) => tf.mul(sigmoid(x), sigmoid(tf.neg(x))),
);

/**
 * Computes ln(1 + u) to float32 precision for u ≥ 0, including u below float32's epsilon.
 *
 * The wasm backend of tfjs 4.22 computes `tf.log1p(u)` as ln(1 + u), which is 0.1% off at
 * u = 1e-5 and returns 0 below u ≈ 6e-8. Kahan's correction ln(w)·u/(w − 1) with w = 1 + u
 * cancels the rounding of w, and where w rounds to 1 the result is u itself. Not
 * differentiable (it uses `tf.where`); used only inside forward passes.
 */
function log1pAccurate(u: tf.Tensor): tf.Tensor {
  const w = tf.add(u, 1);
  const roundedU = tf.sub(w, 1);
  const corrected = tf.div(tf.mul(tf.log(w), u), tf.maximum(roundedU, Number.MIN_VALUE));
  return tf.where(tf.equal(roundedU, 0), u, corrected);
}

/** Returns ln(1 + e^−|x|), a value in (0, ln 2]. */
function log1pExpNegAbs(x: tf.Tensor): tf.Tensor {
  return log1pAccurate(tf.exp(tf.neg(tf.abs(x))));
}

/**
 * Computes softplus(x) = ln(1 + e^x) as max(x, 0) + ln(1 + e^−|x|), which does not overflow
 * for large x and keeps its relative accuracy for very negative x (softplus(−80) ≈ 1.8e−35).
 * Its derivative is σ(x).
 */
export const softplus: ElementwiseFunction = withHigherOrderGradient(
  (x) => tf.add(tf.relu(x), log1pExpNegAbs(x)),
  (x) => sigmoid(x),
);

/**
 * Computes ln σ(x) = −softplus(−x) as min(x, 0) − ln(1 + e^−|x|). Its derivative is σ(−x).
 */
export const logSigmoid: ElementwiseFunction = withHigherOrderGradient(
  (x) => tf.sub(tf.neg(tf.relu(tf.neg(x))), log1pExpNegAbs(x)),
  (x) => sigmoid(tf.neg(x)),
);

/**
 * Computes tanh(x). Its derivative is written as 4·σ(2x)·σ(−2x), which equals 1 − tanh²(x)
 * but keeps its accuracy in float32 for |x| above about 9.
 */
export const tanh: ElementwiseFunction = withHigherOrderGradient(
  (x) => tf.tanh(x),
  (x) => {
    const doubled = tf.mul(x, 2);
    return tf.mul(tf.mul(sigmoid(doubled), sigmoid(tf.neg(doubled))), 4);
  },
);

/** The output of the smooth leaky ReLU and the log of its slope, both shaped like the input. */
export interface SmoothLeakyReluOutput {
  y: tf.Tensor;
  /** ln f′(x) in nats; the layer's log-det contribution of each element. */
  logSlope: tf.Tensor;
}

/**
 * Computes the smooth leaky ReLU f(x) = α·x + (1−α)·softplus(x), plus x when `residual`, and
 * ln f′(x) = ln(α + (1−α)·σ(x) [+ 1]). Both outputs are differentiable to any order in x.
 * `alpha` must lie in [0, 1]. O(N) for N elements.
 */
export function smoothLeakyRelu(x: tf.Tensor, alpha: number, residual: boolean): SmoothLeakyReluOutput {
  checkAlpha('smoothLeakyRelu', alpha);
  const linearSlope = residual ? alpha + 1 : alpha;
  return tf.tidy(() => {
    const y = tf.add(tf.mul(x, linearSlope), tf.mul(softplus(x), 1 - alpha));
    const logSlope = tf.log(tf.add(tf.mul(sigmoid(x), 1 - alpha), linearSlope));
    return { y, logSlope };
  });
}

/**
 * Computes the smooth leaky ReLU's slope f′(x) = α + (1−α)·σ(x), plus 1 when `residual`.
 * Differentiable to any order. O(N).
 */
export function slrSlope(x: tf.Tensor, alpha: number, residual = false): tf.Tensor {
  checkAlpha('slrSlope', alpha);
  const linearSlope = residual ? alpha + 1 : alpha;
  return tf.tidy(() => tf.add(tf.mul(sigmoid(x), 1 - alpha), linearSlope));
}

/**
 * Computes the smooth leaky ReLU's second derivative f″(x) = (1−α)·σ(x)·σ(−x); the residual
 * term is linear and does not contribute. Differentiable to any order. O(N).
 */
export function slrSecondDerivative(x: tf.Tensor, alpha: number): tf.Tensor {
  checkAlpha('slrSecondDerivative', alpha);
  return tf.tidy(() => tf.mul(tf.mul(sigmoid(x), sigmoid(tf.neg(x))), 1 - alpha));
}

/**
 * Computes the smooth leaky ReLU's third derivative f‴(x) = (1−α)·σ(x)·σ(−x)·(σ(−x) − σ(x)).
 * Differentiable to any order. O(N).
 */
export function slrThirdDerivative(x: tf.Tensor, alpha: number): tf.Tensor {
  checkAlpha('slrThirdDerivative', alpha);
  return tf.tidy(() => {
    const positive = sigmoid(x);
    const negative = sigmoid(tf.neg(x));
    return tf.mul(tf.mul(tf.mul(positive, negative), tf.sub(negative, positive)), 1 - alpha);
  });
}

function checkAlpha(caller: string, alpha: number): void {
  if (!Number.isFinite(alpha) || alpha < 0 || alpha > 1) {
    throw new RangeError(`${caller}: alpha must be a number in [0, 1], received ${alpha}; the paper uses 0.3.`);
  }
}
