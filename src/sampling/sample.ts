/**
 * Samples from an EBFlow model by inversion: base noise z ~ N(0, I_D), x = g⁻¹(z), then the
 * inverse of the preprocessing chain to 8-bit pixels, clamp(floor(y₀), 0, 255). With MaP the chain
 * is outside the model (`toPixels`); without MaP the model's inverse already returns y₀.
 */
import * as tf from '@tensorflow/tfjs-core';

import { toPixels } from '../data/preprocess.js';
import type { EnergyFlow } from '../models/energy-flow.js';
import { PreprocessedFlow } from '../models/preprocessed-flow.js';
import type { RandomStream } from '../random/stream.js';
import type { EbflowTrainingSession } from '../train/session-impl.js';
import type { TrainingConfig } from '../train/session.js';
import type { ImageBatch } from './grid.js';

/** A model with the config fields sampling needs, such as `loadCheckpointModel` returns. */
export interface ConfiguredModel {
  model: EnergyFlow;
  config: Pick<TrainingConfig, 'imageShape' | 'logitScale'>;
}

/** A training session (sampled with its evaluation weights) or a configured model. */
export type SamplingSource = EbflowTrainingSession | ConfiguredModel;

export interface SampleOptions {
  /** Images inverted per call of `model.inverse`; default 100. */
  batchSize?: number;
}

/**
 * Runs `fn` with the model and config of `source`: a session lends its evaluation weights (EMA)
 * in evaluation mode, a configured model is used as it is.
 */
export async function withSourceModel<T>(
  source: SamplingSource,
  fn: (model: EnergyFlow, config: ConfiguredModel['config']) => T | Promise<T>,
): Promise<T> {
  if ('withEvaluationWeights' in source) {
    return source.withEvaluationWeights((model) => fn(model, source.config));
  }
  return fn(source.model, source.config);
}

/**
 * Maps values of the model's input space to 8-bit pixels, as float32 values 0–255 with the shape
 * of x. A flow trained with MaP goes through `toPixels` with α_l. A flow whose input is the
 * dequantised pixel value y₀ gives clamp(floor(y₀), 0, 255). O(BD).
 */
export function modelSpaceToPixels(model: EnergyFlow, x: tf.Tensor, logitScale: number): tf.Tensor {
  if (model instanceof PreprocessedFlow) {
    return tf.tidy(() => tf.clipByValue(tf.floor(x), 0, 255));
  }
  return toPixels(x, logitScale);
}

/**
 * Draws `count` images from the model of `source`. For each batch of B images it draws B·D
 * standard normals from `random` (row-major), inverts the flow and maps the result to pixels.
 * Returns NHWC bytes. Cost: `count`/B calls of `model.inverse` (for the FC and CNN flows O(D³)
 * per linear layer and call plus O(B·D²)), so larger batches amortise the solves.
 */
export async function sampleImages(
  source: SamplingSource,
  count: number,
  random: RandomStream,
  options: SampleOptions = {},
): Promise<ImageBatch> {
  const batchSize = options.batchSize ?? 100;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`sampleImages: count must be a positive integer, received ${count}`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`sampleImages: batchSize must be a positive integer, received ${batchSize}`);
  }

  return withSourceModel(source, async (model, config) => {
    const imageShape: [number, number, number] = [...config.imageShape];
    const imageSize = imageShape[0] * imageShape[1] * imageShape[2];
    if (imageSize !== model.dimension) {
      throw new RangeError(
        `sampleImages: imageShape [${imageShape.join(', ')}] has ${imageSize} values but the model has D = ${model.dimension}; pass the config the model was built from`,
      );
    }
    const pixels = new Uint8Array(count * imageSize);
    for (let start = 0; start < count; start += batchSize) {
      const size = Math.min(batchSize, count - start);
      const latents = random.normalArray(size * model.dimension);
      const values = tf.tidy(() => {
        const x = model.inverse(tf.tensor2d(latents, [size, model.dimension]));
        return modelSpaceToPixels(model, tf.reshape(x, [size, ...imageShape]), config.logitScale);
      });
      const data = await values.data();
      values.dispose();
      pixels.set(Uint8Array.from(data), start * imageSize);
    }
    return { pixels, count, imageShape };
  });
}
