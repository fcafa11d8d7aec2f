/**
 * Synthetic 8-bit images of any shape [H, W, C], for runtime measurements at dimensions no real
 * data set has. Every pixel is uniform on 0–255, drawn from the run's random stream when the data
 * set is created, so equal seeds give equal images. The images carry no structure, so likelihoods
 * measured on them do not indicate a model's quality.
 */
import type { RandomStream } from '../random/stream.js';
import { checkBatchIndices, checkSplit, gatherImages, type ImageDataset, type Split } from './dataset.js';

/** Default split sizes: enough for ten batches of 100 per epoch and one evaluation of 200. */
export const SYNTHETIC_DEFAULT_SIZES: Readonly<Record<Split, number>> = { train: 1000, validation: 200, test: 200 };

export interface SyntheticOptions {
  imageShape: [number, number, number];
  /** The stream every pixel comes from; creation draws ⌈N·D/4⌉ 32-bit words from it. */
  random: RandomStream;
  /** Images per split; defaults to `SYNTHETIC_DEFAULT_SIZES`. */
  sizes?: Partial<Record<Split, number>>;
}

/**
 * Creates the synthetic data set, drawing all images of the three splits (train, then validation,
 * then test) from `options.random`. O(N·D) time and N·D bytes for N images in all.
 */
export function createSyntheticDataset(options: SyntheticOptions): ImageDataset {
  const [height, width, channels] = options.imageShape;
  for (const [name, value] of [
    ['H', height],
    ['W', width],
    ['C', channels],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(
        `synthetic data set: imageShape ${JSON.stringify(options.imageShape)} has ${name} = ${value}; each of H, W, C must be a positive integer`,
      );
    }
  }
  const sizes: Record<Split, number> = { ...SYNTHETIC_DEFAULT_SIZES, ...options.sizes };
  for (const split of ['train', 'validation', 'test'] as const) {
    if (!Number.isInteger(sizes[split]) || sizes[split] < 1) {
      throw new RangeError(`synthetic data set: sizes.${split} must be a positive integer, received ${sizes[split]}`);
    }
  }

  const dimension = height * width * channels;
  const stores = {} as Record<Split, Uint8Array>;
  for (const split of ['train', 'validation', 'test'] as const) {
    stores[split] = randomBytes(sizes[split] * dimension, options.random);
  }

  return {
    name: 'synthetic',
    imageShape: [height, width, channels],
    dimension,
    sizes,
    augmentsTraining: false,
    batch(split: Split, indices: ArrayLike<number>): Uint8Array {
      checkSplit('synthetic data set', split);
      checkBatchIndices('synthetic data set', split, sizes[split], indices);
      return gatherImages(stores[split], 0, dimension, indices);
    },
  };
}

/** Fills `count` bytes, four per 32-bit draw (little-endian byte order within each draw). */
function randomBytes(count: number, random: RandomStream): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i += 4) {
    const word = random.nextUint32();
    out[i] = word & 0xff;
    if (i + 1 < count) out[i + 1] = (word >>> 8) & 0xff;
    if (i + 2 < count) out[i + 2] = (word >>> 16) & 0xff;
    if (i + 3 < count) out[i + 3] = word >>> 24;
  }
  return out;
}
