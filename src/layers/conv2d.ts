/**
 * A C→C convolution flow layer: y = conv(x, W) + b with stride 1, zero padding (K − 1)/2 and a
 * K×K kernel, PyTorch cross-correlation semantics, on NHWC tensors. Initialisation, spectral
 * normalisation and the Toeplitz log-det follow EBFlow's reference PyTorch implementation
 * (github.com/chen-hao-chao/ebflow), called "the reference" below.
 *
 * The map is linear in x, so its Jacobian is the D×D Toeplitz matrix T(W) of the convolution on the
 * layer's input shape (D = H·W·C) and the layer belongs to EBFlow's constant-Jacobian set: forward
 * returns no log-det, and `constantLogDet()` returns log|det T(W)| for maximum likelihood and exact
 * evaluation.
 *
 * Rows and columns of T follow the NHWC flattening, flat index of (h, w, c) = (h·W + w)·C + c,
 * where the reference uses channel-major order. The two orders differ by one permutation P applied to
 * rows and columns alike, and det(P T Pᵀ) = det T, so the log-det is the same.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { RandomStream } from '../random/stream.js';
import { logAbsDet, solve } from '../tensor/linalg.js';
import { SameConvolution, transposedToeplitz } from '../tensor/toeplitz.js';
import type { FlowLayer, LayerForward } from './layer.js';

/** The normalisation epsilon of PyTorch's `spectral_norm`, which the reference uses. */
const SPECTRAL_NORM_EPSILON = 1e-12;

/** Gain of the throw-away Xavier-normal tensor whose spread sets the bias scale. */
const BIAS_XAVIER_GAIN = 0.01;

export interface Conv2dLayerOptions {
  /** The shape [H, W, C] of one input sample; the output has the same shape. */
  inputShape: [number, number, number];
  /** Kernel size K, odd (EBFlow's CNN models use 7). Default 7. */
  kernel?: number;
  /** The run's random stream; the bias and the spectral-norm vectors are drawn from it. */
  random: RandomStream;
  /** Divide W by a power-iteration estimate of its spectral norm. Default false. */
  spectralNorm?: boolean;
  /** A short name for messages. Default "conv2d". */
  name?: string;
}

/** The persistent power-iteration vectors of spectral normalisation (not trained). */
export interface SpectralNormState {
  /** Left singular vector estimate, length C_out. */
  u: tf.Variable<tf.Rank.R1>;
  /** Right singular vector estimate, length C_in·K·K in PyTorch order (c, i, j). */
  v: tf.Variable<tf.Rank.R1>;
}

export class Conv2dLayer implements FlowLayer {
  readonly name: string;
  readonly constantJacobian = true;
  /** [weight, bias]. */
  readonly variables: tf.Variable[];
  /** Filter [K, K, C, C] in tfjs layout [row, column, input channel, output channel]. */
  readonly weight: tf.Variable<tf.Rank.R4>;
  /** Bias [C], one value per output channel. */
  readonly bias: tf.Variable<tf.Rank.R1>;
  readonly inputShape: [number, number, number];
  readonly kernel: number;
  /** D = H·W·C. */
  readonly dimension: number;
  /** The spectral-norm vectors, or null when spectral normalisation is off. Save them in checkpoints. */
  readonly spectralState: SpectralNormState | null;
  /**
   * In training mode each `forward` runs one power iteration before using W/σ̂, as PyTorch's
   * `spectral_norm` does; in evaluation mode u and v stay fixed. No effect without spectral norm.
   */
  training = true;

  /**
   * Creates the layer at the reference's initialisation: W = −Dirac (y = −x + b) and a bias drawn
   * from N(0, s²), s ≈ 0.01/(K·√C). O(K²·C²) draws from the stream.
   */
  constructor(options: Conv2dLayerOptions) {
    const kernel = options.kernel ?? 7;
    this.name = options.name ?? 'conv2d';
    checkOptions(this.name, options.inputShape, kernel);
    this.inputShape = [...options.inputShape];
    this.kernel = kernel;
    const [height, width, channels] = options.inputShape;
    this.dimension = height * width * channels;

    const initialWeight = negativeDiracFilter(kernel, channels);
    const initialBias = tf.tensor1d(drawBias(options.random, kernel, channels));
    this.weight = tf.variable(initialWeight);
    this.bias = tf.variable(initialBias);
    initialWeight.dispose();
    initialBias.dispose();
    this.variables = [this.weight, this.bias];

    this.spectralState = options.spectralNorm ? createSpectralState(options.random, kernel, channels) : null;
  }

