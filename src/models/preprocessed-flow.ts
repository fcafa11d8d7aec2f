/**
 * A flow with the preprocessing chain inside it, for training without "match after
 * preprocessing" (MaP off). The model's input is the dequantised pixel value y₀ ∈ [0, 256). The
 * chain T (·2⁻⁸, shift, logit, defined in src/layers/preprocessing-layers.ts) maps it to the
 * input x′ of an ordinary flow g. With the logit's log-det ℓ_T(y₀) and the scalings' constant log-det
 * C_T = D·(ln(1 − 2·10⁻⁶) − ln 256),
 *   E(y₀)    = E_g(T(y₀)) − ℓ_T(y₀)          (the logit joins the energy)
 *   log Z(θ) = log Z_g(θ) − C_T              (the scalings join the normalising constant)
 * so log p(y₀) = −E(y₀) − log Z(θ) is the likelihood of the dequantised pixels, and scores are
 * taken with respect to y₀.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { FlowLayer } from '../layers/layer.js';
import { PixelPreprocessing } from '../layers/preprocessing-layers.js';
import type { EnergyDerivatives, EnergyFlow } from './energy-flow.js';

/** The optional members of the CNN model that a wrapper passes through. */
interface ModelExtras {
  setTraining?(training: boolean): void;
  readonly buffers?: tf.Variable[];
  dispose?(): void;
}

/** Wraps `inner` so that it takes dequantised pixels; `logitScale` is α_l of the chain. */
export function withInModelPreprocessing(inner: EnergyFlow, logitScale: number): PreprocessedFlow {
  return new PreprocessedFlow(inner, logitScale);
}

export class PreprocessedFlow implements EnergyFlow {
  readonly architecture: string;
  readonly sampleShape: number[];
  readonly dimension: number;
  /** The chain's three layers, then the inner flow's layers. */
  readonly layers: readonly FlowLayer[];
  readonly variables: tf.Variable[];
  readonly inner: EnergyFlow;
  readonly preprocessing: PixelPreprocessing;
  /**
   * Present when the inner flow has explicit derivatives: the chain rule through the element-wise
   * chain adds O(BD) work to the inner flow's cost.
   */
  readonly energyDerivatives?: (x: tf.Tensor, direction?: tf.Tensor) => EnergyDerivatives;

  constructor(inner: EnergyFlow, logitScale: number) {
    this.inner = inner;
    this.architecture = inner.architecture;
    this.sampleShape = [...inner.sampleShape];
    this.dimension = inner.dimension;
    this.preprocessing = new PixelPreprocessing(inner.dimension, logitScale);
    this.layers = [...this.preprocessing.layers, ...inner.layers];
    this.variables = inner.variables;
    if (inner.energyDerivatives !== undefined) {
      this.energyDerivatives = (x, direction) => this.explicitDerivatives(x, direction);
    }
  }

  /** Returns E(y₀) = E_g(T(y₀)) − ℓ_T(y₀) per sample, shape [B], nats. The inner energy's cost plus O(BD). */
  energy(x: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => {
      const { y, logDet } = this.preprocessing.forward(x);
      return tf.sub(this.inner.energy(y), logDet as tf.Tensor1D) as tf.Tensor1D;
    });
  }

  /** Returns log Z = log Z_g − C_T, differentiable in θ. The inner flow's cost. */
  logNormalizer(): tf.Scalar {
    return tf.tidy(() => tf.sub(this.inner.logNormalizer(), this.preprocessing.constantLogDetValue()) as tf.Scalar);
  }

  /** Returns log p(y₀) = −E(y₀) − log Z per sample, shape [B], nats. */
  logProb(x: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => tf.sub(tf.neg(this.energy(x)), this.logNormalizer()) as tf.Tensor1D);
  }

  /** Maps latents to dequantised pixel values in (0, 256): the inner inverse, then T⁻¹. */
  inverse(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.preprocessing.inverse(this.inner.inverse(z)));
  }

  /** Switches the inner flow between training and evaluation mode, when it has modes. */
  setTraining(training: boolean): void {
    (this.inner as EnergyFlow & ModelExtras).setTraining?.(training);
  }

  /** The inner flow's non-trained state (spectral-norm vectors), empty when it has none. */
  get buffers(): tf.Variable[] {
    return (this.inner as EnergyFlow & ModelExtras).buffers ?? [];
  }

  /** Disposes the inner flow's variables and buffers; the model is unusable afterwards. */
  dispose(): void {
    const inner = this.inner as EnergyFlow & ModelExtras;
    if (inner.dispose !== undefined) inner.dispose();
    else inner.variables.forEach((v) => v.dispose());
  }

  /**
   * E, ∇E and (∇²E)v by the chain rule through the element-wise chain, with the inner flow's
   * explicit derivatives at x′ = T(y₀) along T′⊙v. With g = ∇E_g(x′), H = ∇²E_g(x′) and
   * a = ln T′ (see `PreprocessingDerivatives`):
   *   ∇E  = T′⊙g − a′
   *   ∇²E v = T′⊙H(T′⊙v) + (T′·a′⊙g − a″)⊙v        (T″ = T′·a′)
   */
  private explicitDerivatives(x: tf.Tensor, direction?: tf.Tensor): EnergyDerivatives {
    const innerDerivatives = this.inner.energyDerivatives;
    if (innerDerivatives === undefined) {
      throw new Error('PreprocessedFlow: the inner flow has no explicit derivatives; use nested tf.grad instead');
    }
    return tf.tidy(() => {
      const chain = this.preprocessing.derivatives(x, direction !== undefined);
      const innerDirection = direction === undefined ? undefined : tf.mul(chain.slope, direction);
      const inner = innerDerivatives.call(this.inner, chain.output, innerDirection);
      const energy = tf.sub(inner.energy, chain.logDet) as tf.Tensor1D;
      const gradient = tf.sub(tf.mul(chain.slope, inner.gradient), chain.logSlopeGradient);
      if (direction === undefined) return { energy, gradient };
      if (inner.hessianVector === undefined || chain.logSlopeCurvature === undefined) {
        throw new Error('PreprocessedFlow: the inner flow returned no Hessian-vector product for the direction passed');
      }
      const curvature = tf.sub(tf.mul(tf.mul(chain.slope, chain.logSlopeGradient), inner.gradient), chain.logSlopeCurvature);
      const hessianVector = tf.add(tf.mul(chain.slope, inner.hessianVector), tf.mul(curvature, direction));
      return { energy, gradient, hessianVector };
    });
  }
}
