/**
 * The Glow EBFlow model of the EBFlow paper's MNIST experiment (Chao et al., NeurIPS 2023,
 * Figure 4), after the architecture of its reference PyTorch implementation
 * (github.com/chen-hao-chao/ebflow). With 2 blocks of 16 steps, width 512, on 28×28×1 images:
 *   Squeeze                                   → 14×14×4
 *   16 × [ActNorm → Conv1x1 → AffineCoupling]
 *   SplitPrior (keeps 2 of the 4 channels)
 *   Squeeze                                   → 7×7×8 (active)
 *   16 × [ActNorm → Conv1x1 → AffineCoupling] → base N(0, I) on 7×7×8.
 * Every block but the last ends with a split prior.
 *
 * The layer list is a bijection on D = H·W·C. The half a split prior factors out stays in the
 * tensor after the kept channels and later layers pass it through (`ActiveChannelsLayer`), so the
 * latent has shape `latentShape` (7×7×16 for MNIST). Its first `baseShape[2]` channels are the
 * reference's base latent and the rest are the factored-out halves, squeezed. The standard normal
 * on the whole latent scores both, which gives the reference's density exactly.
 *
 * EBFlow split: Conv1x1 and ActNorm layers are constant-Jacobian, so
 *   E(x)     = ½‖z‖² + (D/2)·ln(2π) − Σ_{couplings, split priors} Σ log s,
 *   log Z(θ) = −Σ_{Conv1x1} H·W·log|det W| + Σ_{ActNorm} H·W·Σ_c s_c.
 * The reference counts ActNorm's log-det in the energy instead. It is constant in x and θ (t and
 * s are frozen), so scores and gradients agree; the reported energy is lower than the reference's
 * by Σ_{ActNorm} H·W·Σ_c s_c.
 *
 * No explicit energy derivatives: the score-matching objectives differentiate `energy` with
 * nested `tf.grad`, which every op here supports to third order on the wasm and cpu backends.
 */
import * as tf from '@tensorflow/tfjs-core';

import { ActNormLayer, type ActNormState } from '../layers/actnorm.js';
import { AffineCouplingLayer, DEFAULT_COUPLING_WIDTH } from '../layers/affine-coupling.js';
import { Conv1x1Layer } from '../layers/conv1x1.js';
import type { FlowLayer } from '../layers/layer.js';
import { ActiveChannelsLayer, SplitPriorLayer } from '../layers/split-prior.js';
import { SqueezeLayer } from '../layers/squeeze.js';
import type { RandomStream } from '../random/stream.js';
import type { EnergyFlow } from './energy-flow.js';
import {
  collectVariables,
  energyThroughLayers,
  forwardThroughLayers,
  inverseThroughLayers,
  logNormalizerOfLayers,
} from './flow-core.js';

export interface GlowOptions {
  /** The shape [H, W, C] of one image (NHWC without the batch axis); H and W divisible by 2^blocks. */
  imageShape: [number, number, number];
  /** Number of blocks (squeeze, steps, and a split prior except after the last). Default 2. */
  blocks?: number;
  /** Steps [ActNorm → Conv1x1 → AffineCoupling] per block. Default 16. */
  blockSize?: number;
  /** Hidden channels of every coupling network, split priors included. Default 512. */
  width?: number;
  /** Tie each Conv2dZero's bias and log-scale into one vector, as the reference does. Default false. */
  tieZeroBiasAndLogScale?: boolean;
  /** The run's random stream; every Conv1x1 and coupling initialisation is drawn from it. */
  random: RandomStream;
}

/** The non-trained state of a Glow model: every ActNorm's t, s and flag, in layer order. */
export interface GlowState {
  actNorms: ActNormState[];
}

/**
 * Builds a Glow EBFlow model at Glow's initialisation. With the defaults on MNIST it has
 * 10 040 968 parameters: 17 couplings of 290 824 on 14×14×4 (split prior included), 16 of 318 480
 * on 7×7×8, and 1280 in the Conv1x1 weights.
 */
export function createGlow(options: GlowOptions): GlowFlow {
  return new GlowFlow(options);
}

