/**
 * STL-10 from the binary distribution (stl10_binary.tar.gz from
 * https://cs.stanford.edu/~acoates/stl10/), which the user extracts because nothing is downloaded.
 * The images are resized to 64×64 as in EBFlow's reference, whose three splits are all the 5,000
 * labelled training images.
 *
 * Only `train_X.bin` is read, from the folder `datasets/stl10_binary` by default: 5,000 images of
 * 3×96×96 bytes each, stored as three colour planes (red, green, blue), each plane column by
 * column (the byte of row r, column c in channel k is at k·9216 + c·96 + r). The reader converts
 * them to NHWC.
 *
 * Every split is resized from 96 to 64 pixels per side by an antialiased bilinear (triangle)
 * filter of support 1.5 input pixels, the filter Pillow's BILINEAR resize uses when shrinking, and
 * rounded to bytes after each of the two passes (horizontal, then vertical). Pillow computes in
 * fixed point, so a value can differ from its output by one level. Training batches drawn with a
 * stream also get the reference's augmentation before the resize: a horizontal flip with
 * probability ½, edge padding by 4, a random translation of up to 4 % of the padded 104 pixels
 * (4.16, rounded half to even: shifts −4 … 4) per axis, the centre 96×96 crop, another flip.
 *
 * NOTE: the reference reports bits/dim of STL-10 over 3·96·96 = 27,648 values although the model
 * sees 12,288; this data set's `dimension` is 12,288, so its bits/dim are the usual ones.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import type { RandomStream } from '../random/stream.js';
import { checkBatchIndices, checkSplit, type ImageDataset, type Split } from './dataset.js';

export const STL10_DEFAULT_DIRECTORY = 'datasets/stl10_binary';
export const STL10_FILE = 'train_X.bin';
/** Side of the stored images. */
export const STL10_SOURCE_SIDE = 96;
/** Side of the images the data set returns. */
export const STL10_SIDE = 64;
const CHANNELS = 3;
const PLANE = STL10_SOURCE_SIDE * STL10_SOURCE_SIDE;
/** Bytes of one stored image. */
export const STL10_SOURCE_BYTES = PLANE * CHANNELS;
const IMAGE_BYTES = STL10_SIDE * STL10_SIDE * CHANNELS;
/** Labelled training images in the official file. */
export const STL10_DEFAULT_LIMIT = 5_000;
/** Edge padding before the random translation. */
const AUGMENT_PADDING = 4;
/** Largest random translation in pixels before rounding: 4 % of the padded side. */
export const STL10_MAX_TRANSLATION = 0.04 * (STL10_SOURCE_SIDE + 2 * AUGMENT_PADDING);

export interface Stl10Options {
  /** The folder holding `train_X.bin`; relative paths resolve against the working directory. */
  directory?: string;
  /** Uses the first `limit` images (default 5,000), or all when the file contains fewer. */
  limit?: number;
}

/** STL-10 as an `ImageDataset` of 64×64×3 images: three splits that are the same images. */
export interface Stl10Dataset extends ImageDataset {
  readonly name: 'stl10';
  /** The absolute folder `train_X.bin` was read from. */
  readonly directory: string;
}

/**
 * Reads `train_X.bin` from `options.directory`. Throws naming the folder and the expected file
 * when it is missing, and the file's size when it is not a whole number of 3×96×96 images.
 * O(limit · 27,648) bytes.
 */
