/**
 * Glow's affine coupling on NHWC tensors with C channels (C even), as in EBFlow's reference
 * PyTorch implementation (github.com/chen-hao-chao/ebflow):
 *   x₁ = x[…, :C/2],  x₂ = x[…, C/2:],  h = NN(x₁)  (C channels),
 *   log s = 2·tanh(h[…, 0::2] / 2),  t = h[…, 1::2]   (interleaved channels),
 *   y = [x₁, x₂·e^{log s} + t],  log|det ∂y/∂x| = Σ log s  (over H, W and C/2 channels).
 * The network is Conv3×3(C/2 → width) → act → Conv1×1(width → width) → act → Conv2dZero(width → C),
 * with act a leaky ReLU of slope 0.1 (ReLU inside a split prior), "same" zero padding, and
 * Conv2dZero(h) = (conv3×3(h) + b)·e^{3·logs} with its filter, b and logs all starting at 0, so
 * the layer starts as the identity. The first two convolutions start with weights and biases
 * uniform on ±1/√fan_in, PyTorch's default for `nn.Conv2d`.
 *
 * The log-det depends on x, so it is part of the energy. Every op is differentiable to any order on
 * every backend. Tanh and exp come from `tensor/elementwise.ts` and the convolutions from
 * `tensor/conv.ts`. The (leaky) ReLU is a custom gradient built from `tf.step`, because the
 * gradient of tfjs 4.22's own `tf.leakyRelu` uses a `Greater` op, which has no gradient, so a
 * second derivative throws.
 *
 * The reference creates Conv2dZero's b and logs from the same zero tensor, so the two share storage
 * and train as one tied vector: the output is (conv(h) + b)·e^{3b}. This layer keeps them as two
 * parameters by default, as the architecture intends; `tieZeroBiasAndLogScale: true` reproduces
 * the reference.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { RandomStream } from '../random/stream.js';
import { conv2dSame } from '../tensor/conv.js';
import { exp, tanh } from '../tensor/elementwise.js';
import { matMul } from '../tensor/matmul.js';
import type { FlowLayer, LayerForward } from './layer.js';

/** Negative-side slope of the leaky ReLU in Glow's coupling network. */
export const LEAKY_RELU_SLOPE = 0.1;

/** Factor of logs in Conv2dZero's output scale e^{3·logs}. */
export const ZERO_CONV_LOG_SCALE_FACTOR = 3;

/** Hidden channels of the coupling network in EBFlow's MNIST Glow (Chao et al., NeurIPS 2023). */
export const DEFAULT_COUPLING_WIDTH = 512;

/** The non-linearity between the coupling network's convolutions. */
export type CouplingActivation = 'leaky-relu' | 'relu';

export interface AffineCouplingLayerOptions {
  /** The shape [H, W, C] of one input sample, C even; the output has the same shape. */
  inputShape: [number, number, number];
  /** The run's random stream; the first two convolutions' weights and biases are drawn from it. */
  random: RandomStream;
  /** Hidden channels of the network. Default 512. */
  width?: number;
  /** 'leaky-relu' (slope 0.1, the default) or 'relu' (used by the split prior). */
  activation?: CouplingActivation;
  /** Use one vector as both Conv2dZero bias and log-scale, as the reference does. Default false. */
  tieZeroBiasAndLogScale?: boolean;
  /** A short name for messages. Default "coupling". */
  name?: string;
}

/** The shift t and log-scale log s of the affine map, each [B, H, W, C/2]. */
interface AffineParameters {
  shift: tf.Tensor4D;
  logScale: tf.Tensor4D;
}