export class GlowFlow implements EnergyFlow {
  readonly architecture = 'glow';
  readonly sampleShape: number[];
  /** The shape [H/2^blocks, W/2^blocks, C·4^blocks] of the latent `inverse` takes. */
  readonly latentShape: [number, number, number];
  /** The reference's base shape: the latent's spatial shape with only the channels no split prior factored out. */
  readonly baseShape: [number, number, number];
  readonly dimension: number;
  readonly blocks: number;
  readonly blockSize: number;
  readonly width: number;
  readonly layers: readonly FlowLayer[];
  readonly variables: tf.Variable[];
  /** Every ActNorm layer, in flow order (possibly wrapped in `layers`). */
  readonly actNorms: readonly ActNormLayer[];
  /** Every split prior, one per block but the last. */
  readonly splitPriors: readonly SplitPriorLayer[];

  constructor(options: GlowOptions) {
    const blocks = options.blocks ?? 2;
    const blockSize = options.blockSize ?? 16;
    const width = options.width ?? DEFAULT_COUPLING_WIDTH;
    checkOptions(options.imageShape, blocks, blockSize, width);
    const tie = options.tieZeroBiasAndLogScale ?? false;
    const random = options.random;

    const layers: FlowLayer[] = [];
    const actNorms: ActNormLayer[] = [];
    const splitPriors: SplitPriorLayer[] = [];
    let [height, imageWidth, totalChannels] = options.imageShape;
    let activeChannels = totalChannels;
    // Wraps a layer on the active channels when a split prior has factored some out.
    const placed = (inner: FlowLayer): FlowLayer =>
      activeChannels === totalChannels ? inner : new ActiveChannelsLayer(inner, activeChannels, totalChannels);

    for (let block = 0; block < blocks; block++) {
      layers.push(new SqueezeLayer(`squeeze[${block}]`));
      height /= 2;
      imageWidth /= 2;
      totalChannels *= 4;
      activeChannels *= 4;
      const inputShape: [number, number, number] = [height, imageWidth, activeChannels];

      for (let step = 0; step < blockSize; step++) {
        const id = `${block}.${step}`;
        const actNorm = new ActNormLayer({ inputShape, name: `actnorm[${id}]` });
        actNorms.push(actNorm);
        layers.push(placed(actNorm));
        layers.push(placed(new Conv1x1Layer({ inputShape, random, name: `conv1x1[${id}]` })));
        layers.push(
          placed(new AffineCouplingLayer({ inputShape, random, width, tieZeroBiasAndLogScale: tie, name: `coupling[${id}]` })),
        );
      }

      if (block < blocks - 1) {
        const splitPrior = new SplitPriorLayer({ inputShape, random, width, tieZeroBiasAndLogScale: tie, name: `split-prior[${block}]` });
        splitPriors.push(splitPrior);
        layers.push(placed(splitPrior));
        activeChannels /= 2;
      }
    }

    this.sampleShape = [...options.imageShape];
    this.latentShape = [height, imageWidth, totalChannels];
    this.baseShape = [height, imageWidth, activeChannels];
    this.dimension = height * imageWidth * totalChannels;
    this.blocks = blocks;
    this.blockSize = blockSize;
    this.width = width;
    this.layers = layers;
    this.actNorms = actNorms;
    this.splitPriors = splitPriors;
    this.variables = collectVariables(layers);
  }

  /**
   * The non-trained state a checkpoint must save besides `variables`: each ActNorm's t, s and
   * initialised flag, in layer order.
   */
  get buffers(): tf.Variable[] {
    return this.actNorms.flatMap((actNorm) => actNorm.buffers);
  }

  /** True when every ActNorm contains data-dependent values. */
  get initialized(): boolean {
    return this.actNorms.every((actNorm) => actNorm.initialized);
  }

  /**
   * Runs the data-dependent initialisation of every ActNorm again from the images x [B, H, W, C]
   * or [B, D]: each ActNorm takes its statistics from the batch as it reaches that layer. Without
   * this call the first forward pass initialises them; the reference uses its first validation
   * batch (50 MNIST images). Costs one forward pass.
   */
  initialize(x: tf.Tensor): void {
    tf.tidy(() => {
      const images = this.toImages(x, this.sampleShape, 'initialize');
      for (const actNorm of this.actNorms) actNorm.resetInitialization();
      forwardThroughLayers(this.layers, images);
    });
  }

  /** Returns every ActNorm's t, s and flag as plain numbers, in layer order. O(L·C). */
  getState(): GlowState {
    return { actNorms: this.actNorms.map((actNorm) => actNorm.getState()) };
  }