export async function loadStl10(options: Stl10Options = {}): Promise<Stl10Dataset> {
  const directory = resolve(options.directory ?? STL10_DEFAULT_DIRECTORY);
  const limit = options.limit ?? STL10_DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`STL-10 loader: limit must be a positive integer, received ${limit}`);
  }
  const path = join(directory, STL10_FILE);
  const expected =
    `Expected ${path} from the STL-10 binary version (extract stl10_binary.tar.gz from https://cs.stanford.edu/~acoates/stl10/)`;
  const folder = await stat(directory).catch(() => null);
  if (folder === null || !folder.isDirectory()) {
    throw new Error(`STL-10 loader: folder ${directory} not found. ${expected}, or pass the folder that contains it.`);
  }
  const bytes = await readFile(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new Error(`STL-10 loader: ${STL10_FILE} not found in ${directory}. ${expected}.`);
    throw error;
  });
  if (bytes.length === 0 || bytes.length % STL10_SOURCE_BYTES !== 0) {
    throw new Error(
      `STL-10 loader: ${path} has ${bytes.length} bytes, not a positive multiple of ${STL10_SOURCE_BYTES} (one 3×96×96 image); ` +
        'the file is truncated or not an STL-10 image file. Extract it again.',
    );
  }
  const count = Math.min(limit, bytes.length / STL10_SOURCE_BYTES);
  const images = new Uint8Array(count * STL10_SOURCE_BYTES);
  for (let n = 0; n < count; n++) decodeStl10Image(bytes.subarray(n * STL10_SOURCE_BYTES, (n + 1) * STL10_SOURCE_BYTES), images.subarray(n * STL10_SOURCE_BYTES));
  const sizes: Record<Split, number> = { train: count, validation: count, test: count };

  return {
    name: 'stl10',
    directory,
    imageShape: [STL10_SIDE, STL10_SIDE, CHANNELS],
    dimension: IMAGE_BYTES,
    sizes,
    augmentsTraining: true,
    batch(split: Split, indices: ArrayLike<number>, augmentation?: RandomStream): Uint8Array {
      checkSplit('STL-10', split);
      checkBatchIndices('STL-10', split, count, indices);
      const out = new Uint8Array(indices.length * IMAGE_BYTES);
      const augmented = new Uint8Array(STL10_SOURCE_BYTES);
      for (let i = 0; i < indices.length; i++) {
        let source = images.subarray(indices[i] * STL10_SOURCE_BYTES, (indices[i] + 1) * STL10_SOURCE_BYTES);
        if (split === 'train' && augmentation !== undefined) {
          augmentStl10Image(source, augmented, drawStl10Augmentation(augmentation));
          source = augmented;
        }
        resizeBilinear(source, STL10_SOURCE_SIDE, out.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), STL10_SIDE, CHANNELS);
      }
      return out;
    },
  };
}

/** Converts one stored image (three column-major planes) to NHWC 96×96×3. O(27,648). */
export function decodeStl10Image(stored: Uint8Array, out: Uint8Array): void {
  for (let channel = 0; channel < CHANNELS; channel++) {
    for (let column = 0; column < STL10_SOURCE_SIDE; column++) {
      for (let row = 0; row < STL10_SOURCE_SIDE; row++) {
        out[(row * STL10_SOURCE_SIDE + column) * CHANNELS + channel] = stored[channel * PLANE + column * STL10_SOURCE_SIDE + row];
      }
    }
  }
}

/** One image's draws of the training augmentation. */
export interface Stl10Augmentation {
  flipBefore: boolean;
  /** Integer shift of the content to the right, in pixels. */
  shiftX: number;
  /** Integer shift of the content downwards, in pixels. */
  shiftY: number;
  flipAfter: boolean;
}

/** Draws one image's augmentation: flip, horizontal and vertical shift, flip. Four draws. */
export function drawStl10Augmentation(random: RandomStream): Stl10Augmentation {
  const flipBefore = random.uniform() < 0.5;
  const shiftX = roundHalfToEven((2 * random.uniform() - 1) * STL10_MAX_TRANSLATION);
  const shiftY = roundHalfToEven((2 * random.uniform() - 1) * STL10_MAX_TRANSLATION);
  const flipAfter = random.uniform() < 0.5;
  return { flipBefore, shiftX, shiftY, flipAfter };
}

/**
 * Writes into `out` the NHWC 96×96×3 image `source` after flip → edge-pad 4 → translate → centre
 * crop 96 → flip. With |shift| ≤ 4 the crop never reaches the translation's fill, so every output
 * pixel is a clamped source pixel. O(27,648).
 */
