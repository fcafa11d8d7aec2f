/**
 * The CNN-based EBFlow model: blocks of K×K convolutions with smooth leaky ReLUs between them and
 * a squeeze between blocks, and a standard normal base on the final shape. With the settings of the
 * EBFlow paper (Chao et al., NeurIPS 2023: 3 blocks, 2 convolutions per block, K = 7, α = 0.3,
 * residual SLR):
 *   Conv → SLR → Conv → SLR → Squeeze → Conv → SLR → Conv → SLR → Squeeze → Conv → SLR → Conv → z.
 * An SLR follows every convolution but the last and a squeeze follows every block but the last.
 * The convolutions form the constant-Jacobian set, so
 *   E(x)     = ½‖z‖² + (D/2)·ln(2π) − Σ_{SLR} Σ_i ln f′(h_i),   h = the SLR's input,
 *   log Z(θ) = −Σ_{conv} log|det T(W)|,  T the D×D Toeplitz matrix of the convolution.
 * Squeezes keep D = H·W·C, so every Toeplitz matrix is D×D (784 for MNIST, 3072 for CIFAR-10).
 */
import * as tf from '@tensorflow/tfjs-core';

import { Conv2dLayer } from '../layers/conv2d.js';
import type { FlowLayer } from '../layers/layer.js';
import { DEFAULT_SLR_ALPHA, SmoothLeakyReluLayer, smoothLeakyReluStage } from '../layers/smooth-leaky-relu.js';
import { SqueezeLayer } from '../layers/squeeze.js';
import type { RandomStream } from '../random/stream.js';
import { sumLogAbsDet } from '../tensor/linalg.js';
import { addBias } from '../tensor/matmul.js';
import { SameConvolution } from '../tensor/toeplitz.js';
import type { EnergyDerivatives, EnergyFlow } from './energy-flow.js';
import {
  LOG_TWO_PI,
  collectVariables,
  energyThroughLayers,
  inverseThroughLayers,
  logNormalizerOfLayers,
} from './flow-core.js';

export interface CnnFlowOptions {
  /** The shape [H, W, C] of one image (NHWC without the batch axis). */
  imageShape: [number, number, number];
  /** Number of blocks; H and W must be divisible by 2^(blocks − 1). Default 3. */
  blocks?: number;
  /** Convolutions per block. Default 2. */
  convsPerBlock?: number;
  /** Odd kernel size K of every convolution. Default 7. */
  kernel?: number;
  /** The smooth leaky ReLU's α. Default 0.3. */
  alpha?: number;
  /** Adds x to each smooth leaky ReLU's output. Default true, as in the paper's MNIST and CIFAR-10 CNNs. */
  residual?: boolean;
  /** Spectral normalisation of every convolution. Default false. */
  spectralNorm?: boolean;
  /** The run's random stream; the convolution biases (and spectral-norm vectors) are drawn from it. */
  random: RandomStream;
}

/** Builds a CNN EBFlow model with the reference initialisation. O(L·K²·C²) parameters. */
export function createCnnFlow(options: CnnFlowOptions): CnnFlow {
  return new CnnFlow(options);
}

/** One layer of the stack, tagged so the explicit derivatives can treat each kind. */
type Stage =
  | { kind: 'conv'; layer: Conv2dLayer }
  | { kind: 'slr'; layer: SmoothLeakyReluLayer }
  | { kind: 'squeeze'; layer: SqueezeLayer };

/** Per-SLR values the explicit derivative formulas keep from the forward pass. */
interface NonlinearityTerms {
  slope: tf.Tensor;
  /** f″/f′. */
  curvatureRatio: tf.Tensor;
  /** f‴/f′ − (f″/f′)², the second derivative of ln f′; only with a direction. */
  logSlopeCurvature?: tf.Tensor;
  /** The forward tangent ḣ entering this SLR; only with a direction. */
  tangent?: tf.Tensor;
}

