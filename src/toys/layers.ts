/**
 * The layers of the toy flows: the 2×2 linear layer, the toy ActNorm and the masked affine
 * coupling of the 2-D model, and the masked linear layer of the 10-D model.
 *
 * EBFlow split: the linear layers and ActNorm have input-independent Jacobians
 * (`constantJacobian = true`), so their log-dets form the normalising constant log Z(θ). The
 * couplings' log-dets depend on x and belong to the energy. The authors' code switches the
 * constant log-dets on and off with a `dependency` flag. Here every computation that needs them
 * (ML, exact evaluation) calls `constantLogDet()`, and the others never do.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { FlowLayer, LayerForward } from '../layers/layer.js';
import type { RandomStream } from '../random/stream.js';
import { exp } from '../tensor/elementwise.js';
import { logAbsDet, solve } from '../tensor/linalg.js';
import { matMul } from '../tensor/matmul.js';
import type { CouplingNetwork } from './coupling-network.js';
import { randomOrthogonal, uniformSymmetric, variableFrom } from './init.js';

/** A layer whose parameters are set from the first batch that reaches it (data-dependent initialisation). */
export interface DataInitializedLayer extends FlowLayer {
  readonly initialized: boolean;
  /** Sets the parameters from the batch x [B, D] that reaches this layer. */
  initializeFromData(x: tf.Tensor2D): void;
}

/** Returns true when `layer` has a data-dependent initialisation. */
export function isDataInitialized(layer: FlowLayer): layer is DataInitializedLayer {
  return typeof (layer as Partial<DataInitializedLayer>).initializeFromData === 'function';
}

function checkRows(component: string, method: string, x: tf.Tensor, dimension: number): tf.Tensor2D {
  if (x.rank !== 2 || x.shape[1] !== dimension) {
    throw new Error(`${component}.${method}: expected a batch of shape [B, ${dimension}], received [${x.shape.join(', ')}]`);
  }
  return x as tf.Tensor2D;
}

export interface ToyLinearLayerOptions {
  name: string;
  random: RandomStream;
  /**
   * Parameterises W = g ⊙ V/‖V‖ row by row (weight normalisation), with g initialised to the
   * row norms; the authors use it for checkerboard FDSSM only. Default false.
   */
  weightNorm?: boolean;
}

/**
 * y = W x + b on 2-D points (batched: y = x·Wᵀ + b), W initialised as a random orthogonal matrix
 * and b uniform on ±1/√2 (PyTorch's `nn.Linear` default). Its log-det log|det W| is constant in x.
 *
 * NOTE: the authors' code takes ln(|det W| + 1e-8); this layer returns the exact ln|det W|.
 */
export class ToyLinearLayer implements FlowLayer {
  readonly name: string;
  readonly constantJacobian = true;
  readonly dimension = 2;
  readonly weightNorm: boolean;
  /** W, or V with weight normalisation; shape [2, 2], output i = Σ_j W[i, j]·x[j] + b[i]. */
  readonly weight: tf.Variable<tf.Rank.R2>;
  /** g, shape [2], with weight normalisation only. */
  readonly gain: tf.Variable<tf.Rank.R1> | null;
  readonly bias: tf.Variable<tf.Rank.R1>;

  constructor(options: ToyLinearLayerOptions) {
    this.name = options.name;
    this.weightNorm = options.weightNorm ?? false;
    const orthogonal = randomOrthogonal(2, options.random);
    this.weight = variableFrom(tf.tensor2d(Float32Array.from(orthogonal), [2, 2]));
    this.bias = variableFrom(tf.tensor1d(uniformSymmetric(2, 1 / Math.SQRT2, options.random)));
    // Rows of an orthogonal matrix have norm 1, so g = 1 reproduces W exactly.
    this.gain = this.weightNorm ? variableFrom(tf.ones([2]) as tf.Tensor1D) : null;
  }

  get variables(): tf.Variable[] {
    return this.gain === null ? [this.weight, this.bias] : [this.weight, this.gain, this.bias];
  }

  /** Returns the weight W in use (g ⊙ V/‖V‖ with weight normalisation). O(1). */
  effectiveWeight(): tf.Tensor2D {
    if (this.gain === null) return tf.clone(this.weight);
    const gain = this.gain;
    return tf.tidy(() => {
      const rowNorms = tf.sqrt(tf.sum(tf.square(this.weight), 1, true));
      return tf.mul(tf.div(this.weight, rowNorms), tf.reshape(gain, [2, 1])) as tf.Tensor2D;
    });
  }

