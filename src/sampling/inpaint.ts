/**
 * MCMC inpainting with an EBFlow model, as in EBFlow's reference (Chao et al., NeurIPS 2023,
 * Figure 5): a Langevin-type corrector with a batch-adaptive noise scale and a blur-smoothing
 * drift, run in the model's input space and restricted to a mask m (1 = pixel to fill). With
 * step η, signal-to-noise ratio snr and smoothing weight c, each iteration i draws σ ~ U[0.1, 2]
 * and ξ ~ N(0, I) and computes
 *
 *   d = Blur_σ(xⁱ) − xⁱ,   s = −∇ₓE(xⁱ),   r = (mean_b ‖ξ_b‖ / mean_b ‖s_b‖)²,
 *   x̄ = xⁱ + (η²/2)·s + c·d,   xⁱ⁺¹ = x̄ + snr·r·η·ξ    (the last iteration keeps x̄),
 *
 * and takes xⁱ⁺¹ inside the mask and xⁱ outside it, so unmasked values never move. Norms run over
 * all pixels of a sample; r is one number for the batch. This is not ULA or MALA: there is no
 * Metropolis step and the noise scale is snr·r·η, not √(2η).
 *
 * The chain starts from the images with random pixels in the mask, x_pix = img⊙(1 − m) + R⊙m
 * with R = toPixels(N(0, I)), dequantised (and, with MaP, scaled and logit-transformed). The final
 * state is mapped back to pixels inside the mask only. Outside it the original pixels are returned
 * as they are, so the float32 round trip through the logit cannot change them.
 *
 * Draws from the stream, in order: B·D normals for R, B·D uniforms for the dequantisation, then
 * per iteration one uniform for σ and B·D normals for ξ.
 */
import * as tf from '@tensorflow/tfjs-core';

import { preprocess, toPixels } from '../data/preprocess.js';
import { PreprocessedFlow } from '../models/preprocessed-flow.js';
import { energyDerivativesOf } from '../objectives/derivatives.js';
import type { RandomStream } from '../random/stream.js';
import { BLUR_KERNEL_SIZE, BLUR_SIGMA_RANGE, drawBlurSigma, gaussianBlur } from './blur.js';
import { imageGrid, type ImageBatch } from './grid.js';
import type { RasterImage } from './png.js';
import { modelSpaceToPixels, withSourceModel, type SamplingSource } from './sample.js';

/** The settings of EBFlow's inpainting configs (CelebA and STL-10). */
export const INPAINTING_DEFAULTS = {
  iterations: 500,
  stepSize: 0.5,
  snr: 0.1,
  /** c; the reference uses 0.01 for CelebA and 0.05 for STL-10. */
  smoothing: 0.01,
  kernelSize: BLUR_KERNEL_SIZE,
} as const;

/** The grey value that marks masked pixels in the "masked input" row of a grid. */
export const MASKED_PIXEL_VALUE = 128;

export interface InpaintingOptions {
  /** Iterations of the chain; default 500. */
  iterations?: number;
  /** η; default 0.5. */
  stepSize?: number;
  /** snr; default 0.1. */
  snr?: number;
  /** c, the weight of the blur drift; default 0.01. */
  smoothing?: number;
  /** Odd blur kernel size; default 5. */
  kernelSize?: number;
  /** Range of the blur's σ; default [0.1, 2]. */
  sigmaRange?: readonly [number, number];
  /** Use the model's explicit score formulas (true, default) or nested tf.grad. */
  explicitDerivatives?: boolean;
  /** Called after every iteration with its 1-based number and the total. */
  onIteration?: (iteration: number, total: number) => void;
}

export interface InpaintingResult {
  /** The completed images: the chain's final state inside the mask, the originals outside. */
  completed: ImageBatch;
  /** The chain's starting images in pixel space (random pixels inside the mask). */
  start: ImageBatch;
  /** The chain's first and final state in model space, NHWC, for checks. */
  initialModelSpace: Float32Array;
  finalModelSpace: Float32Array;
  /** Iterations whose noise scale r was not finite (a zero or non-finite score norm). */
  nonFiniteIterations: number;
}

/**
 * Returns a mask (1 = fill) for `count` images of H×W: a `side`×`side` square whose top-left
 * corner is (`top`, `left`), centred by default. One byte per pixel, shared by all channels.
 */
