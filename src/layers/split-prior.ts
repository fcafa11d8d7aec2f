/**
 * Glow's split prior (multi-scale factoring out) and the pass-through wrapper for the layers that
 * follow it.
 *
 * EBFlow's reference PyTorch implementation (github.com/chen-hao-chao/ebflow) defines a split prior
 * on x [B, H, W, C] as follows. It applies its own affine coupling (ReLU network), keeps the first
 * C/2 channels x₁ as the flow's output and scores the other half z₂ under N(0, I). Its "log-det"
 * is Σ log s + log N(z₂), and its reverse pass draws z₂ from N(0, I). That map changes the
 * dimension, so it is not a bijection.
 *
 * `SplitPriorLayer` as a `FlowLayer` is the bijective form of the same density: it returns the
 * whole coupling output [x₁, z₂] with log-det Σ log s, and the model carries z₂ unchanged to the
 * latent, where the standard normal base scores it. Because N(0, I) on the full latent is the
 * product of N(0, I) on its parts, log p(x) and the energy are exactly the reference's, and
 * sampling z₂ ~ N(0, I) as part of the latent is the reference's sampling at temperature 1. The
 * reference's view is `factorOut` (x₁ and Σ log s + log N(z₂)) and `inverseWithSample` (draws z₂
 * from the run's stream).
 *
 * The layers after a split see [x₁, z₂] but must transform only x₁: `ActiveChannelsLayer` applies
 * an inner layer to the first k channels and passes the rest through. A squeeze keeps that
 * layout, because it sends channel c to channels 4c … 4c + 3, so the first k channels become the
 * first 4k.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { RandomStream } from '../random/stream.js';
import { AffineCouplingLayer, DEFAULT_COUPLING_WIDTH } from './affine-coupling.js';
import type { FlowLayer, LayerForward } from './layer.js';

export interface SplitPriorLayerOptions {
  /** The shape [H, W, C] of one input sample, C even. */
  inputShape: [number, number, number];
  /** The run's random stream; the coupling's initial weights are drawn from it. */
  random: RandomStream;
  /** Hidden channels of the coupling network. Default 512. */
  width?: number;
  /** Tie the coupling's Conv2dZero bias and log-scale, as the reference does. Default false. */
  tieZeroBiasAndLogScale?: boolean;
  /** A short name for messages. Default "split-prior". */
  name?: string;
}

/** The reference's view of a split prior's forward pass. */
export interface FactoredOut {
  /** x₁, the first C/2 channels of the coupling output, [B, H, W, C/2]. */
  kept: tf.Tensor4D;
  /** Σ log s + log N(z₂) per sample, shape [B], nats. */
  logDet: tf.Tensor1D;
}

export class SplitPriorLayer implements FlowLayer {
  readonly name: string;
  readonly constantJacobian = false;
  readonly inputShape: [number, number, number];
  /** C/2, the channels kept for the rest of the flow. */
  readonly keptChannels: number;
  /** The split prior's own coupling, with a ReLU network. */
  readonly coupling: AffineCouplingLayer;
  readonly variables: tf.Variable[];

  /** Creates the split prior with a ReLU coupling at Glow's initialisation. Same cost as the coupling's. */
  constructor(options: SplitPriorLayerOptions) {
    this.name = options.name ?? 'split-prior';
    this.coupling = new AffineCouplingLayer({
      inputShape: options.inputShape,
      random: options.random,
      width: options.width ?? DEFAULT_COUPLING_WIDTH,
      activation: 'relu',
      tieZeroBiasAndLogScale: options.tieZeroBiasAndLogScale,
      name: `${this.name}.coupling`,
    });
    this.inputShape = [...options.inputShape];
    this.keptChannels = options.inputShape[2] / 2;
    this.variables = this.coupling.variables;
  }

  /**
   * Returns the coupling output [x₁, z₂] for x [B, H, W, C] and its log-det Σ log s. The model
   * scores z₂ with its base density. Same cost as the coupling.
   */
  forward(x: tf.Tensor): LayerForward {
    return this.coupling.forward(x);
  }

  /** Inverts the coupling for a full [x₁, z₂] of shape [B, H, W, C]. Same cost as the coupling. */
  inverse(y: tf.Tensor): tf.Tensor {
    return this.coupling.inverse(y);
  }

  /**
   * Returns the reference's forward pass: x₁ and Σ log s + log N(z₂) per sample, for x [B, H, W, C].
   * Same cost as the coupling.
   */
  factorOut(x: tf.Tensor): FactoredOut {
    return tf.tidy(() => {
      const { y, logDet } = this.coupling.forward(x);
      const [kept, factored] = tf.split(y as tf.Tensor4D, 2, 3) as tf.Tensor4D[];
      return { kept, logDet: tf.add(logDet as tf.Tensor1D, standardNormalLogDensity(factored)) as tf.Tensor1D };
    });
  }