export class CnnFlow implements EnergyFlow {
  readonly architecture = 'cnn';
  readonly sampleShape: number[];
  /** The shape [H / 2^(blocks−1), W / 2^(blocks−1), C·4^(blocks−1)] of one latent z. */
  readonly latentShape: [number, number, number];
  readonly dimension: number;
  readonly blocks: number;
  readonly convsPerBlock: number;
  readonly kernel: number;
  readonly alpha: number;
  readonly residual: boolean;
  readonly layers: readonly FlowLayer[];
  readonly convLayers: readonly Conv2dLayer[];
  readonly variables: tf.Variable[];
  private readonly stages: readonly Stage[];

  constructor(options: CnnFlowOptions) {
    const blocks = options.blocks ?? 3;
    const convsPerBlock = options.convsPerBlock ?? 2;
    const kernel = options.kernel ?? 7;
    const alpha = options.alpha ?? DEFAULT_SLR_ALPHA;
    const residual = options.residual ?? true;
    checkOptions(options.imageShape, blocks, convsPerBlock);

    const stages: Stage[] = [];
    let shape: [number, number, number] = [...options.imageShape];
    let convIndex = 0;
    let slrIndex = 0;
    for (let block = 0; block < blocks; block++) {
      for (let position = 0; position < convsPerBlock; position++) {
        const conv = new Conv2dLayer({
          inputShape: shape,
          kernel,
          random: options.random,
          spectralNorm: options.spectralNorm ?? false,
          name: `conv[${convIndex++}]`,
        });
        stages.push({ kind: 'conv', layer: conv });
        const isLastConv = block === blocks - 1 && position === convsPerBlock - 1;
        if (!isLastConv) {
          stages.push({ kind: 'slr', layer: new SmoothLeakyReluLayer({ name: `slr[${slrIndex++}]`, alpha, residual }) });
        }
      }
      if (block < blocks - 1) {
        stages.push({ kind: 'squeeze', layer: new SqueezeLayer(`squeeze[${block}]`) });
        shape = [shape[0] / 2, shape[1] / 2, shape[2] * 4];
      }
    }

    this.sampleShape = [...options.imageShape];
    this.latentShape = shape;
    this.dimension = shape[0] * shape[1] * shape[2];
    this.blocks = blocks;
    this.convsPerBlock = convsPerBlock;
    this.kernel = kernel;
    this.alpha = alpha;
    this.residual = residual;
    this.stages = stages;
    this.layers = stages.map((stage) => stage.layer);
    this.convLayers = stages.flatMap((stage) => (stage.kind === 'conv' ? [stage.layer] : []));
    this.variables = collectVariables(this.layers);
  }

  /**
   * Switches spectral normalisation between training mode (one power iteration per forward pass)
   * and evaluation mode (u, v fixed). No effect without spectral normalisation.
   */
  setTraining(training: boolean): void {
    for (const conv of this.convLayers) conv.training = training;
  }

  /**
   * The non-trained state a checkpoint must save besides `variables`: each convolution's
   * spectral-norm u and v, in layer order (empty without spectral normalisation).
   */
  get buffers(): tf.Variable[] {
    return this.convLayers.flatMap((conv) => conv.buffers);
  }

  /** Disposes every variable and spectral-norm vector of the model; the model is unusable afterwards. */
  dispose(): void {
    for (const conv of this.convLayers) conv.dispose();
  }

