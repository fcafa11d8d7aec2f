/**
 * Stride-1 2-D convolutions whose gradients are forward convolutions, so they run on the wasm
 * backend and stay differentiable to any order.
 *
 * tfjs-core 4.22 differentiates `tf.conv2d` with the `Conv2DBackpropFilter` kernel, which the wasm
 * backend does not have, so a score-matching loss through `tf.conv2d` throws there. Every op here is
 * built on one custom-gradient "valid" convolution, `conv2dValid`, whose two gradients are again
 * `conv2dValid` calls (plus pads, reverses and transposes). Nested `tf.grad` therefore records
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
 * Returns the "valid" cross-correlation of x [B, H, W, Cin] with filter [Kh, Kw, Cin, Cout], shape
 * [B, H − Kh + 1, W − Kw + 1, Cout]. Differentiable to any order in both arguments on every
 * backend. Cost O(B · Hout · Wout · Kh · Kw · Cin · Cout) for the value and for each gradient.
 */
export const conv2dValid: (x: tf.Tensor4D, filter: tf.Tensor4D) => tf.Tensor4D = tf.customGrad(
  (...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, filter, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
    // The gradient must read its inputs from `save`: reading the closure's tensors breaks the
    // tape at second order.
    save([x, filter]);
    const value = tf.conv2d(x, filter, 1, 'valid');
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [savedX, savedFilter] = saved as tf.Tensor4D[];
      return [
        validInputGradient(dy as tf.Tensor4D, savedFilter),
        validFilterGradient(savedX, dy as tf.Tensor4D, savedFilter.shape[0], savedFilter.shape[1]),
      ];
    };
    return { value, gradFunc };
  },
) as unknown as (x: tf.Tensor4D, filter: tf.Tensor4D) => tf.Tensor4D;

/**
 * Returns the stride-1 cross-correlation of x [B, H, W, Cin] with filter [Kh, Kw, Cin, Cout] after
 * zero-padding x by `padding`, where negative entries crop. The output has shape
 * [B, H + top + bottom − Kh + 1, W + left + right − Kw + 1, Cout]. Differentiable to any order.
 * Cost O(B · Hout · Wout · Kh · Kw · Cin · Cout).
 */
export function conv2dPadded(x: tf.Tensor4D, filter: tf.Tensor4D, padding: SpatialPadding): tf.Tensor4D {
  return tf.tidy(() => conv2dValid(padSpatial(x, padding), filter));
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

/** dx of y = conv2dValid(x, filter): the full convolution of dy with the adjoint filter. */
function validInputGradient(dy: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw] = filter.shape;
  const padding = { top: kh - 1, bottom: kh - 1, left: kw - 1, right: kw - 1 };
  return conv2dValid(padSpatial(dy, padding), adjointFilter(filter));
}

/**
 * d filter of y = conv2dValid(x, filter). With the batch read as channels,
 *   dF[i, j, c, o] = Σ_{b, p, q} x[b, p + i, q + j, c] · dy[b, p, q, o]
 * is a "valid" convolution of xᵀ [Cin, H, W, B] with dyᵀ [Hout, Wout, B, Cout] as the filter; its
 * output [Cin, Kh, Kw, Cout] is transposed back to [Kh, Kw, Cin, Cout].
 */
function validFilterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, kh: number, kw: number): tf.Tensor4D {
  const xAsBatchOfChannels = tf.transpose(x, [3, 1, 2, 0]);
  const dyAsFilter = tf.transpose(dy, [1, 2, 0, 3]);
  const gradient = conv2dValid(xAsBatchOfChannels, dyAsFilter);
  if (gradient.shape[1] !== kh || gradient.shape[2] !== kw) {
    throw new Error(
      `conv2dValid: filter gradient has spatial shape [${gradient.shape[1]}, ${gradient.shape[2]}], ` +
        `expected [${kh}, ${kw}]; this is a bug in the gradient's shape arithmetic`,
    );
  }
  return tf.transpose(gradient, [1, 2, 0, 3]);
}

/** Zero-pads (positive) or crops (negative) the two spatial axes of an NHWC tensor. */
function padSpatial(x: tf.Tensor4D, padding: SpatialPadding): tf.Tensor4D {
  const [, height, width] = x.shape;
  const cropTop = Math.max(0, -padding.top);
  const cropBottom = Math.max(0, -padding.bottom);
  const cropLeft = Math.max(0, -padding.left);
  const cropRight = Math.max(0, -padding.right);

  let result = x;
  if (cropTop + cropBottom + cropLeft + cropRight > 0) {
    const keptHeight = height - cropTop - cropBottom;
    const keptWidth = width - cropLeft - cropRight;
    if (keptHeight <= 0 || keptWidth <= 0) {
      throw new RangeError(
        `conv2dPadded: padding ${JSON.stringify(padding)} crops the whole ${height}×${width} input; ` +
          'use paddings no more negative than the input size',
      );
    }
    result = tf.slice(result, [0, cropTop, cropLeft, 0], [-1, keptHeight, keptWidth, -1]);
  }

  const padTop = Math.max(0, padding.top);
  const padBottom = Math.max(0, padding.bottom);
  const padLeft = Math.max(0, padding.left);
  const padRight = Math.max(0, padding.right);
  if (padTop + padBottom + padLeft + padRight > 0) {
    result = tf.pad(result, [
      [0, 0],
      [padTop, padBottom],
      [padLeft, padRight],
      [0, 0],
    ]);
  }
  return result;
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
