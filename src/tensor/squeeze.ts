/**
 * The squeeze permutation of `SqueezeLayer` (PyTorch's channel order, see src/layers/squeeze.ts)
 * as single passes of `kernels/squeeze.wat` over the wasm backend's memory:
 *   squeezed[b, i, j, 4c + 2·dh + dw] = image[b, 2i + dh, 2j + dw, c].
 * Each direction's gradient is the other direction, so the ops are differentiable to any order,
 * as the reshape-transpose-reshape they replace is. O(B·D) memory moves, no arithmetic.
 */
import * as tf from '@tensorflow/tfjs-core';

import { offsetOf, wasmKernels, wasmKernelsAvailable } from './wasm-memory.js';

/** The exports of squeeze.wasm; tensors are byte offsets, height and width the squeezed tensor's, channels the image's. */
interface SqueezeKernels {
  squeeze(image: number, squeezed: number, batch: number, height: number, width: number, channels: number): void;
  unsqueeze(squeezed: number, image: number, batch: number, height: number, width: number, channels: number): void;
}

/** Returns whether the kernels can run on `x`: the wasm backend, float32 values. */
export function canUseSqueezeKernels(x: tf.Tensor): boolean {
  return x.dtype === 'float32' && wasmKernelsAvailable();
}

/** Returns the permutation of x in `direction` as a new tensor of `outputShape`. O(B·D). */
function permute(x: tf.Tensor, outputShape: number[], direction: keyof SqueezeKernels, caller: string): tf.Tensor {
  const [batch, height, width, channels] = direction === 'squeeze' ? outputShape : x.shape;
  const { backend, kernels } = wasmKernels<SqueezeKernels>('squeeze.wasm', caller);
  // The input's offset first: it throws for a disposed input before any output is allocated.
  const input = offsetOf(backend, x, caller);
  const out = backend.makeOutput(outputShape, 'float32');
  kernels[direction](input, offsetOf(backend, out, caller), batch, height, width, channels / 4);
  return tf.engine().makeTensorFromTensorInfo(out);
}

/** Maps image [B, 2H, 2W, C] to [B, H, W, 4C]. Needs `canUseSqueezeKernels(image)` and even sides (the caller checks). */
export function squeezeImage(image: tf.Tensor4D): tf.Tensor4D {
  const [batch, height, width, channels] = image.shape;
  const op = tf.customGrad(((x: tf.Tensor4D) => ({
    value: permute(x, [batch, height / 2, width / 2, 4 * channels], 'squeeze', 'squeezeImage'),
    gradFunc: (dy: tf.Tensor4D) => unsqueezeImage(dy),
  })) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor4D) => tf.Tensor4D;
  return op(image);
}

/** Maps squeezed [B, H, W, 4C] back to [B, 2H, 2W, C]. Needs `canUseSqueezeKernels(squeezed)` and 4C channels (the caller checks). */
export function unsqueezeImage(squeezed: tf.Tensor4D): tf.Tensor4D {
  const [batch, height, width, squeezedChannels] = squeezed.shape;
  const op = tf.customGrad(((y: tf.Tensor4D) => ({
    value: permute(y, [batch, 2 * height, 2 * width, squeezedChannels / 4], 'unsqueeze', 'unsqueezeImage'),
    gradFunc: (dy: tf.Tensor4D) => squeezeImage(dy),
  })) as unknown as Parameters<typeof tf.customGrad>[0]) as (y: tf.Tensor4D) => tf.Tensor4D;
  return op(squeezed);
}
