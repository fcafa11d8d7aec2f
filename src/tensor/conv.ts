/**
 * Stride-1 2-D convolutions whose gradients are forward convolutions, so they run on the wasm
 * backend and stay differentiable to any order.
 *
 * tfjs-core 4.22 differentiates `tf.conv2d` with the `Conv2DBackpropFilter` kernel, which the wasm
 * backend does not have, so a score-matching loss through `tf.conv2d` throws there. Every op here is
 * built on one custom-gradient zero-padded convolution, `conv2dPadded`, whose two gradients are
 * again `conv2dPadded` calls (plus reverses and transposes). Nested `tf.grad` therefore records
 * differentiable ops at every level.
 *
 * Layouts follow tfjs: inputs are NHWC [B, H, W, C], filters are [Kh, Kw, Cin, Cout], and the
 * operation is a cross-correlation like PyTorch's `conv2d`:
 *   y[b, p, q, o] = Σ_{i, j, c} filter[i, j, c, o] · x[b, p + i − padTop, q + j − padLeft, c].
 */
import * as tf from '@tensorflow/tfjs-core';

/** Zero padding on the two spatial axes, in pixels. Negative values crop. */
export interface SpatialPadding {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/**
 * Returns the stride-1 cross-correlation of x [B, H, W, Cin] with filter [Kh, Kw, Cin, Cout] after
 * zero-padding x by `padding`, where negative entries crop. The output has shape
 * [B, H + top + bottom − Kh + 1, W + left + right − Kw + 1, Cout]. Differentiable to any order in
 * both arguments on every backend. Cost O(B · Hout · Wout · Kh · Kw · Cin · Cout) for the value and
 * for each of the two gradients.
 */
export function conv2dPadded(x: tf.Tensor4D, filter: tf.Tensor4D, padding: SpatialPadding): tf.Tensor4D {
  return tf.tidy(() => {
    const cropped = cropSpatial(x, padding);
    const zeroPadding = {
      top: Math.max(0, padding.top),
      bottom: Math.max(0, padding.bottom),
      left: Math.max(0, padding.left),
      right: Math.max(0, padding.right),
    };
    return zeroPaddedConvolution(zeroPadding)(cropped, filter);
  });
}

/**
 * Builds the custom-gradient convolution for one non-negative padding. The padding is plain
 * numbers, not tensors, so it is bound here rather than passed to `tf.customGrad`.
 *
 * With y = conv(pad(x)):
 *   dx = conv(dy, reversed and channel-swapped filter) with padding Kh − 1 − top, Kh − 1 − bottom,
 *        Kw − 1 − left, Kw − 1 − right (negative values crop);
 *   dF[i, j, c, o] = Σ_{b, p, q} pad(x)[b, p + i, q + j, c] · dy[b, p, q, o], a convolution of
 *        xᵀ [Cin, H, W, B] with dyᵀ [Hout, Wout, B, Cout] as the filter and the same padding, whose
 *        output [Cin, Kh, Kw, Cout] is transposed back to [Kh, Kw, Cin, Cout].
 */
function zeroPaddedConvolution(padding: SpatialPadding): (x: tf.Tensor4D, filter: tf.Tensor4D) => tf.Tensor4D {
  const explicit: [[number, number], [number, number], [number, number], [number, number]] = [
    [0, 0],
    [padding.top, padding.bottom],
    [padding.left, padding.right],
    [0, 0],
  ];
  return tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, filter, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
    // The gradient must read its inputs from `save`, because in tfjs 4.22 a gradient that reads
    // the closure's tensors crashes when it is differentiated again.
    save([x, filter]);
    const value = tf.conv2d(x, filter, 1, explicit);

    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [savedX, savedFilter] = saved as tf.Tensor4D[];
      const [kh, kw] = savedFilter.shape;
      const inputPadding = {
        top: kh - 1 - padding.top,
        bottom: kh - 1 - padding.bottom,
        left: kw - 1 - padding.left,
        right: kw - 1 - padding.right,
      };
      const inputGradient = conv2dPadded(dy as tf.Tensor4D, adjointFilter(savedFilter), inputPadding);

      const xAsBatchOfChannels = tf.transpose(savedX, [3, 1, 2, 0]);
      const dyAsFilter = tf.transpose(dy as tf.Tensor4D, [1, 2, 0, 3]);
      const filterGradient = tf.transpose(conv2dPadded(xAsBatchOfChannels, dyAsFilter, padding), [1, 2, 0, 3]);
      return [inputGradient, filterGradient];
    };
    return { value, gradFunc };
  }) as unknown as (x: tf.Tensor4D, filter: tf.Tensor4D) => tf.Tensor4D;
}

