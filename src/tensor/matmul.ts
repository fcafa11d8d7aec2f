/**
 * Matrix product that is differentiable to any order and avoids slow transposed kernels.
 *
 * The wasm backend of tfjs 4.22 computes `tf.matMul` with `transposeA` or `transposeB` on a
 * slow path, about 10 times slower than the plain product, and tfjs's built-in MatMul gradient
 * uses those flags on every backward pass. This module only calls the plain product, with
 * explicit transposes, in the forward pass and in its gradient, which is built with
 * `tf.customGrad` from this same function, so every further derivative takes the fast path too.
 *
 * The wasm backend (XNNPACK) also repacks the right operand of every product whose right tensor
 * it has not multiplied before, and a weight matrix on the right streams through the cache on
 * every row block. So op(a)·op(b) is computed either directly or as (op(b)ᵀ·op(a)ᵀ)ᵀ, whichever
 * moves fewer elements through transposes and repacking. For x·Wᵀ with x [100×3072] and W
 * [3072×3072] that is W·xᵀ, transposed back: 69 ms instead of 277 ms for transposing W (and
 * 816 ms with `transposeB`), measured on one core of the project machine.
 *
 * When OpenBLAS computes the wasm backend's products (`wasm-blas-kernel.ts`), transposes cost
 * nothing, so the product goes straight to `tf.matMul` with its flags and tfjs's own gradient.
 */
import * as tf from '@tensorflow/tfjs-core';

import './register-gradients.js';
import { sumOfProducts, wasmBlasKernelInstalled } from './wasm-blas-kernel.js';
import { offsetOf, wasmKernels } from './wasm-memory.js';

