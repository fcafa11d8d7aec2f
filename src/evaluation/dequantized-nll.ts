/**
 * Exact negative log-likelihood of 8-bit images under a flow that contains the preprocessing
 * chain (MaP off, `PreprocessedFlow`). The definition is the one of `evaluateNll` in nll.ts: with
 * one fresh uniform dequantisation u per pixel, ℓ(x) = log p(x + u) in nats per image, where the
 * model's density now covers the whole chain, so
 *
 *   ℓ(x) = −E(x + u) − log Z(θ),   NLL = −(1/N) Σ_n ℓ(x_n),   bits/dim = NLL / (D·ln 2).
 *
 * The uniform draws are taken from the stream exactly as `preprocess` takes them (B·D values per
 * batch, row-major). So for the same weights and stream state, MaP on and off see the same noise
 * and give the same NLL up to float32 rounding.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { ImageDataset } from '../data/dataset.js';
import type { PreprocessedFlow } from '../models/preprocessed-flow.js';
import type { RandomStream } from '../random/stream.js';
import type { NllResult } from '../train/session.js';
import { bitsPerDimension, DEFAULT_EVALUATION_BATCH_SIZE, logNormalizerFloat64 } from './nll.js';

export interface DequantizedNllOptions {
  model: PreprocessedFlow;
  dataset: ImageDataset;
  split: 'validation' | 'test';
  /** Evaluates the first `maxImages` images of the split (all of them when absent). */
  maxImages?: number;
  /** The run's stream; each evaluation draws fresh dequantisation noise from it. */
  random: RandomStream;
  /** Images per batch; default 100. */
  batchSize?: number;
}

/**
 * Evaluates the NLL of the first `maxImages` images of a split with the model's current weights.
 *
 * 1. log Z(θ) once: the inner flow's constant log-dets in float64 (O(D³) per layer, as
 *    `logNormalizerFloat64`), minus the scalings' log-det D·(ln(1 − 2·10⁻⁶) − ln 256).
 * 2. Per batch of B images: y₀ = x + u with B·D uniform draws from `random`, then E(y₀) by one
 *    forward pass through the chain and the flow, and ℓ = −E(y₀) − log Z summed in float64.
 * 3. NLL = −mean ℓ over the finite values; bits/dim = NLL/(D·ln 2).
 */
export async function evaluateNllWithInModelPreprocessing(options: DequantizedNllOptions): Promise<NllResult> {
  const { model, dataset, split, random } = options;
  const batchSize = options.batchSize ?? DEFAULT_EVALUATION_BATCH_SIZE;
  const splitSize = dataset.sizes[split];
  const images = options.maxImages === undefined ? splitSize : Math.min(options.maxImages, splitSize);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`NLL evaluation: batchSize must be a positive integer, received ${batchSize}`);
  }
  if (!Number.isInteger(images) || images < 1) {
    throw new RangeError(
      `NLL evaluation: maxImages must be a positive integer, received ${options.maxImages}; omit it to evaluate the whole ${split} split`,
    );
  }
  if (model.dimension !== dataset.dimension) {
    throw new RangeError(
      `NLL evaluation: the model has D = ${model.dimension} but the ${dataset.name} images have D = ${dataset.dimension}; build the model for the data set's image shape`,
    );
  }

  // 1. The normalising constant, once.
  const logNormalizer = logNormalizerFloat64(model.inner) - model.preprocessing.constantLogDetValue();

  // 2. The per-image log-likelihoods, batch by batch.
  const [height, width, channels] = dataset.imageShape;
  let sum = 0;
  let finiteCount = 0;
  let nonFinite = 0;
  for (let start = 0; start < images; start += batchSize) {
    const count = Math.min(batchSize, images - start);
    const indices = Array.from({ length: count }, (_, i) => start + i);
    const pixels = dataset.batch(split, indices);
    const noise = random.uniformArray(pixels.length);

    const energy = tf.tidy(() => {
      const pixelTensor = tf.tensor4d(Float32Array.from(pixels), [count, height, width, channels]);
      const dequantised = tf.add(pixelTensor, tf.tensor(noise, pixelTensor.shape, 'float32'));
      return model.energy(tf.reshape(dequantised, [count, ...model.sampleShape]));
    });
    const energyValues = await energy.data();
    energy.dispose();

    for (let i = 0; i < count; i++) {
      const logLikelihood = -energyValues[i] - logNormalizer;
      if (Number.isFinite(logLikelihood)) {
        sum += logLikelihood;
        finiteCount += 1;
      } else {
        nonFinite += 1;
      }
    }
  }

  // 3. The mean over the finite values; NaN when no image had a finite log-likelihood.
  const nllNats = finiteCount > 0 ? -sum / finiteCount : Number.NaN;
  return { split, images, nllNats, bitsPerDim: bitsPerDimension(nllNats, dataset.dimension), nonFinite };
}
