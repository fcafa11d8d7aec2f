/**
 * The interface every image data set meets: three splits of 8-bit images in NHWC order.
 *
 * Pixels stay raw bytes (0–255) until the preprocessing chain dequantises them, so a data set never
 * allocates tensors and a batch costs one copy of B·D bytes.
 */
import type { RandomStream } from '../random/stream.js';

export type Split = 'train' | 'validation' | 'test';
export const SPLITS: readonly Split[] = ['train', 'validation', 'test'];

export interface ImageDataset {
  /** The data set's name as configs spell it ("mnist", "cifar10", "synthetic"). */
  readonly name: string;
  /** The shape of one image, [H, W, C]. */
  readonly imageShape: [number, number, number];
  /** D = H·W·C, the number of bytes of one image. */
  readonly dimension: number;
  /** The number of images in each split. */
  readonly sizes: Readonly<Record<Split, number>>;
  /** True when `batch` can apply a random training augmentation (it needs a stream to do so). */
  readonly augmentsTraining: boolean;
  /**
   * Copies the images at `indices` of `split` into one buffer of shape [indices.length, H, W, C]
   * (NHWC, row-major), raw values 0–255. When `augmentation` is given and the split is "train",
   * a data set with `augmentsTraining` draws its random augmentation from that stream. Every other
   * call returns the stored pixels unchanged. O(B·D).
   */
  batch(split: Split, indices: ArrayLike<number>, augmentation?: RandomStream): Uint8Array;
}

/**
 * Checks that every index is an integer in [0, splitSize) and throws a RangeError naming the
 * first bad one. O(B).
 */
export function checkBatchIndices(
  component: string,
  split: Split,
  splitSize: number,
  indices: ArrayLike<number>,
): void {
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i];
    if (!Number.isInteger(index) || index < 0 || index >= splitSize) {
      throw new RangeError(
        `${component}: index ${index} (position ${i} of the batch) is outside the ${split} split, ` +
          `which has images 0 … ${splitSize - 1}; pass integer indices in that range`,
      );
    }
  }
}

/** Checks that `split` is one of the three split names. */
export function checkSplit(component: string, split: unknown): asserts split is Split {
  if (!SPLITS.includes(split as Split)) {
    throw new RangeError(
      `${component}: unknown split ${JSON.stringify(split)}; use one of ${SPLITS.map((s) => `"${s}"`).join(', ')}`,
    );
  }
}

/**
 * Copies whole images from a flat NHWC store into a batch buffer, image by image. O(B·D).
 * `offset` is the index of the split's first image inside `store`.
 */
export function gatherImages(
  store: Uint8Array,
  offset: number,
  dimension: number,
  indices: ArrayLike<number>,
): Uint8Array {
  const out = new Uint8Array(indices.length * dimension);
  for (let i = 0; i < indices.length; i++) {
    const start = (offset + indices[i]) * dimension;
    out.set(store.subarray(start, start + dimension), i * dimension);
  }
  return out;
}