export function squareMask(count: number, imageShape: readonly [number, number, number], side: number, top?: number, left?: number): Uint8Array {
  const [height, width] = imageShape;
  const row = top ?? Math.floor((height - side) / 2);
  const column = left ?? Math.floor((width - side) / 2);
  if (!Number.isInteger(side) || side < 1 || row < 0 || column < 0 || row + side > height || column + side > width) {
    throw new RangeError(
      `squareMask: a ${side}×${side} square at (${row}, ${column}) does not fit ${height}×${width} images; choose a smaller side or another corner`,
    );
  }
  const mask = new Uint8Array(count * height * width);
  for (let n = 0; n < count; n++) {
    for (let i = row; i < row + side; i++) mask.fill(1, (n * height + i) * width + column, (n * height + i) * width + column + side);
  }
  return mask;
}

/**
 * Returns a mask (1 = fill) from the strokes of grey images of the same H×W, such as other
 * MNIST digits: m = 1 where the stroke image's value exceeds `threshold` (default 127, intensity
 * above one half). One byte per pixel.
 */
export function strokeMask(strokes: Uint8Array, threshold = 127): Uint8Array {
  return Uint8Array.from(strokes, (value) => (value > threshold ? 1 : 0));
}

/**
 * Fills the masked pixels of `images` by the MCMC chain of the file comment, with the model of
 * `source` (a session's evaluation weights, or a configured model). `mask` contains one byte per
 * pixel (count·H·W, shared by all channels) or per value (count·H·W·C); 1 marks a pixel to fill.
 * Cost per iteration: one score evaluation (for the FC flow O(B·D²·L)) plus the blur,
 * O(B·D·K²); one scalar is read back per iteration.
 */
export async function inpaintImages(
  source: SamplingSource,
  images: ImageBatch,
  mask: Uint8Array,
  random: RandomStream,
  options: InpaintingOptions = {},
): Promise<InpaintingResult> {
  const settings = { ...INPAINTING_DEFAULTS, ...options };
  const sigmaRange = options.sigmaRange ?? BLUR_SIGMA_RANGE;
  const explicit = options.explicitDerivatives ?? true;
  checkSettings(settings.iterations, settings.stepSize, settings.snr, settings.smoothing);
  const { count, imageShape } = images;
  const [height, width, channels] = imageShape;
  const dimension = height * width * channels;
  const fullMask = expandMask(mask, count, imageShape);
  const shape: [number, number, number, number] = [count, height, width, channels];

  return withSourceModel(source, async (model, config) => {
    if (model.dimension !== dimension) {
      throw new RangeError(`inpaintImages: the model has D = ${model.dimension} but the images have ${dimension} values each`);
    }
    const owned: tf.Tensor[] = [];
    try {
      // 1. The start: random pixels inside the mask, then into model space.
      const randomLatents = random.normalArray(count * dimension);
      const maskTensor = tf.tidy(() => tf.cast(tf.tensor4d(fullMask, shape, 'int32'), 'bool'));
      const originals = tf.tensor4d(Float32Array.from(images.pixels), shape);
      owned.push(maskTensor, originals);
      const startPixels = tf.tidy(() => tf.where(maskTensor, toPixels(tf.tensor4d(randomLatents, shape), config.logitScale), originals));
      owned.push(startPixels);
      let x: tf.Tensor4D;
      if (model instanceof PreprocessedFlow) {
        const noise = random.uniformArray(count * dimension);
        x = tf.tidy(() => tf.add(startPixels, tf.tensor4d(noise, shape)) as tf.Tensor4D);
      } else {
        x = tf.tidy(() => preprocess(startPixels, random, config.logitScale).x as tf.Tensor4D);
      }
      const initialModelSpace = Float32Array.from(await x.data());

      // 2. The chain.
      const halfStepSquared = (settings.stepSize * settings.stepSize) / 2;
      let nonFiniteIterations = 0;
      for (let iteration = 0; iteration < settings.iterations; iteration++) {
        const sigma = drawBlurSigma(random, sigmaRange);
        const noiseValues = random.normalArray(count * dimension);
        const isLast = iteration === settings.iterations - 1;
        const current = x;
        const { next, noiseScale } = tf.tidy(() => {
          const drift = tf.sub(gaussianBlur(current, sigma, settings.kernelSize), current);
          const modelInput = tf.reshape(current, [count, ...model.sampleShape]);
          const { gradient } = energyDerivativesOf(model, modelInput, undefined, explicit);
          const score = tf.neg(tf.reshape(gradient, shape));
          const noise = tf.tensor4d(noiseValues, shape);
          const meanNorm = (t: tf.Tensor): tf.Scalar => tf.mean(tf.norm(tf.reshape(t, [count, dimension]), 'euclidean', 1));
          const scale = tf.square(tf.div(meanNorm(noise), meanNorm(score)));
          const mean = tf.add(tf.add(current, tf.mul(score, halfStepSquared)), tf.mul(drift, settings.smoothing));
          const proposal = isLast ? mean : tf.add(mean, tf.mul(noise, tf.mul(scale, settings.snr * settings.stepSize)));
          return { next: tf.where(maskTensor, proposal, current) as tf.Tensor4D, noiseScale: scale };
        });
        const r = (await noiseScale.data())[0];
        noiseScale.dispose();
        if (!Number.isFinite(r)) nonFiniteIterations += 1;
        current.dispose();
        x = next;
        options.onIteration?.(iteration + 1, settings.iterations);
      }
      owned.push(x);

      // 3. Back to pixels inside the mask; the originals outside it.
      const completed = tf.tidy(() => tf.where(maskTensor, modelSpaceToPixels(model, x, config.logitScale), originals));
      owned.push(completed);
      return {
        completed: { pixels: Uint8Array.from(await completed.data()), count, imageShape: [...imageShape] },
        start: { pixels: Uint8Array.from(await startPixels.data()), count, imageShape: [...imageShape] },
        initialModelSpace,
        finalModelSpace: Float32Array.from(await x.data()),
        nonFiniteIterations,
      };
    } finally {
      owned.forEach((t) => t.dispose());
    }
  });
}

