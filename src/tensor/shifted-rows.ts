/**
 * The element-wise steps around a matrix product shared by shifted rows. For constant rows R and
 * S [n, D], [R; R + S; R − S]·Wᵀ = [C; C + Δ; C − Δ] with [C; Δ] = [R; S]·Wᵀ, so a linear layer
 * multiplies 2n rows instead of 3n (`FcFlow.shiftedEnergies`). On the wasm backend each step is
 * one pass of `kernels/shifted-rows.wat`; on the others it runs as tensor ops. Both cost O(nD).
 */
import * as tf from '@tensorflow/tfjs-core';

import { offsetOf, wasmKernels, wasmKernelsAvailable } from './wasm-memory.js';

interface ShiftedRowKernels {
  expand(both: number, out: number, count: number): void;
  combine(gradient: number, out: number, count: number): void;
}

/** Returns [C; C + Δ; C − Δ], shape [3n, D], from both = [C; Δ], shape [2n, D]. */
export function expandShiftedRows(both: tf.Tensor2D): tf.Tensor2D {
  return mapBlocks(both, 2, 3, 'expandShiftedRows', 'expand', ([centre, difference]) => [
    centre!,
    tf.add(centre!, difference!),
    tf.sub(centre!, difference!),
  ]);
}

/**
 * Returns [G₀ + G₊ + G₋; G₊ − G₋], shape [2n, D], from gradient = [G₀; G₊; G₋], shape [3n, D]:
 * the gradient on [C; Δ] of `expandShiftedRows`'s output.
 */
export function combineShiftedGradient(gradient: tf.Tensor2D): tf.Tensor2D {
  return mapBlocks(gradient, 3, 2, 'combineShiftedGradient', 'combine', ([centre, plus, minus]) => [
    tf.add(tf.add(centre!, plus!), minus!),
    tf.sub(plus!, minus!),
  ]);
}

/**
 * Maps `input`, `inputBlocks` stacked blocks of equal height, to `outputBlocks` blocks of that
 * height: with the wasm kernel `kernel` for float32 tensors on wasm, with `composed` elsewhere.
 */
function mapBlocks(
  input: tf.Tensor2D,
  inputBlocks: number,
  outputBlocks: number,
  caller: string,
  kernel: keyof ShiftedRowKernels,
  composed: (blocks: tf.Tensor[]) => tf.Tensor[],
): tf.Tensor2D {
  if (input.rank !== 2 || input.shape[0] % inputBlocks !== 0) {
    throw new Error(`${caller}: invalid shape [${input.shape.join(', ')}]; pass a matrix of ${inputBlocks} stacked blocks of equal height`);
  }
  const [height, columns] = [input.shape[0] / inputBlocks, input.shape[1]];
  if (!wasmKernelsAvailable() || input.dtype !== 'float32') {
    return tf.tidy(() => tf.concat(composed(tf.split(input, inputBlocks, 0)), 0) as tf.Tensor2D);
  }
  const { backend, kernels } = wasmKernels<ShiftedRowKernels>('shifted-rows.wasm', caller);
  const out = backend.makeOutput([outputBlocks * height, columns], 'float32');
  kernels[kernel](offsetOf(backend, input, caller), offsetOf(backend, out, caller), height * columns);
  return tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor2D;
}