export class AffineCouplingLayer implements FlowLayer {
  readonly name: string;
  readonly constantJacobian = false;
  readonly inputShape: [number, number, number];
  readonly channels: number;
  readonly width: number;
  readonly activation: CouplingActivation;
  readonly tieZeroBiasAndLogScale: boolean;
  /** Conv3×3 filter [3, 3, C/2, width]. */
  readonly inputFilter: tf.Variable<tf.Rank.R4>;
  readonly inputBias: tf.Variable<tf.Rank.R1>;
  /** Conv1×1 weight as a matrix [width_in, width_out]: out = in·M per pixel. */
  readonly hiddenWeight: tf.Variable<tf.Rank.R2>;
  readonly hiddenBias: tf.Variable<tf.Rank.R1>;
  /** Conv2dZero filter [3, 3, width, C]. */
  readonly outputFilter: tf.Variable<tf.Rank.R4>;
  /** Conv2dZero bias b [C]; with tied parameters also its log-scale. */
  readonly outputBias: tf.Variable<tf.Rank.R1>;
  /** Conv2dZero log-scale logs [C]; the same variable as `outputBias` with tied parameters. */
  readonly outputLogScale: tf.Variable<tf.Rank.R1>;
  /**
   * [inputFilter, inputBias, hiddenWeight, hiddenBias, outputFilter, outputBias, outputLogScale],
   * without outputLogScale when it is tied to outputBias.
   */
  readonly variables: tf.Variable[];

  /**
   * Creates the layer at Glow's initialisation (identity map). Draws 9·(C/2)·width + width² + 2·width
   * uniforms from the stream. O(width·(width + C)).
   */
  constructor(options: AffineCouplingLayerOptions) {
    this.name = options.name ?? 'coupling';
    const width = options.width ?? DEFAULT_COUPLING_WIDTH;
    const activation = options.activation ?? 'leaky-relu';
    checkOptions(this.name, options.inputShape, width, activation);
    this.inputShape = [...options.inputShape];
    this.channels = options.inputShape[2];
    this.width = width;
    this.activation = activation;
    this.tieZeroBiasAndLogScale = options.tieZeroBiasAndLogScale ?? false;

    const half = this.channels / 2;
    const random = options.random;
    this.inputFilter = uniformVariable([3, 3, half, width], 9 * half, random);
    this.inputBias = uniformVariable([width], 9 * half, random);
    this.hiddenWeight = uniformVariable([width, width], width, random);
    this.hiddenBias = uniformVariable([width], width, random);
    this.outputFilter = zerosVariable([3, 3, width, this.channels]);
    this.outputBias = zerosVariable([this.channels]);
    this.outputLogScale = this.tieZeroBiasAndLogScale ? this.outputBias : zerosVariable([this.channels]);

    this.variables = [this.inputFilter, this.inputBias, this.hiddenWeight, this.hiddenBias, this.outputFilter, this.outputBias];
    if (!this.tieZeroBiasAndLogScale) this.variables.push(this.outputLogScale);
  }

  /**
   * Returns y = [x₁, x₂·e^{log s} + t] and log|det| = Σ log s per sample for x [B, H, W, C].
   * Cost O(B·H·W·width·(4.5·C + width + 9·C)), dominated by the width×width product.
   */
  forward(x: tf.Tensor): LayerForward {
    this.checkInput(x, 'forward');
    return tf.tidy(() => {
      const [passive, active] = tf.split(x as tf.Tensor4D, 2, 3) as tf.Tensor4D[];
      const { shift, logScale } = this.affineParameters(passive);
      const transformed = tf.add(tf.mul(active, exp(logScale)), shift);
      const logDet = tf.sum(tf.reshape(logScale, [x.shape[0], -1]), 1) as tf.Tensor1D;
      return { y: tf.concat([passive, transformed], 3), logDet };
    });
  }

  /** Returns x = [y₁, (y₂ − t)·e^{−log s}] for y [B, H, W, C]. Same cost as `forward`. */
  inverse(y: tf.Tensor): tf.Tensor {
    this.checkInput(y, 'inverse');
    return tf.tidy(() => {
      const [passive, transformed] = tf.split(y as tf.Tensor4D, 2, 3) as tf.Tensor4D[];
      const { shift, logScale } = this.affineParameters(passive);
      const active = tf.mul(tf.sub(transformed, shift), exp(tf.neg(logScale)));
      return tf.concat([passive, active], 3);
    });
  }

  /** Disposes every variable; the layer is unusable afterwards. */
  dispose(): void {
    tf.dispose(this.variables);
  }