  /** Maps x [B, 2] to x·Wᵀ + b; the log-det is left to `constantLogDet()`. O(B). */
  forward(x: tf.Tensor): LayerForward {
    const rows = checkRows(`ToyLinearLayer "${this.name}"`, 'forward', x, 2);
    return { y: tf.tidy(() => tf.add(matMul(rows, this.effectiveWeight(), false, true), this.bias)), logDet: null };
  }

  /** Maps y back to (y − b)·W⁻ᵀ with the closed-form 2×2 inverse. Not differentiated. O(B). */
  inverse(y: tf.Tensor): tf.Tensor {
    const rows = checkRows(`ToyLinearLayer "${this.name}"`, 'inverse', y, 2);
    return tf.tidy(() => {
      const [a, b, c, d] = Array.from(this.effectiveWeight().dataSync());
      const determinant = a * d - b * c;
      // (W⁻¹)ᵀ = [[d, −c], [−b, a]] / det.
      const inverseTransposed = tf.tensor2d([d / determinant, -c / determinant, -b / determinant, a / determinant], [2, 2]);
      return matMul(tf.sub(rows, this.bias) as tf.Tensor2D, inverseTransposed);
    });
  }

  /** Returns ln|W₀₀W₁₁ − W₀₁W₁₀| in nats, differentiable in the parameters. O(1). */
  constantLogDet(): tf.Scalar {
    return tf.tidy(() => {
      const [a, b, c, d] = tf.split(tf.reshape(this.effectiveWeight(), [4]), 4);
      return tf.reshape(tf.log(tf.abs(tf.sub(tf.mul(a, d), tf.mul(b, c)))), []) as tf.Scalar;
    });
  }

  dispose(): void {
    tf.dispose(this.variables);
  }
}

/** Added to the batch standard deviation by the ActNorm initialisation, as in the authors' code. */
export const ACTNORM_STD_OFFSET = 1e-6;

/**
 * The toy ActNorm, y = scale ⊙ (x + loc) per coordinate, with trainable loc (initially 0) and
 * scale (initially 1). `initializeFromData` sets loc = −mean and scale = 1/(std + 1e-6) from a
 * batch (unbiased std), so that batch leaves with zero mean and unit variance. Its log-det
 * Σ ln|scale| is constant in x.
 *
 * NOTE: the authors' code takes Σ ln(|scale| + 1e-6); this layer returns the exact Σ ln|scale|.
 */
export class ToyActNorm implements DataInitializedLayer {
  readonly name: string;
  readonly constantJacobian = true;
  readonly dimension: number;
  readonly loc: tf.Variable<tf.Rank.R1>;
  readonly scale: tf.Variable<tf.Rank.R1>;
  private isInitialized = false;

  constructor(options: { name: string; dimension: number }) {
    if (!Number.isInteger(options.dimension) || options.dimension < 1) {
      throw new RangeError(`ToyActNorm "${options.name}": dimension must be a positive integer, received ${options.dimension}`);
    }
    this.name = options.name;
    this.dimension = options.dimension;
    this.loc = variableFrom(tf.zeros([options.dimension]) as tf.Tensor1D);
    this.scale = variableFrom(tf.ones([options.dimension]) as tf.Tensor1D);
  }

  get variables(): tf.Variable[] {
    return [this.loc, this.scale];
  }

  get initialized(): boolean {
    return this.isInitialized;
  }

  /** Sets loc = −mean and scale = 1/(std + 1e-6) over the batch x [B, D], B ≥ 2. O(BD). */
  initializeFromData(x: tf.Tensor2D): void {
    const rows = checkRows(`ToyActNorm "${this.name}"`, 'initializeFromData', x, this.dimension);
    const batch = rows.shape[0];
    if (batch < 2) {
      throw new RangeError(`ToyActNorm "${this.name}".initializeFromData: needs a batch of at least 2 points for a standard deviation, received ${batch}`);
    }
    tf.tidy(() => {
      const mean = tf.mean(rows, 0);
      const variance = tf.div(tf.sum(tf.square(tf.sub(rows, mean)), 0), batch - 1);
      this.loc.assign(tf.neg(mean) as tf.Tensor1D);
      this.scale.assign(tf.div(1, tf.add(tf.sqrt(variance), ACTNORM_STD_OFFSET)) as tf.Tensor1D);
    });
    this.isInitialized = true;
  }

  /** Maps x [B, D] to scale ⊙ (x + loc). O(BD). */
  forward(x: tf.Tensor): LayerForward {
    const rows = checkRows(`ToyActNorm "${this.name}"`, 'forward', x, this.dimension);
    return { y: tf.tidy(() => tf.mul(tf.add(rows, this.loc), this.scale)), logDet: null };
  }