/**
 * Returns the PyTorch-style "same" convolution: stride 1, zero padding (K − 1)/2 on every side,
 * for x [B, H, W, Cin] and a square, odd filter [K, K, Cin, Cout]; output [B, H, W, Cout].
 * Differentiable to any order on every backend. Cost O(B · H · W · K² · Cin · Cout).
 */
export function conv2dSame(x: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor4D {
  checkSameConvolution(x, filter);
  const pad = (filter.shape[0] - 1) / 2;
  return conv2dPadded(x, filter, { top: pad, bottom: pad, left: pad, right: pad });
}

/**
 * Returns the filter that turns a convolution into its adjoint: filter[i, j, c, o] moves to
 * [Kh − 1 − i, Kw − 1 − j, o, c] (both spatial axes reversed, channel axes swapped). The adjoint of a
 * "same" convolution with filter F is the "same" convolution with `adjointFilter(F)`. O(K² · Cin · Cout).
 */
export function adjointFilter(filter: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]));
}

/**
 * Returns the adjoint of `conv2dSame(·, filter)` applied to dy [B, H, W, Cout], shape
 * [B, H, W, Cin]: the back-propagation of dy to the convolution's input. Differentiable to any
 * order. Cost O(B · H · W · K² · Cin · Cout).
 */
export function conv2dSameTranspose(dy: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => conv2dSame(dy, adjointFilter(filter)));
}

/** Crops the spatial axes of an NHWC tensor where `padding` is negative; O(B·D) when it crops. */
function cropSpatial(x: tf.Tensor4D, padding: SpatialPadding): tf.Tensor4D {
  const [, height, width] = x.shape;
  const cropTop = Math.max(0, -padding.top);
  const cropBottom = Math.max(0, -padding.bottom);
  const cropLeft = Math.max(0, -padding.left);
  const cropRight = Math.max(0, -padding.right);
  if (cropTop + cropBottom + cropLeft + cropRight === 0) {
    return x;
  }

  const keptHeight = height - cropTop - cropBottom;
  const keptWidth = width - cropLeft - cropRight;
  if (keptHeight <= 0 || keptWidth <= 0) {
    throw new RangeError(
      `conv2dPadded: padding ${JSON.stringify(padding)} crops the whole ${height}×${width} input; ` +
        'use paddings no more negative than the input size',
    );
  }
  return tf.slice(x, [0, cropTop, cropLeft, 0], [-1, keptHeight, keptWidth, -1]);
}

function checkSameConvolution(x: tf.Tensor, filter: tf.Tensor): void {
  if (x.rank !== 4) {
    throw new RangeError(`conv2dSame: x must be NHWC of rank 4, received shape [${x.shape}]; reshape it to [B, H, W, C]`);
  }
  if (filter.rank !== 4) {
    throw new RangeError(
      `conv2dSame: filter must have rank 4 [K, K, Cin, Cout], received shape [${filter.shape}]`,
    );
  }
  const [kh, kw, inChannels] = filter.shape;
  if (kh !== kw || kh % 2 !== 1) {
    throw new RangeError(
      `conv2dSame: the filter must be square with an odd size so the padding (K − 1)/2 is whole, ` +
        `received ${kh}×${kw}; use an odd K such as 3 or 7`,
    );
  }
  if (x.shape[3] !== inChannels) {
    throw new RangeError(
      `conv2dSame: x has ${x.shape[3]} channels but the filter expects ${inChannels}; ` +
        'the filter shape is [K, K, Cin, Cout] with Cin equal to the last axis of x',
    );
  }
}