/**
 * Lays out an inpainting run as a grid: for each group of `perRow` images (default 10) three
 * rows, the masked input (masked pixels grey, value 128), the result and the original.
 */
export function inpaintingGrid(originals: ImageBatch, completed: ImageBatch, mask: Uint8Array, perRow = 10): RasterImage {
  const { count, imageShape } = originals;
  const [height, width, channels] = imageShape;
  const imageBytes = height * width * channels;
  const fullMask = expandMask(mask, count, imageShape);
  const masked = Uint8Array.from(originals.pixels, (value, i) => (fullMask[i] === 1 ? MASKED_PIXEL_VALUE : value));

  const columns = Math.min(perRow, count);
  const groups = Math.ceil(count / columns);
  const cells = groups * 3 * columns;
  const pixels = new Uint8Array(cells * imageBytes);
  for (let n = 0; n < count; n++) {
    const group = Math.floor(n / columns);
    const column = n % columns;
    const rows: Uint8Array[] = [masked, completed.pixels, originals.pixels];
    rows.forEach((source, row) => {
      const cell = (group * 3 + row) * columns + column;
      pixels.set(source.subarray(n * imageBytes, (n + 1) * imageBytes), cell * imageBytes);
    });
  }
  return imageGrid({ pixels, count: cells, imageShape }, { perRow: columns });
}

/** Returns the mask with one byte per value (count·H·W·C), repeating a per-pixel mask over the channels. */
function expandMask(mask: Uint8Array, count: number, imageShape: readonly [number, number, number]): Uint8Array {
  const [height, width, channels] = imageShape;
  const pixelsPerImage = height * width;
  if (mask.length === count * pixelsPerImage * channels) {
    return Uint8Array.from(mask, (value) => (value !== 0 ? 1 : 0));
  }
  if (mask.length !== count * pixelsPerImage) {
    throw new RangeError(
      `inpainting: the mask has ${mask.length} bytes; ${count} images of [${imageShape.join(', ')}] need ${count * pixelsPerImage} ` +
        `(one per pixel) or ${count * pixelsPerImage * channels} (one per value)`,
    );
  }
  const out = new Uint8Array(count * pixelsPerImage * channels);
  for (let p = 0; p < count * pixelsPerImage; p++) {
    if (mask[p] !== 0) out.fill(1, p * channels, (p + 1) * channels);
  }
  return out;
}

function checkSettings(iterations: number, stepSize: number, snr: number, smoothing: number): void {
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new RangeError(`inpaintImages: iterations must be a positive integer, received ${iterations}`);
  }
  for (const [name, value] of [
    ['stepSize', stepSize],
    ['snr', snr],
    ['smoothing', smoothing],
  ] as const) {
    if (!(Number.isFinite(value) && value >= 0)) {
      throw new RangeError(`inpaintImages: ${name} must be a finite number ≥ 0, received ${value}`);
    }
  }
}
