/**
 * CelebA at 64×64 from a file the user prepares (nothing is downloaded), with the splits of
 * EBFlow's reference: the first 5,000 images serve as train, validation and test split alike.
 *
 * Expected on disk: a folder (default `datasets/celeba-64`) holding `images.bin`, the images
 * back to back as raw bytes, each 64×64×3 in NHWC order (row by row, RGB interleaved), values
 * 0–255, 12,288 bytes per image, in the order of CelebA's "train" split. The reference's
 * transform must already be applied: resize the shorter side to 64 (bilinear), pad 3 pixels by
 * repeating the edge and crop the centre 64×64. Any tool that writes the decoded pixels of such
 * crops in this order produces the file; the reader checks only its size.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { checkBatchIndices, checkSplit, gatherImages, type ImageDataset, type Split } from './dataset.js';

export const CELEBA_DEFAULT_DIRECTORY = 'datasets/celeba-64';
export const CELEBA_FILE = 'images.bin';
export const CELEBA_SIDE = 64;
export const CELEBA_CHANNELS = 3;
const IMAGE_BYTES = CELEBA_SIDE * CELEBA_SIDE * CELEBA_CHANNELS;
/** Images the reference uses: the first 5,000 of the train split. */
export const CELEBA_DEFAULT_LIMIT = 5_000;

export interface CelebaOptions {
  /** The folder holding `images.bin`; relative paths resolve against the working directory. */
  directory?: string;
  /** Uses the first `limit` images (default 5,000), or all when the file contains fewer. */
  limit?: number;
}

/** CelebA as an `ImageDataset`: three splits that are the same images. */
export interface CelebaDataset extends ImageDataset {
  readonly name: 'celeba';
  /** The absolute folder `images.bin` was read from. */
  readonly directory: string;
}

/**
 * Reads `images.bin` from `options.directory`. Throws naming the folder and the expected file
 * when it is missing, and the file's size when it is not a whole number of 64×64×3 images.
 * O(limit · 12,288) bytes.
 */
export async function loadCeleba(options: CelebaOptions = {}): Promise<CelebaDataset> {
  const directory = resolve(options.directory ?? CELEBA_DEFAULT_DIRECTORY);
  const limit = options.limit ?? CELEBA_DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`CelebA loader: limit must be a positive integer, received ${limit}`);
  }
  const path = join(directory, CELEBA_FILE);
  const expected =
    `Expected ${path}: ${CELEBA_SIDE}×${CELEBA_SIDE}×3 CelebA crops as raw NHWC bytes, ${IMAGE_BYTES} bytes per image ` +
    '(see the comment at the top of src/data/celeba.ts for how to prepare it)';
  const folder = await stat(directory).catch(() => null);
  if (folder === null || !folder.isDirectory()) {
    throw new Error(`CelebA loader: folder ${directory} not found. ${expected}, or pass the folder that contains it.`);
  }
  const bytes = await readFile(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new Error(`CelebA loader: ${CELEBA_FILE} not found in ${directory}. ${expected}.`);
    throw error;
  });
  if (bytes.length === 0 || bytes.length % IMAGE_BYTES !== 0) {
    throw new Error(
      `CelebA loader: ${path} has ${bytes.length} bytes, not a positive multiple of ${IMAGE_BYTES} (one 64×64×3 image); ` +
        'the file is truncated or in another format. Write it again.',
    );
  }
  const count = Math.min(limit, bytes.length / IMAGE_BYTES);
  const images = new Uint8Array(bytes.buffer, bytes.byteOffset, count * IMAGE_BYTES);
  const sizes: Record<Split, number> = { train: count, validation: count, test: count };

  return {
    name: 'celeba',
    directory,
    imageShape: [CELEBA_SIDE, CELEBA_SIDE, CELEBA_CHANNELS],
    dimension: IMAGE_BYTES,
    sizes,
    // The reference's CelebA transform has no random step.
    augmentsTraining: false,
    batch(split: Split, indices: ArrayLike<number>): Uint8Array {
      checkSplit('CelebA', split);
      checkBatchIndices('CelebA', split, count, indices);
      return gatherImages(images, 0, IMAGE_BYTES, indices);
    },
  };
}
