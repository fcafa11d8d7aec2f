/**
 * The contract every flow layer meets.
 *
 * A layer is a bijection y = g(x) on a batch whose first axis is the sample axis. `forward`
 * returns the output and the per-sample log|det ∂y/∂x|. EBFlow splits the layers in two sets:
 * layers whose Jacobian does not depend on the input (dense matrices, convolutions, fixed
 * scalings: `constantJacobian = true`) and all others (element-wise non-linearities, couplings).
 * A constant-Jacobian layer's log-det depends on the parameters only; it is the layer's share of
 * the normalising constant, so score-matching objectives never compute it. Such a layer returns
 * `logDet = null` from `forward` and exposes its log-det through `constantLogDet()` instead.
 */
import type * as tf from '@tensorflow/tfjs-core';

export interface LayerForward {
  /** The output, same batch size as the input. */
  y: tf.Tensor;
  /**
   * Per-sample log|det J| of shape [B] in nats, or null for a constant-Jacobian layer, whose
   * log-det lives in `constantLogDet()`.
   */
  logDet: tf.Tensor1D | null;
}

export interface FlowLayer {
  /** A short name for messages and reports, such as "dense[0]". */
  readonly name: string;
  /** True when ∂y/∂x does not depend on x (EBFlow's linear set S_lin). */
  readonly constantJacobian: boolean;
  /** The trainable parameters of this layer, in a fixed order. */
  readonly variables: tf.Variable[];
  /** Maps x to y = g(x) with the per-sample log-det (null for constant-Jacobian layers). */
  forward(x: tf.Tensor): LayerForward;
  /** Maps y back to x = g⁻¹(y); used for sampling, never differentiated. */
  inverse(y: tf.Tensor): tf.Tensor;
  /**
   * Returns log|det ∂y/∂x| as a scalar in nats, differentiable in the parameters. Only
   * constant-Jacobian layers implement it; its cost is stated on each implementation.
   */
  constantLogDet?(): tf.Scalar;
  /**
   * For a constant-Jacobian layer whose log-det is log|det M| of one square matrix M (a dense
   * layer's W, a convolution's Toeplitz matrix), returns M, differentiable in the parameters, so
   * that a flow can compute the log-dets of all such layers in one `sumLogAbsDet` call. The
   * layer still implements `constantLogDet()`, with the same value. O(1) for a dense layer, the
   * build of M otherwise.
   */
  constantLogDetMatrix?(): tf.Tensor2D;
}
