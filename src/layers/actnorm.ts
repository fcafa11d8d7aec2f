/**
 * Glow's activation normalisation as a frozen, data-initialised standardisation per channel:
 *   y[b, h, w, c] = (x[b, h, w, c] − t_c) · e^{−s_c},   log|det ∂y/∂x| = −H·W·Σ_c s_c.
 * The first forward pass (or an explicit `initialize(x)`) sets t_c to the channel mean and
 * s_c = ln(std_c + 1e-8) with the unbiased standard deviation, both over batch, height and width,
 * so that batch leaves with zero mean and unit variance per channel. The optimiser never updates
 * t and s.
 *
 * Behaviour of EBFlow's reference PyTorch implementation (github.com/chen-hao-chao/ebflow),
 * inferred from PyTorch semantics: its t and s are plain tensors, not registered parameters. They
 * are frozen at their data-dependent values as here, but they are missing from its checkpoints,
 * which keep only the "initialized" flag. A restored reference model therefore runs with t = 0,
 * s = 0, a different function from the one it trained. This layer keeps the training behaviour and
 * fixes the checkpoint: t, s and the flag are non-trainable variables listed in `buffers`, and
 * `getState()` / `setState()` copy them as plain numbers.
 *
 * EBFlow split: the Jacobian diag(e^{−s}) does not depend on x, so this layer is constant-Jacobian
 * and its log-det belongs to log Z, not to the energy. The reference adds it to the energy
 * instead, because its ActNorm is not a subclass of its linear-layer class. The term is
 * constant in x and, with frozen t and s, in θ too, so scores and every gradient are the same
 * either way. Only the reported energy differs, by H·W·Σ_c s_c per layer.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { FlowLayer, LayerForward } from './layer.js';

/** Added to the batch standard deviation before the logarithm, as in the reference. */
export const ACTNORM_STD_OFFSET = 1e-8;

/** The frozen values of one ActNorm layer as plain numbers, for checkpoints. */
export interface ActNormState {
  /** False until the data-dependent initialisation has run; t and s are then 0. */
  initialized: boolean;
  /** t_c, one per channel, in input units. */
  location: number[];
  /** s_c = ln(std_c + 1e-8), one per channel, in nats. */
  logScale: number[];
}

export interface ActNormLayerOptions {
  /** The shape [H, W, C] of one input sample; the output has the same shape. */
  inputShape: [number, number, number];
  /** A short name for messages. Default "actnorm". */
  name?: string;
}

export class ActNormLayer implements FlowLayer {
  readonly name: string;
  readonly constantJacobian = true;
  /** Empty: t and s are frozen, so nothing here is trained. */
  readonly variables: tf.Variable[] = [];
  readonly inputShape: [number, number, number];
  readonly channels: number;
  /** t, shape [C]; non-trainable. */
  readonly location: tf.Variable<tf.Rank.R1>;
  /** s, shape [C]; non-trainable. */
  readonly logScale: tf.Variable<tf.Rank.R1>;
  /** 1 once initialised, else 0; shape [1], non-trainable. Saved with t and s so a restore keeps them. */
  readonly initializedFlag: tf.Variable<tf.Rank.R1>;
  /** A copy of `initializedFlag` that spares a device read once it is true. */
  private knownInitialized = false;

  /** Creates an uninitialised layer (t = 0, s = 0, the identity map). */
  constructor(options: ActNormLayerOptions) {
    this.name = options.name ?? 'actnorm';
    checkShape(this.name, options.inputShape);
    this.inputShape = [...options.inputShape];
    this.channels = options.inputShape[2];
    this.location = frozenZeros(this.channels);
    this.logScale = frozenZeros(this.channels);
    this.initializedFlag = frozenZeros(1);
  }

  /**
   * The state a checkpoint must save for this layer: [t, s, initialized flag]. Restoring these
   * three variables restores the layer, including the flag that stops a second initialisation.
   */
  get buffers(): tf.Variable[] {
    return [this.location, this.logScale, this.initializedFlag];
  }

  /** True once t and s contain data-dependent values. Reads one number from the backend until then. */
  get initialized(): boolean {
    if (!this.knownInitialized) {
      this.knownInitialized = this.initializedFlag.dataSync()[0] !== 0;
    }
    return this.knownInitialized;
  }

