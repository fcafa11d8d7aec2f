/**
 * Glow's invertible 1×1 convolution: the same C×C matrix W applied to the channel vector of every
 * pixel, y[b, h, w, :] = W·x[b, h, w, :], with no bias. Its Jacobian is block-diagonal with H·W
 * copies of W, so log|det ∂y/∂x| = H·W·log|det W|, which does not depend on x: the layer is
 * constant-Jacobian and its log-det is part of log Z.
 *
 * W starts as the Q factor of the Householder QR of a C×C standard normal matrix drawn from the
 * run's stream, with LAPACK's sign convention and no sign fix, like `torch.qr` in EBFlow's
 * reference PyTorch implementation (github.com/chen-hao-chao/ebflow). Q is orthogonal, so
 * log|det W| starts at 0, and det W starts at +1 or −1.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { RandomStream } from '../random/stream.js';
import { inverse as matrixInverse, logAbsDet } from '../tensor/linalg.js';
import { matMul } from '../tensor/matmul.js';
import type { FlowLayer, LayerForward } from './layer.js';

/**
 * C is 4 or 8 in the MNIST Glow. At that size float64 JavaScript is cheaper than a round trip to
 * the backend's matMul, and it avoids float32 rounding.
 */
const SMALL_MATRIX = { products: 'float64' } as const;

export interface Conv1x1LayerOptions {
  /** The shape [H, W, C] of one input sample; the output has the same shape. */
  inputShape: [number, number, number];
  /** The run's random stream; the C×C Gaussian matrix of the initialisation is drawn from it. */
  random: RandomStream;
  /** A short name for messages. Default "conv1x1". */
  name?: string;
}

export class Conv1x1Layer implements FlowLayer {
  readonly name: string;
  readonly constantJacobian = true;
  /** [weight]. */
  readonly variables: tf.Variable[];
  /** W, shape [C_out, C_in] = [C, C], in PyTorch's row order: y_o = Σ_c W[o, c]·x_c. */
  readonly weight: tf.Variable<tf.Rank.R2>;
  readonly inputShape: [number, number, number];
  readonly channels: number;

  /** Creates the layer with W = Q of a QR of a standard normal matrix; C² normal draws, O(C³). */
  constructor(options: Conv1x1LayerOptions) {
    this.name = options.name ?? 'conv1x1';
    const shape = options.inputShape;
    if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((n) => Number.isInteger(n) && n > 0)) {
      throw new RangeError(`${this.name}: inputShape must be [H, W, C] with positive integers, received ${JSON.stringify(shape)}`);
    }
    this.inputShape = [...shape];
    this.channels = shape[2];

    const gaussian = Float64Array.from(options.random.normalArray(this.channels * this.channels));
    const initial = tf.tensor2d(Float32Array.from(householderQ(gaussian, this.channels)), [this.channels, this.channels]);
    this.weight = tf.variable(initial);
    initial.dispose();
    this.variables = [this.weight];
  }

  /**
   * Returns y = W·x per pixel for x [B, H, W, C]; logDet is null (constant Jacobian). One
   * [B·H·W, C]×[C, C] product, O(B·H·W·C²).
   */
  forward(x: tf.Tensor): LayerForward {
    this.checkInput(x, 'forward');
    return { y: tf.tidy(() => this.applyPerPixel(x, this.weight)), logDet: null };
  }

  /**
   * Returns x = W⁻¹·y per pixel for y [B, H, W, C], with W⁻¹ from a float64 LU. Not
   * differentiable. O(C³ + B·H·W·C²).
   */
  inverse(y: tf.Tensor): tf.Tensor {
    this.checkInput(y, 'inverse');
    return tf.tidy(() => this.applyPerPixel(y, matrixInverse(this.weight, SMALL_MATRIX)));
  }

  /**
   * Returns log|det ∂y/∂x| = H·W·log|det W| in nats, differentiable in W (gradient H·W·W⁻ᵀ).
   * O(C³).
   */
  constantLogDet(): tf.Scalar {
    const [height, width] = this.inputShape;
    return tf.tidy(() => tf.mul(logAbsDet(this.weight, SMALL_MATRIX), height * width));
  }

  /** Disposes W; the layer is unusable afterwards. */
  dispose(): void {
    this.weight.dispose();
  }

  /** Returns matrix·v for the channel vector v of every pixel of x [B, H, W, C]. */
  private applyPerPixel(x: tf.Tensor, matrix: tf.Tensor2D): tf.Tensor {
    const rows = tf.reshape(x, [-1, this.channels]);
    // Row vectors: (W·v)ᵀ = vᵀ·Wᵀ.
    return tf.reshape(matMul(rows, matrix, false, true), x.shape);
  }

  private checkInput(x: tf.Tensor, method: string): void {
    const [height, width, channels] = this.inputShape;
    if (x.rank !== 4 || x.shape[1] !== height || x.shape[2] !== width || x.shape[3] !== channels) {
      throw new RangeError(
        `${this.name}: ${method} expects NHWC [B, ${height}, ${width}, ${channels}], received shape [${x.shape.join(', ')}]`,
      );
    }
  }
}

/**
 * Returns the orthogonal factor Q of the QR factorisation A = Q·R of the row-major n×n matrix `a`,
 * computed as LAPACK's dgeqr2 and dorg2r do: Householder reflections H_k = I − τ_k·v_k·v_kᵀ with
 * v_k[k] = 1, β_k = −sign(α_k)·‖A[k:, k]‖ on R's diagonal (α_k = A[k, k] at step k, sign(0) = +1),
 * no reflection where the column below the diagonal is already zero, and Q = H_0·H_1·…·H_{n−2}.
 * R's diagonal is not made positive. Float64, O(n³).
 */
export function householderQ(a: Float64Array, n: number): Float64Array {
  if (!Number.isInteger(n) || n < 1 || a.length !== n * n) {
    throw new RangeError(`householderQ: expected n×n = ${n}×${n} values, received ${a.length}`);
  }
  const r = Float64Array.from(a);
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  const v = new Float64Array(n);

  for (let k = 0; k < n - 1; k++) {
    const alpha = r[k * n + k];
    let belowSquared = 0;
    for (let i = k + 1; i < n; i++) belowSquared += r[i * n + k] ** 2;
    if (belowSquared === 0) continue;

    // 1. The reflector that maps column k below the diagonal onto β·e_k.
    const beta = -(alpha >= 0 ? 1 : -1) * Math.hypot(alpha, Math.sqrt(belowSquared));
    const tau = (beta - alpha) / beta;
    v[k] = 1;
    for (let i = k + 1; i < n; i++) v[i] = r[i * n + k] / (alpha - beta);

    // 2. R ← H_k·R on rows k… (columns k… change; column k becomes β·e_k).
    for (let j = k; j < n; j++) {
      let dot = 0;
      for (let i = k; i < n; i++) dot += v[i] * r[i * n + j];
      for (let i = k; i < n; i++) r[i * n + j] -= tau * v[i] * dot;
    }

    // 3. Q ← Q·H_k on columns k….
    for (let row = 0; row < n; row++) {
      let dot = 0;
      for (let i = k; i < n; i++) dot += q[row * n + i] * v[i];
      for (let i = k; i < n; i++) q[row * n + i] -= tau * dot * v[i];
    }
  }
  return q;
}
