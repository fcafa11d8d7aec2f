/**
 * The Toeplitz matrix of a stride-1 "same" convolution, and convolutions computed as products
 * with it.
 *
 * A C→C convolution with a K×K filter on [H, W, C] images is the linear map vec(y) = T·vec(x)
 * with D = H·W·C, whose D×D matrix T has every entry zero or one filter value. T is built from
 * the filter's list of nonzero entries (D·K²·C of them) and its gradient scatter-adds back onto
 * the filter. On the wasm backend, XNNPACK ran the batch-100 7×7 "same" convolutions of the MNIST
 * CNN at 36–88 ms each on the project's 2-core machine (under load). The product
 * [100×784]·[784×784] took a few ms on OpenBLAS. So when OpenBLAS computes the products and D is
 * small, `SameConvolution` multiplies by Tᵀ instead of convolving.
 */
import * as tf from '@tensorflow/tfjs-core';

import { conv2dSame, conv2dSameTranspose } from './conv.js';
import { logAbsDet } from './linalg.js';
import { matMul, sumOfTransposedProducts } from './matmul.js';
import { wasmBlasKernelInstalled } from './wasm-blas-kernel.js';
import { offsetOf, wasmKernels, wasmKernelsAvailable } from './wasm-memory.js';

/**
 * Largest D for which `SameConvolution` multiplies by Tᵀ. The product costs 2BD² operations
 * against 2BDK²C for the convolution, so the dense form pays only while D is small; at D = 3072
 * (CIFAR-10) it would need 1.9 GFLOP per batch of 100 and a 38 MB matrix.
 */
export const DENSE_CONVOLUTION_MAX_DIMENSION = 1024;

/** The nonzero entries of Tᵀ for one shape: where each sits in Tᵀ and which filter value it equals. */
interface ToeplitzEntries {
  /** Flat row-major index into Tᵀ [D, D] of each nonzero entry. */
  positions: Int32Array;
  /** Flat index into the filter [K, K, C, C] of the value at each position. */
  sources: Int32Array;
}

const TOEPLITZ_ENTRIES_CACHE = new Map<string, ToeplitzEntries>();

/**
 * Returns the nonzero entries of Tᵀ (row-major, D×D with D = H·W·C) for a K×K filter [K, K, C, C].
 * Row k is the basis image at (h₀, w₀, c₀) and column m the output at (h, w, c), both in NHWC
 * order. The "same" convolution reads input (h + i − p, w + j − p) with filter tap (i, j),
 * p = (K − 1)/2, so the entry is tap (h₀ − h + p, w₀ − w + p) from input channel c₀ to output
 * channel c. At most D·K²·C entries (38,416 for the 28×28×1 MNIST layers, 614,656 at 7×7×16),
 * each stored as two int32 values; one list per shape is cached.
 */
export function toeplitzEntries(height: number, width: number, channels: number, kernel: number): ToeplitzEntries {
  const key = `${height}x${width}x${channels}/${kernel}`;
  const cached = TOEPLITZ_ENTRIES_CACHE.get(key);
  if (cached !== undefined) return cached;

  const dimension = height * width * channels;
  const pad = (kernel - 1) / 2;
  const positions: number[] = [];
  const sources: number[] = [];
  for (let h0 = 0; h0 < height; h0++) {
    for (let w0 = 0; w0 < width; w0++) {
      for (let c0 = 0; c0 < channels; c0++) {
        const row = ((h0 * width + w0) * channels + c0) * dimension;
        // Only outputs within the kernel's reach of (h0, w0) see the basis image.
        for (let h = Math.max(0, h0 - pad); h <= Math.min(height - 1, h0 + pad); h++) {
          for (let w = Math.max(0, w0 - pad); w <= Math.min(width - 1, w0 + pad); w++) {
            const tap = ((h0 - h + pad) * kernel + (w0 - w + pad)) * channels + c0;
            for (let c = 0; c < channels; c++) {
              positions.push(row + (h * width + w) * channels + c);
              sources.push(tap * channels + c);
            }
          }
        }
      }
    }
  }
  const entries = { positions: Int32Array.from(positions), sources: Int32Array.from(sources) };
  TOEPLITZ_ENTRIES_CACHE.set(key, entries);
  return entries;
}

/**
 * Returns Tᵀ [D, D] for the filter [K, K, C, C] on images of `inputShape` [H, W, C]: row k is
 * conv(e_k) = T·e_k, in NHWC order. O(D²) to zero the matrix plus one write per nonzero entry
 * (D·K²·C); on the wasm backend a WebAssembly kernel writes them into the tensor's memory, a
 * run of C values at a time.
 *
 * NOTE: differentiable once in the filter. The gradient reads ∂L/∂Tᵀ as values, which is all
 * the log-det and the θ-gradient of a loss need; no objective differentiates it again.
 */
