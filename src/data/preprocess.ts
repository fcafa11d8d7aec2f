/**
 * The fixed preprocessing of "match after preprocessing" (MaP): it maps raw 8-bit pixel values to
 * the logit space the flow models, outside the model and without parameters.
 *
 *   y₀ = x + u,  u ~ U[0, 1)                   dequantisation, log-det 0
 *   y₁ = y₀ / 256                               log-det −D·ln 256
 *   y₂ = (y₁ + 10⁻⁶)·(1 − 2·10⁻⁶)               log-det D·ln(1 − 2·10⁻⁶)
 *   x′ = (ln y₂ − ln(1 − y₂)) / α_l             log-det Σ_i [−ln α_l − ln y₂,i − ln(1 − y₂,i)]
 *
 * y₂ uses exactly this product form, as the authors' PyTorch code does. The sum form
 * shift + (1 − 2·shift)·y₁ differs by 2·shift². The shift keeps y₂ inside about
 * (10⁻⁶, 1 − 10⁻⁶), so the logit is finite. α_l is 0.5 for the FC models and 0.75 for the CNN
 * models. The chain runs in float32 on the backend, as the authors' PyTorch code does.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { RandomStream } from '../random/stream.js';
import { sigmoid } from '../tensor/elementwise.js';
import { runByRows } from '../tensor/threads/pool.js';
import { float32TensorFrom, offsetOf, wasmKernels, wasmKernelsAvailable } from '../tensor/wasm-memory.js';

/** The shift that keeps the logit's argument away from 0 and 1. */
export const LOGIT_SHIFT = 1e-6;
/** Pixel values per channel: 8-bit data divided by 256. */
export const PIXEL_LEVELS = 256;

export interface PreprocessResult {
  /** x′, the model input in logit space, same shape as the pixels. */
  x: tf.Tensor;
  /** The whole chain's log|det ∂x′/∂y₀| per sample, shape [B], nats. */
  logDet: tf.Tensor1D;
}

/**
 * Dequantises raw pixel values (floats in 0…255, shape [B, …]) and maps them to logit space.
 * The uniform noise is B·D fresh draws from `random`, in the pixels' row-major order. Returns x′
 * and the chain's per-sample log-det. O(BD).
 *
 * NOTE: the uniform draws are stored as float32, so a draw within 2⁻²⁵ of 1 rounds to exactly 1;
 * y₂ then stays below 1 thanks to the shift.
 */
export function preprocess(pixels: tf.Tensor, random: RandomStream, logitScale: number): PreprocessResult {
  checkLogitScale(logitScale, 'preprocess');
  if (pixels.rank < 2) {
    throw new Error(`preprocess: expected pixels of shape [B, …], received [${pixels.shape.join(', ')}]`);
  }
  const batch = pixels.shape[0];
  const dimension = pixels.size / batch;
  const constant = dimension * (-Math.log(PIXEL_LEVELS) + Math.log1p(-2 * LOGIT_SHIFT) - Math.log(logitScale));
  return tf.tidy(() => {
    const noise = float32TensorFrom(pixels.shape, (values) => random.fillUniform(values));
    if (wasmKernelsAvailable() && pixels.dtype === 'float32' && dimension % 4 === 0) {
      const { x, logDet } = logitOnWasm(pixels, noise, logitScale, constant, dimension);
      return { x, logDet };
    }
    const dequantised = tf.add(pixels, noise);
    const scaled = tf.div(dequantised, PIXEL_LEVELS);
    const shifted = tf.mul(tf.add(scaled, LOGIT_SHIFT), 1 - 2 * LOGIT_SHIFT);
    const logY = tf.log(shifted);
    const logOneMinusY = tf.log1p(tf.neg(shifted));
    const x = tf.div(tf.sub(logY, logOneMinusY), logitScale);

    const logitTerms = tf.reshape(tf.add(logY, logOneMinusY), [batch, dimension]);
    const logDet = tf.sub(constant, tf.sum(logitTerms, 1)) as tf.Tensor1D;
    return { x, logDet };
  });
}

/** The logit export of kernels/elementwise.wat; tensors are byte offsets into the wasm heap. */
interface LogitKernel {
  logit(pixels: number, noise: number, x: number, rowLog: number, rows: number, rowSize: number, inverseLevels: number, shift: number, oneMinusTwoShift: number, scale: number): void;
}

/**
 * Computes `preprocess` on the wasm backend in one pass of the "logit" kernel, which writes x′
 * and the per-row sums of ln y₂ + ln(1 − y₂). Its logarithms are the kernels' Cephes
 * approximations, within a few float32 ulps of the backend's, and it takes ln(1 − y₂) of the
 * rounded 1 − y₂ where the tensor ops take log1p(−y₂). O(BD).
 */
function logitOnWasm(pixels: tf.Tensor, noise: tf.Tensor, logitScale: number, constant: number, dimension: number): PreprocessResult {
  const caller = 'preprocess';
  const batch = pixels.shape[0];
  return tf.tidy(() => {
    const { backend } = wasmKernels<LogitKernel>('elementwise.wasm', caller);
    const x = backend.makeOutput(pixels.shape, 'float32');
    const rowLog = backend.makeOutput([batch], 'float32');
    const values = [offsetOf(backend, pixels, caller), offsetOf(backend, noise, caller), offsetOf(backend, x, caller)];
    const rowLogOffset = offsetOf(backend, rowLog, caller);
    // Rows split over the kernel threads (threads/pool.ts) from 2¹⁵ values per thread, about 0.1 ms.
    runByRows('elementwise', 'logit', batch, dimension, 32_768, (first, count) => [
      ...values.map((pointer) => pointer + 4 * first * dimension),
      rowLogOffset + 4 * first,
      count,
      dimension,
      1 / PIXEL_LEVELS,
      LOGIT_SHIFT,
      1 - 2 * LOGIT_SHIFT,
      logitScale,
    ]);
    const logDet = tf.sub(constant, tf.engine().makeTensorFromTensorInfo(rowLog)) as tf.Tensor1D;
    return { x: tf.engine().makeTensorFromTensorInfo(x), logDet };
  });
}

/**
 * Inverts the chain up to the dequantised value: y₀ = 256·(σ(α_l·x′)/(1 − 2·shift) − shift),
 * continuous, same shape as x′. O(BD).
 */
export function dequantizedInverse(x: tf.Tensor, logitScale: number): tf.Tensor {
  checkLogitScale(logitScale, 'dequantizedInverse');
  return tf.tidy(() => {
    const shifted = sigmoid(tf.mul(x, logitScale));
    const scaled = tf.sub(tf.div(shifted, 1 - 2 * LOGIT_SHIFT), LOGIT_SHIFT);
    return tf.mul(scaled, PIXEL_LEVELS);
  });
}

/**
 * Maps model-space values back to integer pixel values: clamp(floor(y₀), 0, 255) with y₀ from
 * `dequantizedInverse`, as float32, same shape as x′. O(BD).
 */
export function toPixels(x: tf.Tensor, logitScale: number): tf.Tensor {
  checkLogitScale(logitScale, 'toPixels');
  return tf.tidy(() => tf.clipByValue(tf.floor(dequantizedInverse(x, logitScale)), 0, PIXEL_LEVELS - 1));
}

function checkLogitScale(logitScale: number, component: string): void {
  if (!(Number.isFinite(logitScale) && logitScale > 0)) {
    throw new Error(`${component}: logitScale (α_l) must be a finite positive number, received ${logitScale}`);
  }
}