  /**
   * Returns y = conv(x, W_used) + b for x [B, H, W, C]; logDet is null (constant Jacobian). With
   * spectral norm in training mode it first runs one power iteration. O(B·D·K²·C) as a
   * convolution, or O(B·D²) as a product with the Toeplitz matrix (see `SameConvolution`).
   */
  forward(x: tf.Tensor): LayerForward {
    this.checkInput(x, 'forward');
    const y = tf.tidy(() => tf.add(new SameConvolution(this.weightForForward(), this.inputShape).apply(x as tf.Tensor4D), this.bias));
    return { y, logDet: null };
  }

  /**
   * Returns the filter one forward pass uses: with spectral norm in training mode it first runs one
   * power iteration, then returns `effectiveWeight()`. Models that apply the convolution themselves
   * (explicit energy derivatives) call this once per pass. O(K²·C²).
   */
  weightForForward(): tf.Tensor4D {
    if (this.spectralState !== null && this.training) {
      this.powerIteration();
    }
    return this.effectiveWeight();
  }

  /**
   * Returns x = T⁻¹(y − b) for y [B, H, W, C], by a dense solve with the Toeplitz matrix. Uses the
   * current u, v without a power iteration. O(D³ + B·D²) plus O(D²) to build T.
   */
  inverse(y: tf.Tensor): tf.Tensor {
    this.checkInput(y, 'inverse');
    const batch = y.shape[0];
    return tf.tidy(() => {
      const shifted = tf.reshape(tf.sub(y, this.bias), [batch, this.dimension]);
      const solved = solve(this.toeplitz(), tf.transpose(shifted) as tf.Tensor2D);
      return tf.reshape(tf.transpose(solved), [batch, ...this.inputShape]);
    });
  }

  /**
   * Returns log|det T(W_used)| in nats, differentiable in W. Building T costs O(D²), the
   * log-det O(D³) (D = 784 at MNIST size, 3072 at CIFAR size).
   */
  constantLogDet(): tf.Scalar {
    return tf.tidy(() => logAbsDet(this.transposedToeplitz()));
  }

  /**
   * Returns T(W_used)ᵀ, whose log|det| equals log|det T| (see `FlowLayer`), differentiable once
   * in W. O(D²) to build.
   */
  constantLogDetMatrix(): tf.Tensor2D {
    return this.transposedToeplitz();
  }

  /**
   * Returns the D×D Toeplitz matrix T with vec(conv(x, W_used)) = T·vec(x), rows and columns in
   * NHWC flattening. Differentiable once in W. O(D²).
   */
  toeplitz(): tf.Tensor2D {
    return tf.tidy(() => tf.transpose(this.transposedToeplitz()));
  }

  /**
   * Returns the filter the convolution uses: W, or W/σ̂ with σ̂ = uᵀ·W_mat·v under spectral
   * normalisation (W_mat = W reshaped to [C_out, C_in·K·K] in PyTorch order). The current u, v are
   * treated as constants. Without spectral normalisation this is the weight variable itself, which
   * the caller must not dispose. O(K²·C²).
   */
  effectiveWeight(): tf.Tensor4D {
    const state = this.spectralState;
    if (state === null) {
      return this.weight;
    }
    return tf.tidy(() => {
      // σ̂ = Σ_ij u_i·W_mat[i, j]·v_j, element-wise because the matrices are at most C × C·K².
      const outer = tf.mul(tf.expandDims(state.u, 1), tf.expandDims(state.v, 0));
      const sigma = tf.sum(tf.mul(this.weightMatrix(), outer));
      return tf.div(this.weight, sigma);
    });
  }

  /**
   * Runs one power iteration on W_mat and stores the new u and v: v ← normalise(W_matᵀu), then
   * u ← normalise(W_mat·v). Not recorded for gradients. O(K²·C²).
   */
  powerIteration(): void {
    const state = this.spectralState;
    if (state === null) {
      throw new Error(`${this.name}: powerIteration needs spectral normalisation; create the layer with spectralNorm: true`);
    }
    const [u, v] = tf.tidy(() => {
      const matrix = this.weightMatrix();
      const nextV = normalise(tf.sum(tf.mul(matrix, tf.expandDims(state.u, 1)), 0));
      const nextU = normalise(tf.sum(tf.mul(matrix, tf.expandDims(nextV, 0)), 1));
      return [nextU, nextV];
    });
    state.u.assign(u as tf.Tensor1D);
    state.v.assign(v as tf.Tensor1D);
    u.dispose();
    v.dispose();
  }