export function transposedToeplitz(filter: tf.Tensor4D, inputShape: readonly [number, number, number]): tf.Tensor2D {
  const [height, width, channels] = inputShape;
  const kernel = filter.shape[0];
  if (!inputShape.every((size) => Number.isInteger(size) && size >= 1)) {
    throw new Error(`transposedToeplitz: image sizes must be positive integers, received [${inputShape.join(', ')}].`);
  }
  if (kernel % 2 !== 1) {
    throw new Error(`transposedToeplitz: a "same" convolution needs an odd kernel size, received ${kernel}; use K = ${kernel + 1}.`);
  }
  if (filter.shape[1] !== kernel || filter.shape[2] !== channels || filter.shape[3] !== channels) {
    throw new Error(
      `transposedToeplitz: expected a filter [K, K, ${channels}, ${channels}] for images [${inputShape.join(', ')}], ` +
        `received [${filter.shape.join(', ')}].`,
    );
  }
  const dimension = height * width * channels;
  if (wasmKernelsAvailable() && filter.dtype === 'float32') return toeplitzOnWasm(filter, height, width, channels, kernel);

  const { positions, sources } = toeplitzEntries(height, width, channels, kernel);
  const gatherFromFilter = tf.customGrad(((weights: tf.Tensor4D) => {
    const values = weights.dataSync();
    const entries = new Float32Array(dimension * dimension);
    for (let j = 0; j < positions.length; j++) entries[positions[j]] = values[sources[j]];
    return {
      value: tf.tensor2d(entries, [dimension, dimension]),
      gradFunc: (dy: tf.Tensor2D) => {
        const upstream = dy.dataSync();
        const gradient = new Float32Array(weights.size);
        for (let j = 0; j < positions.length; j++) gradient[sources[j]] += upstream[positions[j]];
        return tf.tensor4d(gradient, weights.shape);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (weights: tf.Tensor4D) => tf.Tensor2D;
  return gatherFromFilter(filter);
}

/** The functions of kernels/toeplitz.wat; pointers are byte offsets into the wasm heap. */
interface ToeplitzKernels {
  fill(filter: number, out: number, height: number, width: number, channels: number, kernel: number): void;
  gradient(upstream: number, gradient: number, height: number, width: number, channels: number, kernel: number): void;
}

/**
 * Computes `transposedToeplitz` on the wasm backend. WebAssembly kernels write Tᵀ and the filter
 * gradient in the backend's memory, a run of C values at a time. They visit the entries in the
 * order of `toeplitzEntries`, so both results equal the list-based path bit for bit.
 */
function toeplitzOnWasm(filter: tf.Tensor4D, height: number, width: number, channels: number, kernel: number): tf.Tensor2D {
  const caller = 'transposedToeplitz';
  const dimension = height * width * channels;
  const gatherFromFilter = tf.customGrad(((weights: tf.Tensor4D) => {
    const { backend, kernels } = wasmKernels<ToeplitzKernels>('toeplitz.wasm', caller);
    const out = backend.makeOutput([dimension, dimension], 'float32');
    kernels.fill(offsetOf(backend, weights, caller), offsetOf(backend, out, caller), height, width, channels, kernel);
    return {
      value: tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor2D) => {
        const gradient = backend.makeOutput(weights.shape, 'float32');
        kernels.gradient(offsetOf(backend, dy, caller), offsetOf(backend, gradient, caller), height, width, channels, kernel);
        return tf.engine().makeTensorFromTensorInfo(gradient) as tf.Tensor4D;
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
  /** Whether the products share one gradient of Tᵀ (see the constructor). */
  private readonly pairGradients: boolean;
  /** Whether the first `apply`, whose gradient sums the others', has been recorded. */
  private anchorRecorded = false;
  /** The terms aᵀ·b of ∂L/∂Tᵀ that later products left for the first `apply`'s gradient. */
  private pendingTerms: Array<{ a: tf.Tensor2D; b: tf.Tensor2D }> = [];

  /**
   * With `pairGradients` (dense form only), the first `apply` and the `applyTranspose` calls give
   * Tᵀ a single gradient: each `applyTranspose` leaves its term of ∂L/∂Tᵀ to the first `apply`,
   * whose gradient runs last in reverse mode (it was recorded first) and adds all terms into one
   * D×D output with OpenBLAS (β = 1). Autodiff would instead add one D×D gradient per product:
   * the MNIST CNN's six D = 784 additions took about 0.6 ms each in a profiled DSM step. Later `apply` calls
   * keep their own gradient. Use it for one backward pass of an energy's derivatives. The first
   * `apply` must lie on the path to the loss. The rows of every `applyTranspose` must depend on
   * the parameters, as the back-propagated gradients of an energy do: tfjs skips the gradient of
   * an op none of whose inputs depends on them. The terms are not differentiable.
   */
  constructor(
    private readonly filter: tf.Tensor4D,
    private readonly inputShape: readonly [number, number, number],
    options: { pairGradients?: boolean } = {},
  ) {
    this.dimension = inputShape[0] * inputShape[1] * inputShape[2];
    this.dense = wasmBlasKernelInstalled() && tf.getBackend() === 'wasm' && this.dimension <= DENSE_CONVOLUTION_MAX_DIMENSION;
    this.pairGradients = this.dense && options.pairGradients === true;
  }

  /**
   * Returns conv(x, W) for x [B, H, W, C], without bias. O(B·D²) dense, O(B·D·K²·C) otherwise.
   * With `constantInput`, x is taken as a constant: the result is differentiable in the filter
   * only, and the first `apply` of a paired instance skips the gradient in x (2B·D² operations).
   */
  apply(x: tf.Tensor4D, options: { constantInput?: boolean } = {}): tf.Tensor4D {
    if (!this.dense) return conv2dSame(x, this.filter);
    const rows = tf.reshape(x, [x.shape[0], this.dimension]) as tf.Tensor2D;
    const operator = this.transposedOperator();
    if (!this.pairGradients || this.anchorRecorded) return tf.reshape(matMul(rows, operator), x.shape) as tf.Tensor4D;
    this.anchorRecorded = true;
    return tf.reshape(this.anchorProduct(rows, operator, options.constantInput === true), x.shape) as tf.Tensor4D;
  }

  /** Returns the adjoint convolution of dy [B, H, W, C] (the back-propagation to the input). Same cost as `apply`. */
  applyTranspose(dy: tf.Tensor4D): tf.Tensor4D {
    if (!this.dense) return conv2dSameTranspose(dy, this.filter);
    const rows = tf.reshape(dy, [dy.shape[0], this.dimension]) as tf.Tensor2D;
    if (!this.pairGradients || !this.anchorRecorded) {
      return tf.reshape(matMul(rows, this.transposedOperator(), false, true), dy.shape) as tf.Tensor4D;
    }
    return tf.reshape(this.leavingProduct(rows), dy.shape) as tf.Tensor4D;
  }

  /**
   * Returns R·Tᵀ with Tᵀ as an input. Its gradient in Tᵀ is Rᵀ·dy plus every pending term, in one
   * OpenBLAS output. With `constantRows`, R is not an input, so no gradient in R is computed.
   */
  private anchorProduct(rows: tf.Tensor2D, operator: tf.Tensor2D, constantRows: boolean): tf.Tensor2D {
    const operatorGradient = (dy: tf.Tensor2D, savedRows: tf.Tensor2D): tf.Tensor2D => {
      const terms = [{ a: savedRows, b: dy }, ...this.pendingTerms];
      this.pendingTerms = [];
      return sumOfTransposedProducts(terms);
    };
    if (constantRows) {
      const product = tf.customGrad(((weight: tf.Tensor2D, save: tf.GradSaveFunc) => {
        save([rows]);
        return {
          value: matMul(rows, weight),
          gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => operatorGradient(dy, saved[0] as tf.Tensor2D),
        };
      }) as unknown as Parameters<typeof tf.customGrad>[0]) as (weight: tf.Tensor2D) => tf.Tensor2D;
      return product(operator);
    }
    const product = tf.customGrad(((input: tf.Tensor2D, weight: tf.Tensor2D, save: tf.GradSaveFunc) => {
      save([input, weight]);
      return {
        value: matMul(input, weight),
        gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
          const [savedInput, savedWeight] = saved as [tf.Tensor2D, tf.Tensor2D];
          return [matMul(dy, savedWeight, false, true), operatorGradient(dy, savedInput)];
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]) as (input: tf.Tensor2D, weight: tf.Tensor2D) => tf.Tensor2D;
    return product(rows, operator);
  }

  /**
   * Returns S·T with Tᵀ held as a constant. Its gradient returns dz·Tᵀ for S and leaves the term
   * dzᵀ·S of ∂L/∂Tᵀ for the first apply.
   */
  private leavingProduct(rows: tf.Tensor2D): tf.Tensor2D {
    const operator = this.transposedOperator();
    const product = tf.customGrad(((input: tf.Tensor2D, save: tf.GradSaveFunc) => {
      // Tᵀ is saved, not read from the closure: the caller's tidy disposes it before the gradient runs.
      save([input, operator]);
      return {
        value: matMul(input, operator, false, true),
        gradFunc: (dz: tf.Tensor2D, saved: tf.Tensor[]) => {
          const [savedInput, savedOperator] = saved as [tf.Tensor2D, tf.Tensor2D];
          this.pendingTerms.push({ a: dz, b: savedInput });
          return matMul(dz, savedOperator);
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]) as (input: tf.Tensor2D) => tf.Tensor2D;
    return product(rows);
  }

  /**
   * Returns log|det T| in nats, differentiable once in the filter. It reuses Tᵀ when this
   * instance multiplies by it (log|det Tᵀ| = log|det T|), and builds it otherwise. O(D³).
   */
  logAbsDet(): tf.Scalar {
    return logAbsDet(this.transposedOperator());
  }

  /**
   * Returns Tᵀ, whose log|det| `logAbsDet` computes, for a caller that sums the log-dets of
   * several convolutions with `sumLogAbsDet`. The same tensor this instance multiplies by, when
   * it does; owned by this instance's tidy scope. O(D²) the first time, O(1) after.
   */
  logAbsDetMatrix(): tf.Tensor2D {
    return this.transposedOperator();
  }

  private transposedOperator(): tf.Tensor2D {
    this.operator ??= transposedToeplitz(this.filter, this.inputShape);
    return this.operator;
  }
}