/** a·b for untransposed 2-D operands, with a gradient defined through `matMul`. */
const plainMatMul = tf.customGrad(((a: tf.Tensor2D, b: tf.Tensor2D, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
      const [savedA, savedB] = saved as [tf.Tensor2D, tf.Tensor2D];
      // d(a·b) = da·b + a·db, so ∂L/∂a = dy·bᵀ and ∂L/∂b = aᵀ·dy.
      return [matMul(dy, savedB, false, true), matMul(savedA, dy, true, false)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * Returns whether (op(b)ᵀ·op(a)ᵀ)ᵀ moves fewer elements than op(a)·op(b), counting each
 * explicit transpose and the repacking of the right operand as one pass over its elements.
 */
function prefersSwappedOperands(m: number, k: number, n: number, transposeA: boolean, transposeB: boolean): boolean {
  const direct = (transposeA ? m * k : 0) + (transposeB ? k * n : 0) + k * n;
  const swapped = (transposeB ? 0 : k * n) + (transposeA ? 0 : m * k) + m * k + m * n;
  return swapped < direct;
}

/**
 * Computes op(a)·op(b) for 2-D tensors, where op transposes when the flag is set.
 *
 * The result has shape [m, n] for op(a) of shape [m, k] and op(b) of shape [k, n]. Cost: 2mkn
 * floating-point operations plus at most three explicit transposes (O(mk + kn + mn)); each
 * derivative costs the same again.
 */
export function matMul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2) {
    throw new Error(`matMul: both operands must be 2-D, received shapes [${a.shape}] and [${b.shape}]; reshape them first.`);
  }
  const a2 = a as tf.Tensor2D;
  const b2 = b as tf.Tensor2D;
  const m = transposeA ? a2.shape[1] : a2.shape[0];
  const innerA = transposeA ? a2.shape[0] : a2.shape[1];
  const innerB = transposeB ? b2.shape[1] : b2.shape[0];
  const n = transposeB ? b2.shape[0] : b2.shape[1];
  if (innerA !== innerB) {
    throw new Error(
      `matMul: inner dimensions differ: a is [${a.shape}] with transposeA=${transposeA} and ` +
        `b is [${b.shape}] with transposeB=${transposeB}, giving ${innerA} and ${innerB}.`,
    );
  }
  if (wasmBlasKernelInstalled() && tf.getBackend() === 'wasm') return tf.matMul(a2, b2, transposeA, transposeB);
  return tf.tidy(() => {
    if (prefersSwappedOperands(m, innerA, n, transposeA, transposeB)) {
      const left = transposeB ? b2 : tf.transpose(b2);
      const right = transposeA ? a2 : tf.transpose(a2);
      return tf.transpose(plainMatMul(left, right));
    }
    const left = transposeA ? tf.transpose(a2) : a2;
    const right = transposeB ? tf.transpose(b2) : b2;
    return plainMatMul(left, right);
  });
}

/**
 * Returns Σ_i a_iᵀ·b_i for 2-D tensors a_i [n_i, m] and b_i [n_i, k], shape [m, k]: one OpenBLAS
 * output with β = 1 for every further term (`sumOfProducts`), or else the single product
 * [a_1; a_2; …]ᵀ·[b_1; b_2; …]. Either way no m×k tensor is added. Not differentiable when
 * OpenBLAS computes it. 2·(Σ n_i)·m·k operations.
 */
export function sumOfTransposedProducts(terms: ReadonlyArray<{ a: tf.Tensor2D; b: tf.Tensor2D }>): tf.Tensor2D {
  const summed = sumOfProducts(terms.map(({ a, b }) => ({ a, b, transposeA: true, transposeB: false })));
  if (summed !== null) return summed;
  if (terms.length === 1) return matMul(terms[0].a, terms[0].b, true, false);
  return matMul(tf.concat(terms.map((term) => term.a), 0), tf.concat(terms.map((term) => term.b), 0), true, false);
}

/** The export of kernels/broadcast.wat; tensors are byte offsets into the wasm heap. */
interface BroadcastKernels {
  add_periodic(x: number, pattern: number, out: number, count: number, period: number): void;
}

/**
 * Returns x + b for float32 x [..., C] and b [C] on the wasm backend, in one SIMD pass of
 * `kernels/broadcast.wat`. The backend's own broadcast add computes an index per element: 1.41 ms
 * for [100, 32, 32, 3] + [3] on a 2-vCPU AMD EPYC, against 0.08 ms here. O(N·C) for N rows of
 * C values, plus a tile of b to lcm(C, 4) values.
 */
function addPeriodic(x: tf.Tensor, bias: tf.Tensor1D): tf.Tensor {
  const caller = 'addBias';
  const channels = bias.shape[0];
  const period = channels % 4 === 0 ? channels : (channels * 4) / greatestCommonDivisor(channels, 4);
  return tf.tidy(() => {
    const pattern = period === channels ? bias : tf.tile(bias, [period / channels]);
    const { backend, kernels } = wasmKernels<BroadcastKernels>('broadcast.wasm', caller);
    // The inputs' offsets first: they throw for a disposed input before any output is allocated.
    const [input, repeated] = [offsetOf(backend, x, caller), offsetOf(backend, pattern, caller)];
    const out = backend.makeOutput(x.shape, 'float32');
    kernels.add_periodic(input, repeated, offsetOf(backend, out, caller), x.size, period);
    return tf.engine().makeTensorFromTensorInfo(out);
  });
}

function greatestCommonDivisor(a: number, b: number): number {
  return b === 0 ? a : greatestCommonDivisor(b, a % b);
}

/**
 * Returns x + b for x [..., C] and a bias b [C]. When OpenBLAS computes the wasm backend's
 * products, the bias gradient is the column sums of dy [N, C] as the product [1×N]·[N×C], and the
 * result is then differentiable once. The wasm backend's own sum over leading axes goes through
 * a transpose (about 0.4 ms for [300, 784] in a profile), and x + b itself is `addPeriodic` for
 * float32 operands and C > 1. Otherwise it is `tf.add`, differentiable to any order. O(N·C).
 */
export function addBias(x: tf.Tensor, bias: tf.Tensor1D): tf.Tensor {
  const channels = bias.shape[0];
  if (x.shape[x.rank - 1] !== channels) {
    throw new Error(`addBias: the last axis of x [${x.shape}] must have the bias's ${channels} entries; pass a bias per channel.`);
  }
  const onBlas = wasmBlasKernelInstalled() && tf.getBackend() === 'wasm';
  const rows = x.size === 0 ? 0 : x.size / channels;
  // With no rows, tfjs 4.22's wasm backend leaves the bias gradient of tf.add unwritten (and the
  // product below would have k = 0), so that case takes the custom gradient on every backend.
  if (!onBlas && rows > 0) return tf.add(x, bias);
  const withBias = tf.customGrad(((input: tf.Tensor, b: tf.Tensor1D) => ({
    // For one channel the backend's own add, a scalar broadcast, is faster: 0.02 against 0.04 ms
    // for [100, 28, 28, 1].
    value: onBlas && channels > 1 && input.dtype === 'float32' && b.dtype === 'float32' ? addPeriodic(input, b) : tf.add(input, b),
    gradFunc: (dy: tf.Tensor) => {
      if (rows === 0) return [dy, tf.zeros([channels])];
      const sums = tf.matMul(tf.ones([1, rows]), tf.reshape(dy, [rows, channels]));
      return [dy, tf.reshape(sums, [channels])];
    },
  })) as unknown as Parameters<typeof tf.customGrad>[0]) as (input: tf.Tensor, b: tf.Tensor1D) => tf.Tensor;
  return withBias(x, bias);
}
