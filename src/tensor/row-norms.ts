/**
 * Half squared norms of the rows of a matrix, ½‖h_b‖², as one op: the Gaussian base term of the
 * flows' energies. As tensor ops, tf.sum(tf.square(h), 1) and its gradient take six kernels and
 * four [B, D] temporaries. On the wasm backend this op takes one pass of `kernels/reduce.wat`
 * forward and one for its gradient h_b·dy_b. O(BD) either way.
 */
import * as tf from '@tensorflow/tfjs-core';

import { offsetOf, wasmKernels, wasmKernelsAvailable } from './wasm-memory.js';

interface RowNormKernels {
  half_square_sums(x: number, out: number, rows: number, rowSize: number): void;
  scale_rows(x: number, scales: number, out: number, rows: number, rowSize: number): void;
}

/**
 * Returns ½·Σ_j h[b, j]² for each row b of the 2-D `h`, shape [B]. Differentiable once on the
 * wasm backend, where the gradient is its own kernel and a second derivative raises. Elsewhere,
 * and for a non-float32 h, it is built from tensor ops, which are differentiable to any order.
 */
export function halfSquaredRowNorms(h: tf.Tensor2D): tf.Tensor1D {
  if (!wasmKernelsAvailable() || h.dtype !== 'float32') {
    return tf.tidy(() => tf.mul(tf.sum(tf.square(h), 1), 0.5) as tf.Tensor1D);
  }
  return fusedHalfSquaredRowNorms(h);
}

const fusedHalfSquaredRowNorms = tf.customGrad(((h: tf.Tensor2D, save: tf.GradSaveFunc) => {
  save([h]);
  const [rows, rowSize] = h.shape;
  return {
    value: runOnWasm([rows], (kernels, backend, out) => kernels.half_square_sums(offsetOf(backend, h, 'halfSquaredRowNorms'), out, rows, rowSize)),
    gradFunc: (dy: tf.Tensor1D, saved: tf.Tensor[]) => scaledRows(saved[0] as tf.Tensor2D, dy),
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (h: tf.Tensor2D) => tf.Tensor1D;

/**
 * Returns h_b·s_b for each row b, the gradient of the half squared norms, as an op of h and s
 * whose own gradient raises: a second derivative fails loudly instead of coming out as zero.
 */
const scaledRows = tf.customGrad(((h: tf.Tensor2D, scales: tf.Tensor1D) => {
  const [rows, rowSize] = h.shape;
  return {
    value: runOnWasm(h.shape, (kernels, backend, out) => {
      const caller = 'halfSquaredRowNorms';
      kernels.scale_rows(offsetOf(backend, h, caller), offsetOf(backend, scales, caller), out, rows, rowSize);
    }),
    gradFunc: () => {
      throw new Error('halfSquaredRowNorms: the wasm kernel is differentiable once; build ½‖h‖² from tensor ops for higher derivatives');
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (h: tf.Tensor2D, scales: tf.Tensor1D) => tf.Tensor2D;

function runOnWasm(
  shape: number[],
  run: (kernels: RowNormKernels, backend: ReturnType<typeof wasmKernels>['backend'], out: number) => void,
): tf.Tensor {
  const { backend, kernels } = wasmKernels<RowNormKernels>('reduce.wasm', 'halfSquaredRowNorms');
  const out = backend.makeOutput(shape, 'float32');
  run(kernels, backend, offsetOf(backend, out, 'halfSquaredRowNorms'));
  return tf.engine().makeTensorFromTensorInfo(out);
}
