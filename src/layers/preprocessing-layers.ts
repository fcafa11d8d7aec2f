/**
 * The preprocessing chain as flow layers, for training without "match after preprocessing"
 * (MaP off). There the model's input is the dequantised pixel value y₀ ∈ [0, 256), and the chain
 *
 *   y₁ = y₀ · 2⁻⁸                      constant Jacobian, log-det −D·ln 256
 *   y₂ = (y₁ + 10⁻⁶)·(1 − 2·10⁻⁶)      constant Jacobian, log-det D·ln(1 − 2·10⁻⁶)
 *   x′ = (ln y₂ − ln(1 − y₂)) / α_l     input-dependent, log-det Σ_i [−ln α_l − ln y₂,i − ln(1 − y₂,i)]
 *
 * runs inside the model: the two scalings join the normalising constant (EBFlow's S_lin) and the
 * logit joins the energy (S_n). Each layer applies the same float32 ops as `preprocess` in
 * src/data/preprocess.ts (multiplying by 2⁻⁸ is exact, like dividing by 256), so x′ is bitwise the
 * value MaP on feeds the flow. Every layer is element-wise and keeps the input's shape.
 */
import * as tf from '@tensorflow/tfjs-core';

import { sigmoid } from '../tensor/elementwise.js';
import type { FlowLayer, LayerForward } from './layer.js';

/** The shift that keeps the logit's argument inside (0, 1); the value of `LOGIT_SHIFT` in preprocess.ts. */
const SHIFT = 1e-6;
/** 8-bit pixel levels; dividing by them maps [0, 256) to [0, 1). */
const PIXEL_LEVELS = 256;

/**
 * The element-wise affine map y = (x + offset)·factor with a fixed offset and factor. Its Jacobian
 * is factor·I, so its log-det D·ln|factor| belongs to the normalising constant.
 */
export class ScaleShiftLayer implements FlowLayer {
  readonly name: string;
  readonly constantJacobian = true;
  readonly variables: tf.Variable[] = [];
  readonly offset: number;
  readonly factor: number;
  /** D, the number of elements per sample, which the log-det scales with. */
  readonly dimension: number;

  constructor(options: { name: string; offset: number; factor: number; dimension: number }) {
    const { name, offset, factor, dimension } = options;
    if (!Number.isFinite(offset) || !Number.isFinite(factor) || factor === 0) {
      throw new RangeError(`ScaleShiftLayer "${name}": offset must be finite and factor finite and non-zero, received offset ${offset}, factor ${factor}`);
    }
    if (!Number.isInteger(dimension) || dimension < 1) {
      throw new RangeError(`ScaleShiftLayer "${name}": dimension must be a positive integer, received ${dimension}`);
    }
    this.name = name;
    this.offset = offset;
    this.factor = factor;
    this.dimension = dimension;
  }

  /** Maps x to (x + offset)·factor; the log-det is left to `constantLogDet()`. O(BD). */
  forward(x: tf.Tensor): LayerForward {
    const y = tf.tidy(() => tf.mul(this.offset === 0 ? x : tf.add(x, this.offset), this.factor));
    return { y, logDet: null };
  }

  /** Maps y back to y/factor − offset. O(BD). */
  inverse(y: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const unscaled = tf.div(y, this.factor);
      return this.offset === 0 ? unscaled : tf.sub(unscaled, this.offset);
    });
  }

  /** Returns D·ln|factor| in nats as a float32 scalar. O(1). */
  constantLogDet(): tf.Scalar {
    return tf.scalar(this.logDetValue());
  }

  /** Returns D·ln|factor| in nats, in float64. O(1). */
  logDetValue(): number {
    return this.dimension * Math.log(Math.abs(this.factor));
  }
}

/**
 * The logit x′ = (ln y − ln(1 − y))/α_l for y ∈ (0, 1), with log-det Σ_i [−ln α_l − ln y_i − ln(1 − y_i)]
 * per sample. Its Jacobian depends on y, so the log-det is part of the energy. Differentiable to
 * any order (it uses `tf.log` and `tf.log1p`, whose gradients read the input).
 */
export class LogitLayer implements FlowLayer {
  readonly name: string;
  readonly constantJacobian = false;
  readonly variables: tf.Variable[] = [];
  /** α_l, the logit scale (0.5 for the FC models, 0.75 for the CNN models). */
  readonly logitScale: number;

  constructor(options: { name: string; logitScale: number }) {
    if (!(Number.isFinite(options.logitScale) && options.logitScale > 0)) {
      throw new RangeError(`LogitLayer "${options.name}": logitScale (α_l) must be a finite positive number, received ${options.logitScale}`);
    }
    this.name = options.name;
    this.logitScale = options.logitScale;
  }

