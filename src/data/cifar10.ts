/**
 * CIFAR-10 from the binary batch files of the "CIFAR-10 binary version" (cifar-10-binary.tar.gz
 * from https://www.cs.toronto.edu/~kriz/cifar.html, extracted by the user; nothing is downloaded).
 *
 * Each file is a sequence of 3,073-byte records: one label byte (0–9), then a 32×32 image stored
 * channel-major (1,024 red, 1,024 green, 1,024 blue bytes, each plane row-major). The reader
 * converts the images to NHWC. Splits follow EBFlow's reference: train = training images
 * 0–39,999 (data_batch_1 … 4), validation = 40,000–49,999 (data_batch_5), test = test_batch.
 * Training batches get the reference's random augmentation when the caller passes a stream.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import type { RandomStream } from '../random/stream.js';
import { checkBatchIndices, checkSplit, gatherImages, type ImageDataset, type Split } from './dataset.js';

export const CIFAR10_DEFAULT_DIRECTORY = 'datasets/cifar-10-batches-bin';
export const CIFAR10_HEIGHT = 32;
export const CIFAR10_WIDTH = 32;
export const CIFAR10_CHANNELS = 3;
const PIXELS_PER_PLANE = CIFAR10_HEIGHT * CIFAR10_WIDTH;
const IMAGE_BYTES = PIXELS_PER_PLANE * CIFAR10_CHANNELS;
/** Bytes of one record: the label byte and the channel-major image. */
export const CIFAR10_RECORD_BYTES = 1 + IMAGE_BYTES;
/** Records per file in the official distribution. */
export const CIFAR10_RECORDS_PER_FILE = 10_000;

/** The files of each split, in order. */
export const CIFAR10_FILES: Readonly<Record<Split, readonly string[]>> = {
  train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin'],
  validation: ['data_batch_5.bin'],
  test: ['test_batch.bin'],
};

/** Edge padding before the random translation, ceil(0.04 · 32) = 2 pixels. */
const AUGMENT_PADDING = 2;
/**
 * Largest random translation, in pixels, before rounding to an integer. The reference pads first
 * and then calls torchvision's RandomAffine(translate=(0.04, 0.04)), which scales the fraction by
 * the size of the image it receives, the padded 36 pixels: 0.04 · 36 = 1.44. (4 % of the
 * unpadded 32 pixels would be 1.28.) After rounding both give shifts in {−1, 0, 1}, with
 * P(shift ≠ 0) = 0.65 here against 0.61.
 */
export const CIFAR10_MAX_TRANSLATION = 0.04 * (CIFAR10_WIDTH + 2 * AUGMENT_PADDING);

export interface Cifar10Options {
  /** The folder holding the six .bin files; relative paths resolve against the working directory. */
  directory?: string;
  /**
   * Records expected in each file (10,000 in the official files). Tests write smaller files and
   * set this; a file with another record count is rejected as truncated or foreign.
   */
  recordsPerFile?: number;
}

/** CIFAR-10 as an `ImageDataset`, plus its class labels. */
export interface Cifar10Dataset extends ImageDataset {
  readonly name: 'cifar10';
  /** The absolute folder the batch files were read from. */
  readonly directory: string;
  /** The class labels (0–9) of a split, in split order; a view, not a copy. */
  labels(split: Split): Uint8Array;
}

/** One image's draws of the training augmentation. */
export interface Cifar10Augmentation {
  flipBefore: boolean;
  /** Integer shift of the content to the right, in pixels. */
  shiftX: number;
  /** Integer shift of the content downwards, in pixels. */
  shiftY: number;
  flipAfter: boolean;
}

const cache = new Map<string, Promise<Cifar10Dataset>>();

/**
 * Loads CIFAR-10 from `options.directory` (default `datasets/cifar-10-batches-bin`), reading the
 * six files on the first call per folder and returning the cached data set afterwards. Throws an
 * error naming the folder and the expected files when the folder or a file is missing, and naming
 * the file when its size or a label is invalid. O(184 MB) on the first call.
 */