  /** Maps y back to y/scale − loc. O(BD). */
  inverse(y: tf.Tensor): tf.Tensor {
    const rows = checkRows(`ToyActNorm "${this.name}"`, 'inverse', y, this.dimension);
    return tf.tidy(() => tf.sub(tf.div(rows, this.scale), this.loc));
  }

  /** Returns Σ_d ln|scale_d| in nats, differentiable in scale. O(D). */
  constantLogDet(): tf.Scalar {
    return tf.tidy(() => tf.sum(tf.log(tf.abs(this.scale))));
  }

  dispose(): void {
    tf.dispose(this.variables);
  }
}

/**
 * The masked affine coupling of the 2-D model (MAF-style, written in the data-to-latent
 * direction). With a binary mask m, conditioner input m⊙x, s = s_net(m⊙x) and t = t_net(m⊙x):
 *   u = m⊙x + (1−m)⊙(x − t)⊙e^{−s},   log|det ∂u/∂x| = −Σ (1−m)⊙s,
 * with no clamp on s. The log-det depends on x, so it is part of the energy.
 */
export class MaskedAffineCoupling implements FlowLayer {
  readonly name: string;
  readonly constantJacobian = false;
  readonly dimension: number;
  /** m, shape [1, D]: 1 where the coordinate passes through unchanged. */
  readonly mask: tf.Tensor2D;
  private readonly complement: tf.Tensor2D;

  constructor(
    options: { name: string; mask: readonly number[] },
    readonly scaleNetwork: CouplingNetwork,
    readonly shiftNetwork: CouplingNetwork,
  ) {
    const { mask } = options;
    if (mask.length < 2 || mask.some((value) => value !== 0 && value !== 1) || mask.every((value) => value === mask[0])) {
      throw new Error(`MaskedAffineCoupling "${options.name}": mask must hold both 0 and 1 and nothing else, received [${mask.join(', ')}]`);
    }
    this.name = options.name;
    this.dimension = mask.length;
    this.mask = tf.tensor2d([...mask], [1, mask.length]);
    this.complement = tf.tensor2d(mask.map((value) => 1 - value), [1, mask.length]);
  }

  get variables(): tf.Variable[] {
    return [...this.scaleNetwork.variables, ...this.shiftNetwork.variables];
  }

  /** Maps x [B, D] to u with the per-sample log-det −Σ(1−m)⊙s. O(B·H²) for hidden width H. */
  forward(x: tf.Tensor): LayerForward {
    const rows = checkRows(`MaskedAffineCoupling "${this.name}"`, 'forward', x, this.dimension);
    return tf.tidy(() => {
      const conditioner = tf.mul(rows, this.mask) as tf.Tensor2D;
      const logScale = tf.mul(this.scaleNetwork.apply(conditioner), this.complement);
      const shift = this.shiftNetwork.apply(conditioner);
      const transformed = tf.mul(tf.mul(tf.sub(rows, shift), exp(tf.neg(logScale))), this.complement);
      return { y: tf.add(conditioner, transformed), logDet: tf.neg(tf.sum(logScale, 1)) as tf.Tensor1D };
    });
  }

  /** Maps u back to x = m⊙u + (1−m)⊙(u⊙e^{s} + t), s and t computed from m⊙u = m⊙x. O(B·H²). */
  inverse(y: tf.Tensor): tf.Tensor {
    const rows = checkRows(`MaskedAffineCoupling "${this.name}"`, 'inverse', y, this.dimension);
    return tf.tidy(() => {
      const conditioner = tf.mul(rows, this.mask) as tf.Tensor2D;
      const logScale = this.scaleNetwork.apply(conditioner);
      const shift = this.shiftNetwork.apply(conditioner);
      const restored = tf.mul(tf.add(tf.mul(rows, tf.exp(logScale)), shift), this.complement);
      return tf.add(conditioner, restored);
    });
  }

  dispose(): void {
    this.scaleNetwork.dispose();
    this.shiftNetwork.dispose();
    tf.dispose([this.mask, this.complement]);
  }
}

/** The free entries of a masked linear layer's matrix: all, or a triangle with the diagonal. */
export type LinearMaskType = 'full' | 'lower' | 'upper';

export interface MaskedLinearLayerOptions {
  name: string;
  dimension: number;
  maskType: LinearMaskType;
  /**
   * 'orthogonal' draws a random orthogonal matrix before masking; 'ones' fills every entry with
   * 1, so a triangular mask gives determinant 1 (the L factor of the LU-parameterised model).
   */
  init: 'orthogonal' | 'ones';
  /** Needed for the orthogonal initialisation. */
  random?: RandomStream;
}