export function augmentStl10Image(source: Uint8Array, out: Uint8Array, draws: Stl10Augmentation): void {
  if (Math.abs(draws.shiftX) > AUGMENT_PADDING || Math.abs(draws.shiftY) > AUGMENT_PADDING) {
    throw new RangeError(`STL-10 augmentation: shifts must lie in ±${AUGMENT_PADDING} pixels, received (${draws.shiftX}, ${draws.shiftY})`);
  }
  const last = STL10_SOURCE_SIDE - 1;
  for (let i = 0; i < STL10_SOURCE_SIDE; i++) {
    const sourceRow = Math.min(Math.max(i - draws.shiftY, 0), last);
    for (let j = 0; j < STL10_SOURCE_SIDE; j++) {
      const beforeFlip = draws.flipAfter ? last - j : j;
      const shifted = Math.min(Math.max(beforeFlip - draws.shiftX, 0), last);
      const sourceColumn = draws.flipBefore ? last - shifted : shifted;
      const from = (sourceRow * STL10_SOURCE_SIDE + sourceColumn) * CHANNELS;
      const to = (i * STL10_SOURCE_SIDE + j) * CHANNELS;
      out[to] = source[from];
      out[to + 1] = source[from + 1];
      out[to + 2] = source[from + 2];
    }
  }
}

/**
 * Resizes a square NHWC image of side `from` to side `to` (to ≤ from) with the antialiased
 * bilinear filter: output index i covers input positions around (i + ½)·s, s = from/to, with
 * weights max(0, 1 − |x + ½ − (i + ½)·s|/s) normalised to sum 1; horizontal pass, then vertical,
 * each rounded to bytes. O(to·from·C·s).
 */
export function resizeBilinear(source: Uint8Array, from: number, out: Uint8Array, to: number, channels: number): void {
  const taps = filterTaps(from, to);
  const horizontal = new Uint8Array(from * to * channels);
  for (let row = 0; row < from; row++) {
    for (let column = 0; column < to; column++) {
      const { first, weights } = taps[column];
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let k = 0; k < weights.length; k++) sum += weights[k] * source[(row * from + first + k) * channels + c];
        horizontal[(row * to + column) * channels + c] = toByte(sum);
      }
    }
  }
  for (let row = 0; row < to; row++) {
    const { first, weights } = taps[row];
    for (let column = 0; column < to; column++) {
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let k = 0; k < weights.length; k++) sum += weights[k] * horizontal[((first + k) * to + column) * channels + c];
        out[(row * to + column) * channels + c] = toByte(sum);
      }
    }
  }
}

/** Returns, for each output index, the first input index and the normalised filter weights. */
function filterTaps(from: number, to: number): { first: number; weights: Float64Array }[] {
  const scale = from / to;
  const support = Math.max(scale, 1);
  const taps: { first: number; weights: Float64Array }[] = [];
  for (let i = 0; i < to; i++) {
    const centre = (i + 0.5) * scale;
    const first = Math.max(0, Math.floor(centre - support));
    const end = Math.min(from, Math.ceil(centre + support));
    const weights = new Float64Array(end - first);
    let sum = 0;
    for (let x = first; x < end; x++) {
      const weight = Math.max(0, 1 - Math.abs(x + 0.5 - centre) / support);
      weights[x - first] = weight;
      sum += weight;
    }
    for (let k = 0; k < weights.length; k++) weights[k] /= sum;
    taps.push({ first, weights });
  }
  return taps;
}

/**
 * Rounds half up to a byte. The normalised weights carry float64 rounding (5/6 is inexact), so
 * an exact half can arrive as 13.4999…; the 10⁻⁹ allowance rounds it up as exact arithmetic would.
 */
function toByte(value: number): number {
  return Math.min(255, Math.max(0, Math.floor(value + 0.5 + 1e-9)));
}

/** Python's round(): ties go to the even integer. */
function roundHalfToEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
