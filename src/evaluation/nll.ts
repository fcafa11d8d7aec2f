/**
 * Exact negative log-likelihood of 8-bit images under an EBFlow model, as EBFlow's reference
 * evaluates it.
 *
 * For an image x with D pixel values in {0, …, 255}, one fresh uniform dequantisation u, and the
 * preprocessing chain T (x + u → /256 → shift → logit, log-det ln|det ∂T| per image):
 *
 *   ℓ(x)   = log p_model(T(x + u)) + ln|det ∂T(x + u)|                          (nats)
 *          = −E(x′) − log Z(θ) + ln|det ∂T(x + u)|,   x′ = T(x + u)
 *   NLL    = −(1/N) Σ_n ℓ(x_n)                                                (nats per image)
 *   bits/dim = NLL / (D · ln 2)
 *
 * Because the chain divides by 256 and its log-det includes −D·ln 256, this is the usual 8-bit
 * discrete-data convention, a one-sample estimate of the uniform-dequantisation bound. log Z(θ),
 * the O(D³) sum of the constant-Jacobian log-dets, is computed once per evaluation; each batch
 * costs one energy pass. Images whose ℓ is not finite are counted and left out of the mean.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { ImageDataset } from '../data/dataset.js';
import { preprocess } from '../data/preprocess.js';
import { Conv2dLayer } from '../layers/conv2d.js';
import { DenseLayer } from '../layers/dense.js';
import type { FlowLayer } from '../layers/layer.js';
import type { EnergyFlow } from '../models/energy-flow.js';
import type { RandomStream } from '../random/stream.js';
import { logAbsDetFloat64 } from '../tensor/linalg.js';
import type { NllResult } from '../train/session.js';

/** Images per evaluation batch unless the caller chooses otherwise. */
export const DEFAULT_EVALUATION_BATCH_SIZE = 100;

export interface NllEvaluationOptions {
  model: EnergyFlow;
  dataset: ImageDataset;
  split: 'validation' | 'test';
  /** Evaluates the first `maxImages` images of the split (all of them when absent). */
  maxImages?: number;
  /** The run's stream; each evaluation draws fresh dequantisation noise from it. */
  random: RandomStream;
  /** The logit scale α_l of the preprocessing chain. */
  logitScale: number;
  /** Images per batch; default 100. */
  batchSize?: number;
}

/** Returns NLL / (D·ln 2), the bits per dimension of an NLL in nats per image. */
export function bitsPerDimension(nllNats: number, dimension: number): number {
  return nllNats / (dimension * Math.LN2);
}

/**
 * Returns log Z(θ) = −Σ_{S_lin} log|det J_l| of `model` as a JavaScript number. Dense and
 * convolution layers expose their D×D matrix, whose log|det| is computed entirely in float64
 * (LU with partial pivoting, 2D³/3 operations, which `logAbsDetFloat64` documents as 0.2 s at
 * D = 784 and 10 s at D = 3072). Other constant-Jacobian layers contribute their own `constantLogDet()`.
 */
export function logNormalizerFloat64(model: EnergyFlow): number {
  let logDetSum = 0;
  for (const layer of model.layers) {
    if (!layer.constantJacobian) continue;
    logDetSum += constantLogDetFloat64(layer);
  }
  return -logDetSum;
}

function constantLogDetFloat64(layer: FlowLayer): number {
  if (layer instanceof DenseLayer) {
    return logAbsDetFloat64(layer.weight.dataSync() as Float32Array, layer.dimension);
  }
  if (layer instanceof Conv2dLayer) {
    const toeplitz = layer.toeplitz();
    try {
      return logAbsDetFloat64(toeplitz.dataSync() as Float32Array, toeplitz.shape[0]);
    } finally {
      toeplitz.dispose();
    }
  }
  if (layer.constantLogDet === undefined) {
    throw new Error(
      `NLL evaluation: layer "${layer.name}" has a constant Jacobian but no constantLogDet(); implement it to evaluate likelihoods`,
    );
  }
  const logDet = layer.constantLogDet();
  try {
    return logDet.dataSync()[0];
  } finally {
    logDet.dispose();
  }
}

/**
 * Evaluates the NLL of the first `maxImages` images of a split with the model's current weights.
 *
 * 1. log Z(θ) once, in float64 (O(D³) per constant-Jacobian layer).
 * 2. Per batch of B images: dequantise and preprocess (one fresh uniform draw per pixel from
 *    `random`), E(x′) by one forward pass (O(BD²L) for the FC model), and
 *    ℓ = −E(x′) − log Z + ln|det ∂T| summed in float64.
 * 3. NLL = −mean ℓ over the finite values; bits/dim = NLL/(D·ln 2).
 */