  /** Returns E(x) per sample, shape [B], nats, for x [B, H, W, C] or [B, D]. O(B·D·K²·C·L). */
  energy(x: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => energyThroughLayers(this.layers, this.toImages(x, this.sampleShape, 'energy')));
  }

  /**
   * Returns E(x) per sample, shape [B], nats, for a constant x: differentiable once in θ, not in
   * x. It runs the forward pass of `energyDerivatives`: convolutions as Toeplitz products when
   * OpenBLAS computes them (D ≤ 1024), and the fused SLR terms on wasm. O(L·B·D²) dense,
   * O(L·B·D·K²·C) otherwise.
   */
  constantInputEnergy(x: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => this.constantInputPass(x, false).energy);
  }

  /**
   * Returns E(x) per sample and log Z = −Σ_conv log|det T(W)| for a constant x, differentiable
   * once in θ. Each Toeplitz matrix serves both the product and its log-det when the
   * convolutions run as products, which saves one O(D²) build and one scatter of its gradient
   * per convolution. O(L·(D³ + B·D²)).
   */
  constantInputEnergyAndLogNormalizer(x: tf.Tensor): { energy: tf.Tensor1D; logNormalizer: tf.Scalar } {
    return tf.tidy(() => {
      const { energy, logNormalizer } = this.constantInputPass(x, true);
      return { energy, logNormalizer: logNormalizer as tf.Scalar };
    });
  }

  /** The forward pass of `constantInputEnergy`, with log Z when `withLogNormalizer` is set. */
  private constantInputPass(x: tf.Tensor, withLogNormalizer: boolean): { energy: tf.Tensor1D; logNormalizer: tf.Scalar | null } {
    const images = this.toImages(x, this.sampleShape, 'constantInputEnergy');
    let activation: tf.Tensor = images;
    let logSlopeSum: tf.Tensor1D | null = null;
    // The convolutions' log-dets are computed together after the pass (`sumLogAbsDet`), two at once on two threads.
    const logDetMatrices: tf.Tensor2D[] = [];
    for (const stage of this.stages) {
      if (stage.kind === 'conv') {
        const convolution = new SameConvolution(stage.layer.weightForForward(), stage.layer.inputShape);
        activation = addBias(convolution.apply(activation as tf.Tensor4D), stage.layer.bias);
        if (withLogNormalizer) logDetMatrices.push(convolution.logAbsDetMatrix());
      } else if (stage.kind === 'squeeze') {
        activation = stage.layer.forward(activation).y;
      } else {
        const slr = smoothLeakyReluStage(activation, stage.layer.alpha, stage.layer.residual, { derivatives: false, curvature: false });
        logSlopeSum = logSlopeSum === null ? slr.rowLogSlope : (tf.add(logSlopeSum, slr.rowLogSlope) as tf.Tensor1D);
        activation = slr.y;
      }
    }
    const batch = images.shape[0];
    const halfSquaredNorm = tf.mul(tf.sum(tf.reshape(tf.square(activation), [batch, -1]), 1), 0.5);
    let energy = tf.add(halfSquaredNorm, 0.5 * this.dimension * LOG_TWO_PI) as tf.Tensor1D;
    if (logSlopeSum !== null) energy = tf.sub(energy, logSlopeSum) as tf.Tensor1D;
    return { energy, logNormalizer: withLogNormalizer ? tf.neg(sumLogAbsDet(logDetMatrices)) : null };
  }

  /** Returns log Z = −Σ_conv log|det T(W)|, differentiable in θ. O(L·(D³ + D²·K²·C)). */
  logNormalizer(): tf.Scalar {
    return logNormalizerOfLayers(this.layers);
  }

  /** Returns log p(x) = −E(x) − log Z per sample, shape [B], nats. O(L·(D³ + B·D·K²·C)). */
  logProb(x: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => tf.sub(tf.neg(this.energy(x)), this.logNormalizer()) as tf.Tensor1D);
  }

  /**
   * Maps latents z [B, …latentShape] or [B, D] to images [B, H, W, C]: a dense solve per
   * convolution and 100 Newton steps per SLR. Never differentiated. O(L·(D³ + B·D²)).
   */
  inverse(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => inverseThroughLayers(this.layers, this.toImages(z, this.latentShape, 'inverse')));
  }

  /**
   * Returns E(x), ∇ₓE(x) and, when `direction` v is given, (∇²ₓE(x))v, by explicit layer-by-layer
   * formulas. Each op is differentiable once more in θ, so the θ-gradient of a score-matching loss
   * built on these needs one level of autodiff.
   *
   * 1. Forward: run the stack and keep f′(h), f″/f′ and Σ ln f′ at each SLR. With v, also push the
   *    tangent forward: ḣ ← conv(ḣ, W) without bias, ḣ ← f′(h)⊙ḣ at an SLR, a permutation at a squeeze.
   * 2. Backward (g = ∂E/∂ activation): g = z at the top; a convolution pulls g back with its adjoint
   *    (the convolution with the reversed, channel-swapped filter), a squeeze with its inverse
   *    permutation, an SLR by g ← g⊙f′ − f″/f′. ∇ₓE is g at the input.
   * 3. The HVP is the forward-mode derivative of step 2 along v: ġ = ż at the top, the same adjoints
   *    for convolutions and squeezes, and at an SLR ġ ← ġ⊙f′ + (g⊙f″ − (f‴/f′ − (f″/f′)²))⊙ḣ.
   * Cost: 2 convolutions per conv layer without v, 4 with v, each O(B·D·K²·C), or O(B·D²) when
   * computed as products with the Toeplitz matrix (see `SameConvolution`).
   */
  energyDerivatives(x: tf.Tensor, direction?: tf.Tensor): EnergyDerivatives {
    if (direction !== undefined && !tf.util.arraysEqual(direction.shape, x.shape)) {
      throw new Error(
        `CnnFlow.energyDerivatives: direction shape [${direction.shape.join(', ')}] differs from x shape ` +
          `[${x.shape.join(', ')}]; pass one direction per sample with the shape of x`,
      );
    }
    const withDirection = direction !== undefined;

    return tf.tidy(() => {
      const images = this.toImages(x, this.sampleShape, 'energyDerivatives');
      const convolutions = new Map<Conv2dLayer, SameConvolution>();
      for (const conv of this.convLayers) {
        // The forward pass applies every convolution first, so its products can carry the filter's gradient.
        convolutions.set(conv, new SameConvolution(conv.weightForForward(), conv.inputShape, { pairGradients: true }));
      }

      // 1. Forward pass with the SLR terms and, with a direction, the forward tangent.
      let activation: tf.Tensor = images;
      let tangent: tf.Tensor | null = withDirection ? this.toImages(direction, this.sampleShape, 'energyDerivatives') : null;
      let logSlopeSum: tf.Tensor1D | null = null;
      const terms: NonlinearityTerms[] = [];
      for (const stage of this.stages) {
        if (stage.kind === 'conv') {
          const convolution = convolutions.get(stage.layer) as SameConvolution;
          // x and v are constants, so the first stage needs no gradient in its input.
          const constantInput = activation === images;
          if (tangent === null) {
            activation = addBias(convolution.apply(activation as tf.Tensor4D, { constantInput }), stage.layer.bias);
          } else {
            // One product over [x; v], so the first apply (which carries the filter's gradient) covers both.
            const stacked = tf.concat([activation, tangent], 0) as tf.Tensor4D;
            const [applied, appliedTangent] = tf.split(convolution.apply(stacked, { constantInput }), 2, 0);
            activation = addBias(applied as tf.Tensor4D, stage.layer.bias);
            tangent = appliedTangent;
          }
        } else if (stage.kind === 'squeeze') {
          activation = stage.layer.forward(activation).y;
          if (tangent !== null) tangent = stage.layer.forward(tangent).y;
        } else {
          const slr = smoothLeakyReluStage(activation, stage.layer.alpha, stage.layer.residual, { derivatives: true, curvature: withDirection });
          const entry: NonlinearityTerms = { slope: slr.slope as tf.Tensor, curvatureRatio: slr.curvatureRatio as tf.Tensor };
          logSlopeSum = logSlopeSum === null ? slr.rowLogSlope : (tf.add(logSlopeSum, slr.rowLogSlope) as tf.Tensor1D);
          if (tangent !== null && slr.logSlopeCurvature !== undefined) {
            entry.logSlopeCurvature = slr.logSlopeCurvature;
            entry.tangent = tangent;
            tangent = tf.mul(entry.slope, tangent);
          }
          terms.push(entry);
          activation = slr.y;
        }
      }

      const z = activation;
      const batch = images.shape[0];
      const halfSquaredNorm = tf.mul(tf.sum(tf.reshape(tf.square(z), [batch, -1]), 1), 0.5);
      let energy = tf.add(halfSquaredNorm, 0.5 * this.dimension * LOG_TWO_PI) as tf.Tensor1D;
      if (logSlopeSum !== null) energy = tf.sub(energy, logSlopeSum) as tf.Tensor1D;

      // 2. and 3. Backward pass and its tangent.
      let gradient: tf.Tensor = z;
      let gradientTangent: tf.Tensor | null = tangent;
      let termIndex = terms.length - 1;
      for (let index = this.stages.length - 1; index >= 0; index--) {
        const stage = this.stages[index];
        if (stage.kind === 'conv') {
          const convolution = convolutions.get(stage.layer) as SameConvolution;
          if (gradientTangent === null) {
            gradient = convolution.applyTranspose(gradient as tf.Tensor4D);
          } else {
            [gradient, gradientTangent] = tf.split(convolution.applyTranspose(tf.concat([gradient, gradientTangent], 0) as tf.Tensor4D), 2, 0);
          }
        } else if (stage.kind === 'squeeze') {
          // A permutation's adjoint is its inverse.
          gradient = stage.layer.inverse(gradient);
          if (gradientTangent !== null) gradientTangent = stage.layer.inverse(gradientTangent);
        } else {
          const entry = terms[termIndex--];
          if (gradientTangent !== null && entry.tangent !== undefined && entry.logSlopeCurvature !== undefined) {
            // f″ = (f″/f′)·f′.
            const curvature = tf.mul(entry.slope, entry.curvatureRatio);
            const curvatureTerm = tf.sub(tf.mul(gradient, curvature), entry.logSlopeCurvature);
            gradientTangent = tf.add(tf.mul(gradientTangent, entry.slope), tf.mul(curvatureTerm, entry.tangent));
          }
          gradient = tf.sub(tf.mul(gradient, entry.slope), entry.curvatureRatio);
        }
      }

      const inputGradient = tf.reshape(gradient, x.shape);
      if (gradientTangent === null) {
        return { energy, gradient: inputGradient };
      }
      return { energy, gradient: inputGradient, hessianVector: tf.reshape(gradientTangent, x.shape) };
    });
  }

  /** Reshapes [B, …shape] or [B, D] to [B, …shape], naming the method in the error. */
  private toImages(x: tf.Tensor, shape: readonly number[], method: string): tf.Tensor4D {
    const perSample = shape.reduce((product, size) => product * size, 1);
    const sameShape = x.rank === shape.length + 1 && tf.util.arraysEqual(x.shape.slice(1), [...shape]);
    if (sameShape) return x as tf.Tensor4D;
    if (x.rank === 2 && x.shape[1] === perSample) {
      const [height, width, channels] = shape;
      return tf.reshape(x, [x.shape[0], height, width, channels]);
    }
    throw new Error(
      `CnnFlow.${method}: expected a batch of shape [B, ${shape.join(', ')}] or [B, ${perSample}], ` +
        `received [${x.shape.join(', ')}]`,
    );
  }
}

function checkOptions(imageShape: number[], blocks: number, convsPerBlock: number): void {
  const validShape = Array.isArray(imageShape) && imageShape.length === 3 && imageShape.every((n) => Number.isInteger(n) && n > 0);
  if (!validShape) {
    throw new Error(`CnnFlow: imageShape must be [H, W, C] with positive integers, received ${JSON.stringify(imageShape)}`);
  }
  if (!Number.isInteger(blocks) || blocks < 1) {
    throw new Error(`CnnFlow: blocks must be an integer ≥ 1, received ${blocks}`);
  }
  if (!Number.isInteger(convsPerBlock) || convsPerBlock < 1) {
    throw new Error(`CnnFlow: convsPerBlock must be an integer ≥ 1, received ${convsPerBlock}`);
  }
  const divisor = 2 ** (blocks - 1);
  const [height, width] = imageShape;
  if (height % divisor !== 0 || width % divisor !== 0) {
    throw new Error(
      `CnnFlow: with ${blocks} blocks the image is squeezed ${blocks - 1} times, so H and W must be divisible by ` +
        `${divisor}; received imageShape [${imageShape.join(', ')}]. Crop or pad the images to a multiple of ` +
        `${divisor}, or use fewer blocks`,
    );
  }
}