  /**
   * Returns the reference's reverse pass for x₁ [B, H, W, C/2]: draws z₂ ~ N(0, I) from `random`
   * (B·H·W·C/2 normals, NHWC order), concatenates [x₁, z₂] and inverts the coupling.
   * Never differentiated. Same cost as the coupling plus the draws.
   */
  inverseWithSample(kept: tf.Tensor, random: RandomStream): tf.Tensor {
    const [height, width, channels] = this.inputShape;
    if (kept.rank !== 4 || kept.shape[1] !== height || kept.shape[2] !== width || kept.shape[3] !== channels / 2) {
      throw new RangeError(
        `${this.name}: inverseWithSample expects the kept half [B, ${height}, ${width}, ${channels / 2}], ` +
          `received shape [${kept.shape.join(', ')}]`,
      );
    }
    const batch = kept.shape[0];
    const noise = random.normalArray(batch * height * width * this.keptChannels);
    return tf.tidy(() => {
      const factored = tf.tensor4d(noise, [batch, height, width, this.keptChannels]);
      return this.coupling.inverse(tf.concat([kept, factored], 3));
    });
  }

  /** Disposes the coupling's variables; the layer is unusable afterwards. */
  dispose(): void {
    this.coupling.dispose();
  }
}

/** Returns log N(z; 0, I) = −½‖z‖² − (D/2)·ln(2π) per sample, shape [B], nats. O(B·D). */
function standardNormalLogDensity(z: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const flat = tf.reshape(z, [z.shape[0], -1]);
    const dimension = flat.shape[1] as number;
    return tf.neg(tf.add(tf.mul(tf.sum(tf.square(flat), 1), 0.5), 0.5 * dimension * Math.log(2 * Math.PI))) as tf.Tensor1D;
  });
}

/**
 * Applies an inner layer to the first `activeChannels` channels of an NHWC tensor and passes the
 * remaining channels (factored out by an earlier split prior) through unchanged. The Jacobian is
 * block-diagonal with the inner Jacobian and an identity, so the log-det and the constant-Jacobian
 * classification are the inner layer's. Costs the inner layer's cost plus one slice and one concat,
 * O(B·D).
 */
export class ActiveChannelsLayer implements FlowLayer {
  readonly name: string;
  readonly constantJacobian: boolean;
  readonly variables: tf.Variable[];

  /**
   * Wraps `inner`, whose input has `activeChannels` channels, for inputs with `totalChannels`
   * channels in all.
   */
  constructor(
    readonly inner: FlowLayer,
    readonly activeChannels: number,
    readonly totalChannels: number,
  ) {
    if (!Number.isInteger(activeChannels) || !Number.isInteger(totalChannels) || activeChannels < 1 || activeChannels > totalChannels) {
      throw new RangeError(
        `ActiveChannelsLayer "${inner.name}": need 1 ≤ activeChannels ≤ totalChannels (integers), received ` +
          `activeChannels ${activeChannels} and totalChannels ${totalChannels}`,
      );
    }
    this.name = inner.name;
    this.constantJacobian = inner.constantJacobian;
    this.variables = inner.variables;
  }

  /** Returns [inner(x[…, :k]), x[…, k:]] and the inner log-det, for x [B, H, W, totalChannels]. */
  forward(x: tf.Tensor): LayerForward {
    this.checkInput(x, 'forward');
    if (this.activeChannels === this.totalChannels) return this.inner.forward(x);
    const result = tf.tidy(() => {
      const [active, passive] = this.split(x);
      const { y, logDet } = this.inner.forward(active);
      const joined = tf.concat([y, passive], 3);
      return logDet === null ? { y: joined } : { y: joined, logDet };
    });
    return { y: result.y, logDet: result.logDet ?? null };
  }

  /** Returns [inner⁻¹(y[…, :k]), y[…, k:]]. */
  inverse(y: tf.Tensor): tf.Tensor {
    this.checkInput(y, 'inverse');
    if (this.activeChannels === this.totalChannels) return this.inner.inverse(y);
    return tf.tidy(() => {
      const [active, passive] = this.split(y);
      return tf.concat([this.inner.inverse(active), passive], 3);
    });
  }

  /** Returns the inner layer's constant log-det; only for a constant-Jacobian inner layer. */
  constantLogDet(): tf.Scalar {
    if (this.inner.constantLogDet === undefined) {
      throw new Error(`ActiveChannelsLayer "${this.name}": the inner layer has no constantLogDet(); only constant-Jacobian layers do`);
    }
    return this.inner.constantLogDet();
  }

  /** Disposes the inner layer (its own `dispose()` when it has one, else its variables). */
  dispose(): void {
    const disposable = this.inner as { dispose?: () => void };
    if (typeof disposable.dispose === 'function') disposable.dispose();
    else tf.dispose(this.inner.variables);
  }

  /** Splits x into its active channels and the passed-through rest. */
  private split(x: tf.Tensor): [tf.Tensor4D, tf.Tensor4D] {
    const [active, passive] = tf.split(x as tf.Tensor4D, [this.activeChannels, this.totalChannels - this.activeChannels], 3) as tf.Tensor4D[];
    return [active, passive];
  }

  private checkInput(x: tf.Tensor, method: string): void {
    if (x.rank !== 4 || x.shape[3] !== this.totalChannels) {
      throw new RangeError(
        `ActiveChannelsLayer "${this.name}": ${method} expects NHWC [B, H, W, ${this.totalChannels}], ` +
          `received shape [${x.shape.join(', ')}]`,
      );
    }
  }
}
