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
  const rows = blockRows(both, 2, 'expandShiftedRows');
  const [, columns] = both.shape;
  if (wasmKernelsAvailable() && both.dtype === 'float32') {
    return runOnWasm(both, [3 * rows, columns], (kernels, input, out) => kernels.expand(input, out, rows * columns));
  }
  return tf.tidy(() => {
    const [centre, difference] = tf.split(both, 2, 0);
    return tf.concat([centre, tf.add(centre, difference), tf.sub(centre, difference)], 0) as tf.Tensor2D;
  });
}

/**
 * Returns [G₀ + G₊ + G₋; G₊ − G₋], shape [2n, D], from gradient = [G₀; G₊; G₋], shape [3n, D]:
 * the gradient on [C; Δ] of `expandShiftedRows`'s output.
 */
export function combineShiftedGradient(gradient: tf.Tensor2D): tf.Tensor2D {
  const rows = blockRows(gradient, 3, 'combineShiftedGradient');
  const [, columns] = gradient.shape;
  if (wasmKernelsAvailable() && gradient.dtype === 'float32') {
    return runOnWasm(gradient, [2 * rows, columns], (kernels, input, out) => kernels.combine(input, out, rows * columns));
  }
  return tf.tidy(() => {
    const [centre, plus, minus] = tf.split(gradient, 3, 0);
    return tf.concat([tf.add(tf.add(centre, plus), minus), tf.sub(plus, minus)], 0) as tf.Tensor2D;
  });
}

/** Returns the rows of one block of `tensor`, which stacks `blocks` blocks of equal height. */
function blockRows(tensor: tf.Tensor2D, blocks: number, caller: string): number {
  if (tensor.rank !== 2 || tensor.shape[0] % blocks !== 0) {
    throw new Error(`${caller}: invalid shape [${tensor.shape.join(', ')}]; pass a matrix of ${blocks} stacked blocks of equal height`);
  }
  return tensor.shape[0] / blocks;
}

function runOnWasm(
  input: tf.Tensor2D,
  shape: [number, number],
  run: (kernels: ShiftedRowKernels, input: number, out: number) => void,
): tf.Tensor2D {
  const caller = 'shifted rows';
  const { backend, kernels } = wasmKernels<ShiftedRowKernels>('shifted-rows.wasm', caller);
  const out = backend.makeOutput(shape, 'float32');
  run(kernels, offsetOf(backend, input, caller), offsetOf(backend, out, caller));
  return tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor2D;
}