  /** Maps y [B, …] to the logit and its per-sample log-det, shape [B]. O(BD). */
  forward(y: tf.Tensor): LayerForward {
    return tf.tidy(() => {
      const logY = tf.log(y);
      const logOneMinusY = tf.log1p(tf.neg(y));
      const x = tf.div(tf.sub(logY, logOneMinusY), this.logitScale);
      const batch = y.shape[0];
      const dimension = y.size / batch;
      const logTerms = tf.sum(tf.reshape(tf.add(logY, logOneMinusY), [batch, dimension]), 1);
      const logDet = tf.sub(-dimension * Math.log(this.logitScale), logTerms) as tf.Tensor1D;
      return { y: x, logDet };
    });
  }

  /** Maps x′ back to σ(α_l·x′). Never differentiated. O(BD). */
  inverse(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => sigmoid(tf.mul(x, this.logitScale)));
  }
}

/**
 * The chain's map T(y₀) = x′ and the derivatives of T and of a(y₀) = ln T′(y₀) that explicit
 * energy derivatives need, element-wise and shaped like y₀. With c the product of the two
 * scaling factors and y₂ the logit's input:
 *   T′ = c / (α_l·y₂·(1 − y₂)),   a′ = T″/T′ = c·(2y₂ − 1)/(y₂·(1 − y₂)),   a″ = c²·(1/y₂² + 1/(1 − y₂)²).
 */
export type PreprocessingDerivatives = {
  /** x′ = T(y₀). */
  output: tf.Tensor;
  /** Σ_i of the logit's log-det per sample, shape [B] (the chain's input-dependent log-det). */
  logDet: tf.Tensor1D;
  /** T′(y₀). */
  slope: tf.Tensor;
  /** a′(y₀) = T″/T′. */
  logSlopeGradient: tf.Tensor;
  /** a″(y₀); present when requested. */
  logSlopeCurvature?: tf.Tensor;
};

/**
 * The three preprocessing layers for one sample size, with the derivatives of the whole chain.
 */
export class PixelPreprocessing {
  readonly scale: ScaleShiftLayer;
  readonly shift: ScaleShiftLayer;
  readonly logit: LogitLayer;
  /** [scale, shift, logit], in data-to-latent order. */
  readonly layers: readonly FlowLayer[];
  /** c, the product of the two scaling factors: dy₂/dy₀. */
  readonly slopeOfScalings: number;

  /** Builds the chain for samples of D elements and logit scale α_l. */
  constructor(dimension: number, logitScale: number) {
    this.scale = new ScaleShiftLayer({ name: 'preprocess.scale', offset: 0, factor: 1 / PIXEL_LEVELS, dimension });
    this.shift = new ScaleShiftLayer({ name: 'preprocess.shift', offset: SHIFT, factor: 1 - 2 * SHIFT, dimension });
    this.logit = new LogitLayer({ name: 'preprocess.logit', logitScale });
    this.layers = [this.scale, this.shift, this.logit];
    this.slopeOfScalings = this.scale.factor * this.shift.factor;
  }

  /**
   * Returns the scalings' log-det sum D·(ln(1 − 2·10⁻⁶) − ln 256) in nats, in float64; the
   * normalising constant log Z gains its negative. O(1).
   */
  constantLogDetValue(): number {
    return this.scale.logDetValue() + this.shift.logDetValue();
  }

  /** Maps y₀ to x′ and the logit's per-sample log-det, by the layers' own forward passes. O(BD). */
  forward(pixels: tf.Tensor): LayerForward {
    const { y, logDet } = tf.tidy(() => {
      const scaled = this.scale.forward(pixels).y;
      const shifted = this.shift.forward(scaled).y;
      const logit = this.logit.forward(shifted);
      return { y: logit.y, logDet: logit.logDet as tf.Tensor1D };
    });
    return { y, logDet };
  }

  /** Maps x′ back to y₀ = 256·(σ(α_l·x′)/(1 − 2·10⁻⁶) − 10⁻⁶). O(BD). */
  inverse(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.scale.inverse(this.shift.inverse(this.logit.inverse(x))));
  }

  /**
   * Returns T(y₀), the logit's log-det and the derivatives listed on `PreprocessingDerivatives`;
   * a″ only when `withCurvature`. The derivatives are constants for autodiff (the chain has no
   * parameters). O(BD).
   */
  derivatives(pixels: tf.Tensor, withCurvature: boolean): PreprocessingDerivatives {
    return tf.tidy(() => {
      const scaled = this.scale.forward(pixels).y;
      const y = this.shift.forward(scaled).y;
      const { y: output, logDet } = this.logit.forward(y);
      const c = this.slopeOfScalings;
      const oneMinusY = tf.sub(1, y);
      const product = tf.mul(y, oneMinusY);
      const slope = tf.div(c / this.logit.logitScale, product);
      const logSlopeGradient = tf.div(tf.mul(tf.sub(tf.mul(y, 2), 1), c), product);
      const result: PreprocessingDerivatives = { output, logDet: logDet as tf.Tensor1D, slope, logSlopeGradient };
      if (withCurvature) {
        const inverseSquares = tf.add(tf.reciprocal(tf.square(y)), tf.reciprocal(tf.square(oneMinusY)));
        result.logSlopeCurvature = tf.mul(inverseSquares, c * c);
      }
      return result;
    });
  }
}
