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
import { averageLogLikelihoods, checkEvaluationOptions, logNormalizerFloat64 } from './nll.js';

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
  const { model, random } = options;
  checkEvaluationOptions(options, model.dimension);

  // 1. The normalising constant, once.
  const logNormalizer = logNormalizerFloat64(model.inner) - model.preprocessing.constantLogDetValue();

  // 2 and 3. Dequantise with the same draws as `preprocess`, then E through the chain and the flow.
  return averageLogLikelihoods(options, logNormalizer, (pixels) => {
    const noise = random.uniformArray(pixels.size);
    const dequantised = tf.add(pixels, tf.tensor(noise, pixels.shape, 'float32'));
    return { energy: model.energy(tf.reshape(dequantised, [pixels.shape[0], ...model.sampleShape])) };
  });
}