/**
 * y = x·(W ⊙ M) on row vectors, no bias, with a fixed binary mask M (all ones, lower or upper
 * triangle including the diagonal). log|det(W⊙M)| is constant in x: O(D³) by LU for the full
 * mask, O(D) (the sum of ln|diagonal|) for a triangular one.
 *
 * NOTE: the authors' inverse solves (W⊙M)·x = y, which inverts the layer only for symmetric
 * matrices (it is never called there); this inverse solves x·(W⊙M) = y.
 */
export class MaskedLinearLayer implements FlowLayer {
  readonly name: string;
  readonly constantJacobian = true;
  readonly dimension: number;
  readonly maskType: LinearMaskType;
  readonly weight: tf.Variable<tf.Rank.R2>;
  /** M, shape [D, D]. */
  readonly mask: tf.Tensor2D;

  constructor(options: MaskedLinearLayerOptions) {
    const { dimension, maskType, name } = options;
    if (!Number.isInteger(dimension) || dimension < 1) {
      throw new RangeError(`MaskedLinearLayer "${name}": dimension must be a positive integer, received ${dimension}`);
    }
    if (!['full', 'lower', 'upper'].includes(maskType)) {
      throw new RangeError(`MaskedLinearLayer "${name}": maskType must be 'full', 'lower' or 'upper', received "${maskType}"`);
    }
    this.name = name;
    this.dimension = dimension;
    this.maskType = maskType;
    this.mask = tf.tensor2d(maskValues(dimension, maskType), [dimension, dimension]);

    let initial: Float32Array;
    if (options.init === 'ones') {
      initial = new Float32Array(dimension * dimension).fill(1);
    } else if (options.init === 'orthogonal') {
      if (options.random === undefined) {
        throw new Error(`MaskedLinearLayer "${name}": the orthogonal initialisation needs options.random`);
      }
      initial = Float32Array.from(randomOrthogonal(dimension, options.random));
    } else {
      throw new RangeError(`MaskedLinearLayer "${name}": init must be 'orthogonal' or 'ones', received "${String(options.init)}"`);
    }
    this.weight = variableFrom(tf.tensor2d(initial, [dimension, dimension]));
  }

  get variables(): tf.Variable[] {
    return [this.weight];
  }

  /** Returns the matrix in use, W ⊙ M. O(D²). */
  maskedWeight(): tf.Tensor2D {
    return tf.mul(this.weight, this.mask) as tf.Tensor2D;
  }

  /** Maps x [B, D] to x·(W⊙M). O(BD²). */
  forward(x: tf.Tensor): LayerForward {
    const rows = checkRows(`MaskedLinearLayer "${this.name}"`, 'forward', x, this.dimension);
    return { y: tf.tidy(() => matMul(rows, this.maskedWeight())), logDet: null };
  }

  /** Solves x·(W⊙M) = y, that is (W⊙M)ᵀ·xᵀ = yᵀ, by LU. Not differentiated. O(D³ + BD²). */
  inverse(y: tf.Tensor): tf.Tensor {
    const rows = checkRows(`MaskedLinearLayer "${this.name}"`, 'inverse', y, this.dimension);
    return tf.tidy(() => tf.transpose(solve(tf.transpose(this.maskedWeight()), tf.transpose(rows))));
  }

  /** Returns log|det(W⊙M)| in nats, differentiable in W. O(D³) for 'full', O(D²) for a triangle. */
  constantLogDet(): tf.Scalar {
    return tf.tidy(() => {
      const masked = this.maskedWeight();
      if (this.maskType === 'full') return logAbsDet(masked);
      const diagonal = tf.sum(tf.mul(masked, tf.eye(this.dimension)), 1);
      return tf.sum(tf.log(tf.abs(diagonal)));
    });
  }

  dispose(): void {
    tf.dispose([this.weight, this.mask]);
  }
}

/** Returns the row-major D×D mask of `maskType`: M[i, j] = 1 for j ≤ i ('lower'), j ≥ i ('upper'), or always. */
export function maskValues(dimension: number, maskType: LinearMaskType): Float32Array {
  const values = new Float32Array(dimension * dimension);
  for (let i = 0; i < dimension; i++) {
    for (let j = 0; j < dimension; j++) {
      const free = maskType === 'full' || (maskType === 'lower' ? j <= i : j >= i);
      values[i * dimension + j] = free ? 1 : 0;
    }
  }
  return values;
}
