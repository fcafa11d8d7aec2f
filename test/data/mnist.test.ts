import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { sha256Hex } from '../../src/data/idx.js';
import { defaultMnistDirectory, loadMnist, MNIST_SHA256, type MnistDataset } from '../../src/data/mnist.js';

const IMAGE_HEADER = 16;
const LABEL_HEADER = 8;
const IMAGE_BYTES = 784;

describe('MNIST loader', () => {
  let mnist: MnistDataset;
  let trainFile: Uint8Array;
  let testFile: Uint8Array;
  let trainLabelFile: Uint8Array;

  before(async () => {
    mnist = await loadMnist();
    trainFile = await readFile(join(defaultMnistDirectory(), 'train-images-idx3-ubyte'));
    testFile = await readFile(join(defaultMnistDirectory(), 't10k-images-idx3-ubyte'));
    trainLabelFile = await readFile(join(defaultMnistDirectory(), 'train-labels-idx1-ubyte'));
  });

  /** Image `n` of a raw IDX image file, read independently of the loader. */
  const rawImage = (file: Uint8Array, n: number): number[] =>
    Array.from(file.subarray(IMAGE_HEADER + n * IMAGE_BYTES, IMAGE_HEADER + (n + 1) * IMAGE_BYTES));

  it('has the reference split sizes and shape', () => {
    assert.deepEqual(mnist.sizes, { train: 50_000, validation: 10_000, test: 10_000 });
    assert.deepEqual(mnist.imageShape, [28, 28, 1]);
    assert.equal(mnist.dimension, 784);
  });

  it('pins the published train-images checksum', () => {
    assert.equal(MNIST_SHA256['train-images-idx3-ubyte'], 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db');
    assert.equal(sha256Hex(trainFile), MNIST_SHA256['train-images-idx3-ubyte']);
  });

  it('splits at training image 50,000', () => {
    assert.deepEqual(Array.from(mnist.batch('train', [0])), rawImage(trainFile, 0));
    assert.deepEqual(Array.from(mnist.batch('train', [49_999])), rawImage(trainFile, 49_999));
    assert.deepEqual(Array.from(mnist.batch('validation', [0])), rawImage(trainFile, 50_000));
    assert.deepEqual(Array.from(mnist.batch('validation', [9_999])), rawImage(trainFile, 59_999));
    assert.deepEqual(Array.from(mnist.batch('test', [0])), rawImage(testFile, 0));
    assert.deepEqual(Array.from(mnist.batch('test', [9_999])), rawImage(testFile, 9_999));
  });

  it('gathers a batch in index order', () => {
    const batch = mnist.batch('train', [7, 3]);
    assert.equal(batch.length, 2 * IMAGE_BYTES);
    assert.deepEqual(Array.from(batch.subarray(0, IMAGE_BYTES)), rawImage(trainFile, 7));
    assert.deepEqual(Array.from(batch.subarray(IMAGE_BYTES)), rawImage(trainFile, 3));
  });

  it('aligns labels with the splits', () => {
    assert.equal(mnist.labels('train').length, 50_000);
    assert.equal(mnist.labels('validation')[0], trainLabelFile[LABEL_HEADER + 50_000]);
    assert.equal(mnist.labels('train')[49_999], trainLabelFile[LABEL_HEADER + 49_999]);
    assert.equal(mnist.labels('test').length, 10_000);
  });

  it('rejects indices outside a split', () => {
    assert.throws(() => mnist.batch('validation', [10_000]), /index 10000 .* outside the validation split, which has images 0 … 9999/);
    assert.throws(() => mnist.batch('train', [1.5]), /index 1.5/);
    assert.throws(() => mnist.batch('training' as never, [0]), /unknown split "training"/);
  });

  it('loads once per process', async () => {
    assert.equal(await loadMnist(), mnist);
  });

  describe('with damaged files', () => {
    let folder: string;
    before(async () => {
      folder = await mkdtemp(join(tmpdir(), 'ebflow-mnist-'));
      for (const file of ['train-images-idx3-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
        await symlink(join(defaultMnistDirectory(), file), join(folder, file));
      }
    });
    after(async () => {
      await rm(folder, { recursive: true, force: true });
    });

    it('names a missing file', async () => {
      await assert.rejects(loadMnist({ directory: folder }), (error: Error) => {
        assert.match(error.message, /train-labels-idx1-ubyte: file not found/);
        assert.match(error.message, /Restore the canonical uncompressed MNIST IDX files/);
        return true;
      });
    });

    it('names a corrupted file', async () => {
      const labels = Uint8Array.from(trainLabelFile);
      labels[LABEL_HEADER] = (labels[LABEL_HEADER] + 1) % 10;
      await writeFile(join(folder, 'train-labels-idx1-ubyte'), labels);
      await assert.rejects(loadMnist({ directory: folder }), /train-labels-idx1-ubyte: sha256 checksum mismatch/);
    });

    it('names a truncated file', async () => {
      await writeFile(join(folder, 'train-labels-idx1-ubyte'), trainLabelFile.subarray(0, 1000));
      await assert.rejects(loadMnist({ directory: folder }), /train-labels-idx1-ubyte: the header declares dimensions \[60000\].*\(truncated\)/);
    });
  });
});