  /**
   * Sets t_c to the mean and s_c to ln(std_c + 1e-8) of channel c of x [B, H, W, C] over batch,
   * height and width (unbiased std, B·H·W ≥ 2 values), computed in float64 JavaScript.
   * Reads x from the backend and records nothing on a gradient tape. O(B·D).
   */
  initialize(x: tf.Tensor): void {
    this.checkInput(x, 'initialize');
    const count = x.size / this.channels;
    if (count < 2) {
      throw new RangeError(
        `${this.name}: initialize needs at least 2 values per channel for a standard deviation, received ` +
          `shape [${x.shape.join(', ')}]; initialise from a batch of at least 2 samples`,
      );
    }
    const values = x.dataSync();
    const sums = new Float64Array(this.channels);
    for (let i = 0; i < values.length; i++) sums[i % this.channels] += values[i];
    const means = sums.map((sum) => sum / count);
    const squares = new Float64Array(this.channels);
    for (let i = 0; i < values.length; i++) squares[i % this.channels] += (values[i] - means[i % this.channels]) ** 2;
    const logScales = squares.map((square) => Math.log(Math.sqrt(square / (count - 1)) + ACTNORM_STD_OFFSET));
    this.assignState(Array.from(means), Array.from(logScales), true);
  }

  /**
   * Marks the layer uninitialised and resets t and s to 0, so the next forward pass initialises it
   * again. O(C).
   */
  resetInitialization(): void {
    this.assignState(new Array<number>(this.channels).fill(0), new Array<number>(this.channels).fill(0), false);
  }

  /**
   * Returns y = (x − t)·e^{−s} for x [B, H, W, C], initialising t and s from x first if this is the
   * first call. logDet is null (constant Jacobian). O(B·D).
   */
  forward(x: tf.Tensor): LayerForward {
    this.checkInput(x, 'forward');
    if (!this.initialized) this.initialize(x);
    const y = tf.tidy(() => tf.mul(tf.sub(x, this.location), tf.exp(tf.neg(this.logScale))));
    return { y, logDet: null };
  }

  /** Returns x = y·e^{s} + t for y [B, H, W, C]. Never initialises. O(B·D). */
  inverse(y: tf.Tensor): tf.Tensor {
    this.checkInput(y, 'inverse');
    return tf.tidy(() => tf.add(tf.mul(y, tf.exp(this.logScale)), this.location));
  }

  /** Returns log|det ∂y/∂x| = −H·W·Σ_c s_c in nats. Constant in θ (s is frozen). O(C). */
  constantLogDet(): tf.Scalar {
    const [height, width] = this.inputShape;
    return tf.tidy(() => tf.mul(tf.sum(this.logScale), -height * width));
  }

  /** Returns t, s and the initialised flag as plain numbers. O(C). */
  getState(): ActNormState {
    return {
      initialized: this.initialized,
      location: Array.from(this.location.dataSync()),
      logScale: Array.from(this.logScale.dataSync()),
    };
  }

  /** Restores a state returned by `getState()` of a layer with the same channel count. O(C). */
  setState(state: ActNormState): void {
    const validArray = (values: unknown): values is number[] =>
      Array.isArray(values) && values.length === this.channels && values.every((value) => Number.isFinite(value));
    if (typeof state?.initialized !== 'boolean' || !validArray(state.location) || !validArray(state.logScale)) {
      throw new Error(
        `${this.name}: setState expects { initialized: boolean, location: number[${this.channels}], ` +
          `logScale: number[${this.channels}] } with finite numbers, received ${JSON.stringify(state)}; ` +
          'pass the result of getState() of an ActNorm layer with the same channel count',
      );
    }
    this.assignState(state.location, state.logScale, state.initialized);
  }

  /** Disposes t, s and the flag; the layer is unusable afterwards. */
  dispose(): void {
    tf.dispose(this.buffers);
  }

  private assignState(location: number[], logScale: number[], initialized: boolean): void {
    tf.tidy(() => {
      this.location.assign(tf.tensor1d(location));
      this.logScale.assign(tf.tensor1d(logScale));
      this.initializedFlag.assign(tf.tensor1d([initialized ? 1 : 0]));
    });
    this.knownInitialized = initialized;
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

/** Returns a non-trainable variable of `size` zeros; the variable does not share the zeros tensor, which is disposed. */
function frozenZeros(size: number): tf.Variable<tf.Rank.R1> {
  const zeros = tf.zeros([size]) as tf.Tensor1D;
  const variable = tf.variable(zeros, false);
  zeros.dispose();
  return variable;
}

function checkShape(name: string, shape: [number, number, number]): void {
  const valid = Array.isArray(shape) && shape.length === 3 && shape.every((n) => Number.isInteger(n) && n > 0);
  if (!valid) {
    throw new RangeError(`${name}: inputShape must be [H, W, C] with positive integers, received ${JSON.stringify(shape)}`);
  }
}