export async function loadCifar10(options: Cifar10Options = {}): Promise<Cifar10Dataset> {
  const directory = resolve(options.directory ?? CIFAR10_DEFAULT_DIRECTORY);
  const recordsPerFile = options.recordsPerFile ?? CIFAR10_RECORDS_PER_FILE;
  if (!Number.isInteger(recordsPerFile) || recordsPerFile < 1) {
    throw new RangeError(`CIFAR-10 loader: recordsPerFile must be a positive integer, received ${recordsPerFile}`);
  }
  const key = `${directory}\u0000${recordsPerFile}`;
  let loading = cache.get(key);
  if (loading === undefined) {
    loading = readCifar10(directory, recordsPerFile);
    // A failed load is not cached, so adding the files and calling again works.
    loading.catch(() => cache.delete(key));
    cache.set(key, loading);
  }
  return loading;
}

function expectedFilesSentence(directory: string): string {
  const all = [...CIFAR10_FILES.train, ...CIFAR10_FILES.validation, ...CIFAR10_FILES.test];
  return (
    `The folder ${directory} must contain ${all.join(', ')} from the CIFAR-10 binary version ` +
    '(extract cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html), ' +
    'or set cifarDirectory to the folder that contains them.'
  );
}

async function readCifar10(directory: string, recordsPerFile: number): Promise<Cifar10Dataset> {
  const folder = await stat(directory).catch(() => null);
  if (folder === null || !folder.isDirectory()) {
    throw new Error(`CIFAR-10 loader: folder ${directory} not found. ${expectedFilesSentence(directory)}`);
  }
  const allFiles = [...CIFAR10_FILES.train, ...CIFAR10_FILES.validation, ...CIFAR10_FILES.test];
  const present = await Promise.all(allFiles.map((file) => stat(join(directory, file)).then((s) => s.isFile(), () => false)));
  const missing = allFiles.filter((_, i) => !present[i]);
  if (missing.length > 0) {
    throw new Error(`CIFAR-10 loader: missing ${missing.join(', ')} in ${directory}. ${expectedFilesSentence(directory)}`);
  }

  const splits = {} as Record<Split, { images: Uint8Array; labels: Uint8Array }>;
  for (const split of ['train', 'validation', 'test'] as const) {
    splits[split] = await readSplit(directory, CIFAR10_FILES[split], recordsPerFile);
  }
  return createCifar10Dataset(directory, splits);
}

/** Reads the files of one split into one NHWC image buffer and one label buffer. */
async function readSplit(
  directory: string,
  files: readonly string[],
  recordsPerFile: number,
): Promise<{ images: Uint8Array; labels: Uint8Array }> {
  const count = files.length * recordsPerFile;
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  for (let f = 0; f < files.length; f++) {
    const path = join(directory, files[f]);
    const bytes = await readFile(path);
    const expectedBytes = recordsPerFile * CIFAR10_RECORD_BYTES;
    if (bytes.length !== expectedBytes) {
      throw new Error(
        `CIFAR-10 loader: ${path} has ${bytes.length} bytes, expected ${expectedBytes} ` +
          `(${recordsPerFile} records of ${CIFAR10_RECORD_BYTES} bytes); the file is truncated or not a CIFAR-10 binary batch. ` +
          'Extract it again from cifar-10-binary.tar.gz.',
      );
    }
    decodeRecords(bytes, path, images, labels, f * recordsPerFile, recordsPerFile);
  }
  return { images, labels };
}

/**
 * Decodes `count` records into `images` (NHWC) and `labels`, starting at image `first`. Throws
 * naming the file and record when a label byte is above 9. O(count · 3,072).
 */
function decodeRecords(
  bytes: Uint8Array,
  path: string,
  images: Uint8Array,
  labels: Uint8Array,
  first: number,
  count: number,
): void {
  for (let r = 0; r < count; r++) {
    const record = r * CIFAR10_RECORD_BYTES;
    const label = bytes[record];
    if (label > 9) {
      throw new Error(
        `CIFAR-10 loader: ${path}: record ${r} has label ${label}, but CIFAR-10 labels are 0–9; ` +
          'the file is corrupted or not a CIFAR-10 binary batch (CIFAR-100 records have two label bytes). Extract it again.',
      );
    }
    labels[first + r] = label;

    // Channel-major planes to interleaved NHWC: pixel p, channel c comes from byte 1 + c·1024 + p.
    const out = (first + r) * IMAGE_BYTES;
    for (let p = 0; p < PIXELS_PER_PLANE; p++) {
      for (let c = 0; c < CIFAR10_CHANNELS; c++) {
        images[out + p * CIFAR10_CHANNELS + c] = bytes[record + 1 + c * PIXELS_PER_PLANE + p];
      }
    }
  }
}

