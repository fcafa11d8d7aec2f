/**
 * The Toeplitz matrix of a stride-1 "same" convolution, and convolutions computed as products
 * with it.
 *
 * A C→C convolution with a K×K filter on [H, W, C] images is the linear map vec(y) = T·vec(x)
 * with D = H·W·C, whose D×D matrix T has every entry zero or one filter value. T is built from
 * the filter by an index map (O(D²) in JavaScript) and its gradient scatter-adds back onto the
 * filter. On the wasm backend, XNNPACK ran the batch-100 7×7 "same" convolutions of the MNIST
 * CNN at 36–88 ms each on the project's 2-core machine (under load). The product
 * [100×784]·[784×784] took a few ms on OpenBLAS. So when OpenBLAS computes the products and D is
 * small, `SameConvolution` multiplies by Tᵀ instead of convolving.
 */
import * as tf from '@tensorflow/tfjs-core';

import { conv2dSame, conv2dSameTranspose } from './conv.js';
import { matMul } from './matmul.js';
import { wasmBlasKernelInstalled } from './wasm-blas-kernel.js';

/**
 * Largest D for which `SameConvolution` multiplies by Tᵀ. The product costs 2BD² operations
 * against 2BDK²C for the convolution, so the dense form pays only while D is small; at D = 3072
 * (CIFAR-10) it would need 1.9 GFLOP per batch of 100 and a 38 MB index map.
 */
export const DENSE_CONVOLUTION_MAX_DIMENSION = 1024;

const TOEPLITZ_INDEX_CACHE = new Map<string, Int32Array>();

/**
 * Returns, for each entry (k, m) of Tᵀ (row-major, D×D with D = H·W·C), the flat index of the
 * filter value [K, K, C, C] it equals, or −1 where Tᵀ is zero. Row k is the basis image at
 * (h₀, w₀, c₀) and column m the output at (h, w, c), both in NHWC order. The "same" convolution
 * reads input (h + i − p, w + j − p) with filter tap (i, j), p = (K − 1)/2, so the entry is tap
 * (h₀ − h + p, w₀ − w + p) from input channel c₀ to output channel c. One map per shape is cached:
 * 4D² bytes (2.4 MB at D = 784, 38 MB at D = 3072).
 */
export function toeplitzIndex(height: number, width: number, channels: number, kernel: number): Int32Array {
  const key = `${height}x${width}x${channels}/${kernel}`;
  const cached = TOEPLITZ_INDEX_CACHE.get(key);
  if (cached !== undefined) return cached;

  const dimension = height * width * channels;
  const pad = (kernel - 1) / 2;
  const index = new Int32Array(dimension * dimension).fill(-1);
  for (let h0 = 0; h0 < height; h0++) {
    for (let w0 = 0; w0 < width; w0++) {
      for (let c0 = 0; c0 < channels; c0++) {
        const row = ((h0 * width + w0) * channels + c0) * dimension;
        // Only outputs within the kernel's reach of (h0, w0) see the basis image.
        for (let h = Math.max(0, h0 - pad); h <= Math.min(height - 1, h0 + pad); h++) {
          for (let w = Math.max(0, w0 - pad); w <= Math.min(width - 1, w0 + pad); w++) {
            const tap = ((h0 - h + pad) * kernel + (w0 - w + pad)) * channels + c0;
            for (let c = 0; c < channels; c++) {
              index[row + (h * width + w) * channels + c] = tap * channels + c;
            }
          }
        }
      }
    }
  }
  TOEPLITZ_INDEX_CACHE.set(key, index);
  return index;
}


/**
 * Returns Tᵀ [D, D] for the filter [K, K, C, C] on images of `inputShape` [H, W, C]: row k is
 * conv(e_k) = T·e_k, in NHWC order. O(D²) in JavaScript plus one read of the filter.
 *
 * NOTE: differentiable once in the filter. The gradient reads ∂L/∂Tᵀ as values, which is all
 * the log-det and the θ-gradient of a loss need; no objective differentiates it again.
 */
export function transposedToeplitz(filter: tf.Tensor4D, inputShape: readonly [number, number, number]): tf.Tensor2D {
  const [height, width, channels] = inputShape;
  const kernel = filter.shape[0];
  if (filter.shape[1] !== kernel || filter.shape[2] !== channels || filter.shape[3] !== channels) {
    throw new Error(
      `transposedToeplitz: expected a filter [K, K, ${channels}, ${channels}] for images [${inputShape.join(', ')}], ` +
        `received [${filter.shape.join(', ')}].`,
    );
  }
  const index = toeplitzIndex(height, width, channels, kernel);
  const dimension = height * width * channels;
  const gatherFromFilter = tf.customGrad(((weights: tf.Tensor4D) => {
    const values = weights.dataSync();
    const entries = new Float32Array(index.length);
    for (let position = 0; position < index.length; position++) {
      const source = index[position];
      if (source >= 0) entries[position] = values[source];
    }
    return {
      value: tf.tensor2d(entries, [dimension, dimension]),
      gradFunc: (dy: tf.Tensor2D) => {
        const upstream = dy.dataSync();
        const gradient = new Float32Array(weights.size);
        for (let position = 0; position < index.length; position++) {
          const target = index[position];
          if (target >= 0) gradient[target] += upstream[position];
        }
        return tf.tensor4d(gradient, weights.shape);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (weights: tf.Tensor4D) => tf.Tensor2D;
  return gatherFromFilter(filter);
}

/**
 * One filter's "same" convolution and its adjoint, as products with Tᵀ when OpenBLAS computes
 * the wasm backend's products and D ≤ `DENSE_CONVOLUTION_MAX_DIMENSION`, and as convolutions
 * (`conv2dSame`, `conv2dSameTranspose`) otherwise. Tᵀ is built on first use and shared by every
 * later call, so create one instance per filter and pass, inside one `tf.tidy`.
 *
 * Both forms are differentiable to any order in the images. In the filter the convolutions are
 * too, the products once (see `transposedToeplitz`).
 */
export class SameConvolution {
  private readonly dimension: number;
  /** True when this instance multiplies by Tᵀ, false when it convolves. */
  readonly dense: boolean;
  private operator: tf.Tensor2D | null = null;

  constructor(
    private readonly filter: tf.Tensor4D,
    private readonly inputShape: readonly [number, number, number],
  ) {
    this.dimension = inputShape[0] * inputShape[1] * inputShape[2];
    this.dense = wasmBlasKernelInstalled() && tf.getBackend() === 'wasm' && this.dimension <= DENSE_CONVOLUTION_MAX_DIMENSION;
  }

  /** Returns conv(x, W) for x [B, H, W, C], without bias. O(B·D²) dense, O(B·D·K²·C) otherwise. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    if (!this.dense) return conv2dSame(x, this.filter);
    const rows = tf.reshape(x, [x.shape[0], this.dimension]);
    return tf.reshape(matMul(rows, this.transposedOperator()), x.shape) as tf.Tensor4D;
  }

  /** Returns the adjoint convolution of dy [B, H, W, C] (the back-propagation to the input). Same cost as `apply`. */
  applyTranspose(dy: tf.Tensor4D): tf.Tensor4D {
    if (!this.dense) return conv2dSameTranspose(dy, this.filter);
    const rows = tf.reshape(dy, [dy.shape[0], this.dimension]);
    return tf.reshape(matMul(rows, this.transposedOperator(), false, true), dy.shape) as tf.Tensor4D;
  }

  private transposedOperator(): tf.Tensor2D {
    this.operator ??= transposedToeplitz(this.filter, this.inputShape);
    return this.operator;
  }
}