  /** Runs the network on x₁ [B, H, W, C/2] and splits its output into log s and t by interleaving. */
  private affineParameters(passive: tf.Tensor4D): AffineParameters {
    const [batch, height, width] = passive.shape;
    const half = this.channels / 2;

    let hidden: tf.Tensor = tf.add(conv2dSame(passive, this.inputFilter), this.inputBias);
    hidden = this.activate(hidden);
    const rows = matMul(tf.reshape(hidden, [-1, this.width]), this.hiddenWeight);
    hidden = this.activate(tf.add(tf.reshape(rows, [batch, height, width, this.width]), this.hiddenBias));

    const convolved = tf.add(conv2dSame(hidden as tf.Tensor4D, this.outputFilter), this.outputBias);
    const output = tf.mul(convolved, exp(tf.mul(this.outputLogScale, ZERO_CONV_LOG_SCALE_FACTOR)));

    // Channel 2j goes to log s, channel 2j + 1 to t.
    const pairs = tf.reshape(output, [batch, height, width, half, 2]);
    const [rawScale, shift] = tf.split(pairs, 2, 4).map((part) => tf.reshape(part, [batch, height, width, half]) as tf.Tensor4D);
    const logScale = tf.mul(tanh(tf.mul(rawScale, 0.5)), 2) as tf.Tensor4D;
    return { shift, logScale };
  }

  private activate(x: tf.Tensor): tf.Tensor {
    return this.activation === 'relu' ? rectify(x) : leakyRectify(x);
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
 * Builds max(x, slope·x) with derivative step(x) ∈ {slope, 1} as a custom gradient that saves only
 * x. It creates one tensor in the forward pass and two in the backward pass, where composing tfjs
 * ops (slope·x + (1 − slope)·relu(x)) creates about ten. On the MNIST Glow this cut the tensor
 * memory of a DSM step at batch 2 from 820 MB to 499 MB (wasm). The gradient dy·step(x) is built
 * from differentiable ops on the saved x, and `tf.step` has derivative 0, so it can be
 * differentiated again to any order. At x = 0 the slope is `slope`.
 */
function piecewiseLinearUnit(slope: number): (x: tf.Tensor) => tf.Tensor {
  const op = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x]);
    return {
      value: slope === 0 ? tf.relu(x) : tf.leakyRelu(x, slope),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.step(saved[0], slope)),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (x: tf.Tensor) => op(x);
}

/** The leaky ReLU of Glow's coupling network, slope 0.1. */
const leakyRectify = piecewiseLinearUnit(LEAKY_RELU_SLOPE);

/** The ReLU of a split prior's coupling network. */
const rectify = piecewiseLinearUnit(0);

/** Returns a trainable variable of the given shape, uniform on ±1/√fanIn, drawn from the stream. */
function uniformVariable<R extends tf.Rank>(shape: number[], fanIn: number, random: RandomStream): tf.Variable<R> {
  const count = shape.reduce((product, size) => product * size, 1);
  const bound = 1 / Math.sqrt(fanIn);
  const values = random.uniformArray(count).map((u) => bound * (2 * u - 1));
  const initial = tf.tensor(values, shape);
  const variable = tf.variable(initial) as tf.Variable<R>;
  initial.dispose();
  return variable;
}

function zerosVariable<R extends tf.Rank>(shape: number[]): tf.Variable<R> {
  const initial = tf.zeros(shape);
  const variable = tf.variable(initial) as tf.Variable<R>;
  initial.dispose();
  return variable;
}

function checkOptions(name: string, shape: [number, number, number], width: number, activation: string): void {
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((n) => Number.isInteger(n) && n > 0)) {
    throw new RangeError(`${name}: inputShape must be [H, W, C] with positive integers, received ${JSON.stringify(shape)}`);
  }
  if (shape[2] % 2 !== 0) {
    throw new RangeError(`${name}: the channel count must be even to split it in halves, received inputShape [${shape.join(', ')}]`);
  }
  if (!Number.isInteger(width) || width < 1) {
    throw new RangeError(`${name}: width must be a positive integer, received ${width}`);
  }
  if (activation !== 'leaky-relu' && activation !== 'relu') {
    throw new RangeError(`${name}: activation must be 'leaky-relu' or 'relu', received '${activation}'`);
  }
}