  /** Restores a state returned by `getState()` of a Glow model with the same architecture. O(L·C). */
  setState(state: GlowState): void {
    if (!Array.isArray(state?.actNorms) || state.actNorms.length !== this.actNorms.length) {
      throw new Error(
        `GlowFlow.setState: expected { actNorms: [...] } with ${this.actNorms.length} entries, received ` +
          `${Array.isArray(state?.actNorms) ? state.actNorms.length : typeof state?.actNorms}; pass getState() of a model with ` +
          'the same blocks, blockSize and image shape',
      );
    }
    this.actNorms.forEach((actNorm, index) => actNorm.setState(state.actNorms[index]));
  }

  /**
   * Returns E(x) per sample, shape [B], nats, for x [B, H, W, C] or [B, D]. Initialises the
   * ActNorms on the first call. Each coupling of a block with H_l×W_l pixels and C_l channels costs
   * about 2·B·H_l·W_l·width·(width + 13.5·C_l) flops, so the width×width products dominate.
   */
  energy(x: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => energyThroughLayers(this.layers, this.toImages(x, this.sampleShape, 'energy')));
  }

  /**
   * Returns log Z = −Σ_{Conv1x1} H·W·log|det W| + Σ_{ActNorm} H·W·Σ_c s_c, differentiable in θ.
   * O(L·C³) for L steps, negligible next to a forward pass.
   */
  logNormalizer(): tf.Scalar {
    return logNormalizerOfLayers(this.layers);
  }

  /** Returns log p(x) = −E(x) − log Z per sample, shape [B], nats. Costs one forward pass. */
  logProb(x: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => tf.sub(tf.neg(this.energy(x)), this.logNormalizer()) as tf.Tensor1D);
  }

  /**
   * Maps latents z [B, …latentShape] or [B, D] to images [B, H, W, C] by inverting every layer.
   * Never differentiated. Costs about one forward pass plus a C×C inverse per Conv1x1.
   */
  inverse(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => inverseThroughLayers(this.layers, this.toImages(z, this.latentShape, 'inverse')));
  }

  /**
   * Draws `count` images: z ~ N(0, I) of shape [count, …latentShape] from `random` (count·D
   * normals, NHWC order), then `inverse(z)`. This is the reference's sampling at temperature 1,
   * where the split priors draw their halves during the reverse pass. Never differentiated.
   */
  sample(count: number, random: RandomStream): tf.Tensor {
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(`GlowFlow.sample: count must be a positive integer, received ${count}`);
    }
    const noise = random.normalArray(count * this.dimension);
    return tf.tidy(() => this.inverse(tf.tensor(noise, [count, ...this.latentShape])));
  }

  /** Disposes every variable and ActNorm buffer; the model is unusable afterwards. */
  dispose(): void {
    for (const layer of this.layers) {
      const disposable = layer as { dispose?: () => void };
      if (typeof disposable.dispose === 'function') disposable.dispose();
    }
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
      `GlowFlow.${method}: expected a batch of shape [B, ${shape.join(', ')}] or [B, ${perSample}], ` +
        `received [${x.shape.join(', ')}]`,
    );
  }
}

function checkOptions(imageShape: number[], blocks: number, blockSize: number, width: number): void {
  const validShape = Array.isArray(imageShape) && imageShape.length === 3 && imageShape.every((n) => Number.isInteger(n) && n > 0);
  if (!validShape) {
    throw new Error(`GlowFlow: imageShape must be [H, W, C] with positive integers, received ${JSON.stringify(imageShape)}`);
  }
  if (!Number.isInteger(blocks) || blocks < 1) {
    throw new Error(`GlowFlow: blocks must be an integer ≥ 1, received ${blocks}`);
  }
  if (!Number.isInteger(blockSize) || blockSize < 1) {
    throw new Error(`GlowFlow: blockSize must be an integer ≥ 1, received ${blockSize}`);
  }
  if (!Number.isInteger(width) || width < 1) {
    throw new Error(`GlowFlow: width must be a positive integer, received ${width}`);
  }
  const divisor = 2 ** blocks;
  const [height, imageWidth] = imageShape;
  if (height % divisor !== 0 || imageWidth % divisor !== 0) {
    throw new Error(
      `GlowFlow: with ${blocks} blocks the image is squeezed ${blocks} times, so H and W must be divisible by ` +
        `${divisor}; received imageShape [${imageShape.join(', ')}]. Crop or pad the images, or use fewer blocks`,
    );
  }
}
