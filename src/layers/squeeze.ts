/**
 * Squeeze: a space-to-depth permutation that halves height and width and quadruples the channels.
 *
 * The channel order is PyTorch's, not TensorFlow's. In the NCHW layout of EBFlow's reference
 * PyTorch implementation (github.com/chen-hao-chao/ebflow),
 *   out[b, 4c + 2·dh + dw, h, w] = in[b, c, 2h + dh, 2w + dw],   dh, dw ∈ {0, 1}.
 * This layer works on NHWC tensors and keeps the same logical indices:
 *   out[b, h, w, 4c + 2·dh + dw] = in[b, 2h + dh, 2w + dw, c],
 * so transposing its output to NCHW and flattening channel-major gives exactly the reference's
 * vector. TensorFlow's `space_to_depth`, whose inverse tfjs 4.22 has as `tf.depthToSpace` (tfjs has
 * no space-to-depth op), puts channel (2·dh + dw)·C + c instead. The order matters for
 * loading reference weights and for any layer that splits channels; for a following full
 * convolution it is only a relabelling.
 */
import * as tf from '@tensorflow/tfjs-core';

import { squeezeImage, canUseSqueezeKernels, unsqueezeImage } from '../tensor/squeeze.js';
import type { FlowLayer, LayerForward } from './layer.js';

export class SqueezeLayer implements FlowLayer {
  readonly name: string;
  /** A permutation: the Jacobian is a constant permutation matrix with log|det| = 0. */
  readonly constantJacobian = true;
  readonly variables: tf.Variable[] = [];

  constructor(name = 'squeeze') {
    this.name = name;
  }

  /**
   * Maps x [B, H, W, C] to [B, H/2, W/2, 4C] with PyTorch's channel order; logDet is null because
   * the Jacobian is constant. H and W must be even. O(B·D) memory moves, no arithmetic: one pass
   * of a WebAssembly kernel for float32 input on the wasm backend (`tensor/squeeze.ts`), a 6-D
   * transpose otherwise.
   */
  forward(x: tf.Tensor): LayerForward {
    const [batch, height, width, channels] = this.checkInput(x, 'forward');
    if (canUseSqueezeKernels(x)) return { y: squeezeImage(x as tf.Tensor4D), logDet: null };
    const y = tf.tidy(() => {
      // Axes after the reshape: b, h, dh, w, dw, c. Moving them to b, h, w, c, dh, dw and merging
      // the last three gives channel index c·4 + dh·2 + dw.
      const split = tf.reshape(x, [batch, height / 2, 2, width / 2, 2, channels]);
      const moved = tf.transpose(split, [0, 1, 3, 5, 2, 4]);
      return tf.reshape(moved, [batch, height / 2, width / 2, 4 * channels]);
    });
    return { y, logDet: null };
  }

  /** Maps y [B, H/2, W/2, 4C] back to [B, H, W, C]. O(B·D) memory moves. */
  inverse(y: tf.Tensor): tf.Tensor {
    if (y.rank !== 4 || (y.shape[3] ?? 0) % 4 !== 0) {
      throw new RangeError(
        `${this.name}: inverse expects NHWC [B, H, W, 4C] with channels divisible by 4, ` +
          `received shape [${y.shape}]`,
      );
    }
    if (canUseSqueezeKernels(y)) return unsqueezeImage(y as tf.Tensor4D);
    const [batch, height, width, squeezedChannels] = y.shape as [number, number, number, number];
    const channels = squeezedChannels / 4;
    return tf.tidy(() => {
      const split = tf.reshape(y, [batch, height, width, channels, 2, 2]);
      const moved = tf.transpose(split, [0, 1, 4, 2, 5, 3]);
      return tf.reshape(moved, [batch, 2 * height, 2 * width, channels]);
    });
  }

  /** Returns log|det| = 0 of the permutation, as a scalar. O(1). */
  constantLogDet(): tf.Scalar {
    return tf.scalar(0);
  }

  private checkInput(x: tf.Tensor, method: string): [number, number, number, number] {
    if (x.rank !== 4) {
      throw new RangeError(
        `${this.name}: ${method} expects NHWC [B, H, W, C], received shape [${x.shape}]; reshape the batch to rank 4`,
      );
    }
    const [batch, height, width, channels] = x.shape;
    if (height % 2 !== 0 || width % 2 !== 0) {
      throw new RangeError(
        `${this.name}: height and width must be even to squeeze, received ${height}×${width}; ` +
          'crop or pad the image to even sides',
      );
    }
    return [batch, height, width, channels];
  }
}
