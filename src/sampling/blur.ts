/**
 * The Gaussian blur of EBFlow's MCMC inpainting, as torchvision's `GaussianBlur` computes it: a
 * K×K kernel, the outer product of the 1-D kernel exp(−x²/(2σ²)) at x = −(K−1)/2 … (K−1)/2
 * normalised to sum 1, applied to each channel separately after reflect padding by (K−1)/2 on
 * every side (mirror without repeating the edge: index −1 reads index 1). σ is drawn uniformly
 * from [0.1, 2] on each call, one σ for the whole batch.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { RandomStream } from '../random/stream.js';

/** The default σ range of torchvision's GaussianBlur, (0.1, 2.0), which EBFlow's inpainting keeps. */
export const BLUR_SIGMA_RANGE: readonly [number, number] = [0.1, 2.0];
/** The kernel size of EBFlow's inpainting configs. */
export const BLUR_KERNEL_SIZE = 5;

/** Returns the normalised 1-D Gaussian kernel of odd `size` and standard deviation `sigma`, in float64. */
export function gaussianKernel1d(size: number, sigma: number): Float64Array {
  if (!Number.isInteger(size) || size < 1 || size % 2 !== 1) {
    throw new RangeError(`gaussianKernel1d: size must be a positive odd integer, received ${size}`);
  }
  if (!(Number.isFinite(sigma) && sigma > 0)) {
    throw new RangeError(`gaussianKernel1d: sigma must be a finite positive number, received ${sigma}`);
  }
  const half = (size - 1) / 2;
  const kernel = new Float64Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const x = i - half;
    kernel[i] = Math.exp(-0.5 * (x / sigma) ** 2);
    sum += kernel[i];
  }
  for (let i = 0; i < size; i++) kernel[i] /= sum;
  return kernel;
}

/** Draws σ uniformly from `range` (default [0.1, 2]) with one draw from `random`. */
export function drawBlurSigma(random: RandomStream, range: readonly [number, number] = BLUR_SIGMA_RANGE): number {
  return range[0] + (range[1] - range[0]) * random.uniform();
}

/**
 * Blurs each channel of the NHWC batch `images` with the K×K Gaussian of standard deviation
 * `sigma`, reflect padding, same output shape. H and W must exceed (K−1)/2. O(B·H·W·C·K²).
 */
export function gaussianBlur(images: tf.Tensor4D, sigma: number, kernelSize: number = BLUR_KERNEL_SIZE): tf.Tensor4D {
  const kernel = gaussianKernel1d(kernelSize, sigma);
  const half = (kernelSize - 1) / 2;
  const [, height, width, channels] = images.shape;
  if (height <= half || width <= half) {
    throw new RangeError(
      `gaussianBlur: reflect padding by ${half} needs images larger than ${half} pixels per side, received [${images.shape.join(', ')}]`,
    );
  }
  // Filter [K, K, C, 1]: the same 2-D kernel for every channel, one output per channel.
  const filter = new Float32Array(kernelSize * kernelSize * channels);
  for (let i = 0; i < kernelSize; i++) {
    for (let j = 0; j < kernelSize; j++) {
      for (let c = 0; c < channels; c++) filter[(i * kernelSize + j) * channels + c] = kernel[i] * kernel[j];
    }
  }
  return tf.tidy(() => {
    const padded = tf.mirrorPad(images, [[0, 0], [half, half], [half, half], [0, 0]], 'reflect');
    return tf.depthwiseConv2d(padded, tf.tensor4d(filter, [kernelSize, kernelSize, channels, 1]), 1, 'valid');
  });
}