  /**
   * The non-trained state a checkpoint must save besides `variables`: [u, v] with spectral
   * normalisation, else empty.
   */
  get buffers(): tf.Variable[] {
    return this.spectralState === null ? [] : [this.spectralState.u, this.spectralState.v];
  }

  /** Disposes the weight, the bias and the spectral-norm vectors; the layer is unusable afterwards. */
  dispose(): void {
    this.weight.dispose();
    this.bias.dispose();
    if (this.spectralState !== null) {
      this.spectralState.u.dispose();
      this.spectralState.v.dispose();
    }
  }

  /** W as [C_out, C_in·K·K] with columns in PyTorch order (c, i, j). */
  private weightMatrix(): tf.Tensor2D {
    const channels = this.inputShape[2];
    const kernelArea = this.kernel * this.kernel;
    return tf.reshape(tf.transpose(this.weight, [3, 2, 0, 1]), [channels, channels * kernelArea]);
  }

  private transposedToeplitz(): tf.Tensor2D {
    return tf.tidy(() => transposedToeplitz(this.effectiveWeight(), this.inputShape));
  }

  private checkInput(x: tf.Tensor, method: string): void {
    const [height, width, channels] = this.inputShape;
    const matches = x.rank === 4 && x.shape[1] === height && x.shape[2] === width && x.shape[3] === channels;
    if (!matches) {
      throw new RangeError(
        `${this.name}: ${method} expects NHWC [B, ${height}, ${width}, ${channels}], received shape [${x.shape}]`,
      );
    }
  }
}

function checkOptions(name: string, inputShape: number[], kernel: number): void {
  const valid = Array.isArray(inputShape) && inputShape.length === 3 && inputShape.every((n) => Number.isInteger(n) && n > 0);
  if (!valid) {
    throw new RangeError(`${name}: inputShape must be [H, W, C] with positive integers, received ${JSON.stringify(inputShape)}`);
  }
  if (!Number.isInteger(kernel) || kernel < 1 || kernel % 2 !== 1) {
    throw new RangeError(`${name}: kernel must be a positive odd integer so the padding (K − 1)/2 is whole, received ${kernel}`);
  }
}

/** −1 at the kernel centre for output channel = input channel, 0 elsewhere. */
function negativeDiracFilter(kernel: number, channels: number): tf.Tensor4D {
  const values = new Float32Array(kernel * kernel * channels * channels);
  const centre = (kernel - 1) / 2;
  for (let c = 0; c < channels; c++) {
    values[((centre * kernel + centre) * channels + c) * channels + c] = -1;
  }
  return tf.tensor4d(values, [kernel, kernel, channels, channels]);
}

/**
 * Draws the bias as the reference does: a throw-away Xavier-normal tensor [C, C, K, K] with gain
 * 0.01 sets s (its unbiased sample standard deviation, about 0.01/(K·√C)), then b ~ N(0, s²).
 */
function drawBias(random: RandomStream, kernel: number, channels: number): Float32Array {
  const fan = channels * kernel * kernel;
  const xavierStd = BIAS_XAVIER_GAIN * Math.sqrt(2 / (fan + fan));
  const count = channels * fan;
  let sum = 0;
  let sumOfSquares = 0;
  for (let i = 0; i < count; i++) {
    const value = xavierStd * random.normal();
    sum += value;
    sumOfSquares += value * value;
  }
  const mean = sum / count;
  const spread = count > 1 ? Math.sqrt(Math.max(0, (sumOfSquares - count * mean * mean) / (count - 1))) : xavierStd;

  const bias = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    bias[c] = spread * random.normal();
  }
  return bias;
}

function createSpectralState(random: RandomStream, kernel: number, channels: number): SpectralNormState {
  const u = tf.tidy(() => normalise(tf.tensor1d(random.normalArray(channels))));
  const v = tf.tidy(() => normalise(tf.tensor1d(random.normalArray(channels * kernel * kernel))));
  const state = { u: tf.variable(u, false), v: tf.variable(v, false) };
  u.dispose();
  v.dispose();
  return state;
}

/** v/max(‖v‖, 1e-12), as torch.nn.functional.normalize. */
function normalise(v: tf.Tensor1D): tf.Tensor1D {
  return tf.div(v, tf.maximum(tf.norm(v), SPECTRAL_NORM_EPSILON));
}