export async function evaluateNll(options: NllEvaluationOptions): Promise<NllResult> {
  const { model, random, logitScale } = options;
  checkEvaluationOptions(options, model.dimension);

  // 1. The normalising constant, once: it does not depend on the images.
  const logNormalizer = logNormalizerFloat64(model);

  // 2 and 3. The per-image log-likelihoods batch by batch, then their mean.
  return averageLogLikelihoods(options, logNormalizer, (pixels) => {
    const { x, logDet } = preprocess(pixels, random, logitScale);
    const modelInput = tf.reshape(x, [pixels.shape[0], ...model.sampleShape]);
    return { energy: model.energy(modelInput), extraLogDet: logDet };
  });
}

/** The options every NLL evaluation shares. */
export interface NllLoopOptions {
  dataset: ImageDataset;
  split: 'validation' | 'test';
  maxImages?: number;
  batchSize?: number;
}

/** The tensors one batch contributes to ℓ = −E − log Z + (the log-det of a preprocessing outside the model). */
export interface BatchLogLikelihoodTerms {
  energy: tf.Tensor1D;
  extraLogDet?: tf.Tensor1D;
}

/**
 * Rejects a non-positive batch size or image count and a model built for another D, naming the
 * value and the fix.
 */
export function checkEvaluationOptions(options: NllLoopOptions, modelDimension: number): void {
  const { dataset, split } = options;
  const batchSize = options.batchSize ?? DEFAULT_EVALUATION_BATCH_SIZE;
  const images = evaluationImageCount(options);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`NLL evaluation: batchSize must be a positive integer, received ${batchSize}`);
  }
  if (!Number.isInteger(images) || images < 1) {
    throw new RangeError(
      `NLL evaluation: maxImages must be a positive integer, received ${options.maxImages}; omit it to evaluate the whole ${split} split`,
    );
  }
  if (modelDimension !== dataset.dimension) {
    throw new RangeError(
      `NLL evaluation: the model has D = ${modelDimension} but the ${dataset.name} images have D = ${dataset.dimension}; build the model for the data set's image shape`,
    );
  }
}

function evaluationImageCount(options: NllLoopOptions): number {
  const splitSize = options.dataset.sizes[options.split];
  return options.maxImages === undefined ? splitSize : Math.min(options.maxImages, splitSize);
}

/**
 * Runs `termsOf` on the raw pixels ([B, H, W, C], 0–255 floats) of each batch of the first images
 * of the split inside `tf.tidy`, sums ℓ = −E − logNormalizer + extraLogDet in float64 and returns
 * NLL = −mean ℓ over the finite values (NaN when none is finite), bits/dim and the count of
 * non-finite images.
 */
export async function averageLogLikelihoods(
  options: NllLoopOptions,
  logNormalizer: number,
  termsOf: (pixels: tf.Tensor4D) => BatchLogLikelihoodTerms,
): Promise<NllResult> {
  const { dataset, split } = options;
  const batchSize = options.batchSize ?? DEFAULT_EVALUATION_BATCH_SIZE;
  const images = evaluationImageCount(options);
  const [height, width, channels] = dataset.imageShape;
  let sum = 0;
  let finiteCount = 0;
  let nonFinite = 0;
  for (let start = 0; start < images; start += batchSize) {
    const count = Math.min(batchSize, images - start);
    const indices = Array.from({ length: count }, (_, i) => start + i);
    const pixels = dataset.batch(split, indices);

    const { energy, extraLogDet } = tf.tidy(() => {
      const terms = termsOf(tf.tensor4d(new Float32Array(pixels), [count, height, width, channels]));
      return { energy: terms.energy, extraLogDet: terms.extraLogDet ?? tf.zeros([count]) };
    });
    const [energyValues, logDetValues] = await Promise.all([energy.data(), extraLogDet.data()]);
    energy.dispose();
    extraLogDet.dispose();

    for (let i = 0; i < count; i++) {
      const logLikelihood = -energyValues[i] - logNormalizer + logDetValues[i];
      if (Number.isFinite(logLikelihood)) {
        sum += logLikelihood;
        finiteCount += 1;
      } else {
        nonFinite += 1;
      }
    }
  }

  const nllNats = finiteCount > 0 ? -sum / finiteCount : Number.NaN;
  return { split, images, nllNats, bitsPerDim: bitsPerDimension(nllNats, dataset.dimension), nonFinite };
}