function createCifar10Dataset(
  directory: string,
  splits: Record<Split, { images: Uint8Array; labels: Uint8Array }>,
): Cifar10Dataset {
  const sizes: Record<Split, number> = {
    train: splits.train.labels.length,
    validation: splits.validation.labels.length,
    test: splits.test.labels.length,
  };
  return {
    name: 'cifar10',
    directory,
    imageShape: [CIFAR10_HEIGHT, CIFAR10_WIDTH, CIFAR10_CHANNELS],
    dimension: IMAGE_BYTES,
    sizes,
    augmentsTraining: true,
    batch(split: Split, indices: ArrayLike<number>, augmentation?: RandomStream): Uint8Array {
      checkSplit('CIFAR-10', split);
      checkBatchIndices('CIFAR-10', split, sizes[split], indices);
      if (split !== 'train' || augmentation === undefined) {
        return gatherImages(splits[split].images, 0, IMAGE_BYTES, indices);
      }
      const out = new Uint8Array(indices.length * IMAGE_BYTES);
      for (let i = 0; i < indices.length; i++) {
        const draws = drawCifar10Augmentation(augmentation);
        const source = splits.train.images.subarray(indices[i] * IMAGE_BYTES, (indices[i] + 1) * IMAGE_BYTES);
        applyCifar10Augmentation(source, out.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), draws);
      }
      return out;
    },
    labels(split: Split): Uint8Array {
      checkSplit('CIFAR-10', split);
      return splits[split].labels;
    },
  };
}

/**
 * Draws one image's augmentation from `random` in the reference's order: horizontal flip with
 * probability ½, horizontal then vertical translation uniform in ±1.44 pixels rounded to the
 * nearest integer, a second horizontal flip with probability ½. Four draws.
 */
export function drawCifar10Augmentation(random: RandomStream): Cifar10Augmentation {
  const flipBefore = random.uniform() < 0.5;
  const shiftX = roundHalfToEven((2 * random.uniform() - 1) * CIFAR10_MAX_TRANSLATION);
  const shiftY = roundHalfToEven((2 * random.uniform() - 1) * CIFAR10_MAX_TRANSLATION);
  const flipAfter = random.uniform() < 0.5;
  return { flipBefore, shiftX, shiftY, flipAfter };
}

/**
 * Writes into `out` the 32×32×3 NHWC image `source` after the reference's training transform:
 * flip → edge-pad by 2 → translate by (shiftX, shiftY) with zero fill → centre-crop 32 → flip.
 * Because |shift| ≤ 2, the crop never reaches the zero fill, so output pixel (i, j) is the
 * (possibly flipped) source pixel at (clamp(i − shiftY), clamp(j − shiftX)), clamped to the
 * image: edge padding repeats border pixels. O(3,072).
 */
export function applyCifar10Augmentation(source: Uint8Array, out: Uint8Array, draws: Cifar10Augmentation): void {
  if (Math.abs(draws.shiftX) > AUGMENT_PADDING || Math.abs(draws.shiftY) > AUGMENT_PADDING) {
    throw new RangeError(
      `CIFAR-10 augmentation: shifts must lie in ±${AUGMENT_PADDING} pixels (the padding), received (${draws.shiftX}, ${draws.shiftY})`,
    );
  }
  const last = CIFAR10_WIDTH - 1;
  for (let i = 0; i < CIFAR10_HEIGHT; i++) {
    const sourceRow = clamp(i - draws.shiftY, 0, CIFAR10_HEIGHT - 1);
    for (let j = 0; j < CIFAR10_WIDTH; j++) {
      // Undo the final flip first, then the translation, then the first flip.
      const beforeFlip = draws.flipAfter ? last - j : j;
      const shifted = clamp(beforeFlip - draws.shiftX, 0, last);
      const sourceColumn = draws.flipBefore ? last - shifted : shifted;
      const from = (sourceRow * CIFAR10_WIDTH + sourceColumn) * CIFAR10_CHANNELS;
      const to = (i * CIFAR10_WIDTH + j) * CIFAR10_CHANNELS;
      out[to] = source[from];
      out[to + 1] = source[from + 1];
      out[to + 2] = source[from + 2];
    }
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high);
}

/** Python's round(): ties go to the even integer. */
function roundHalfToEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
