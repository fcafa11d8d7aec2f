import assert from 'node:assert/strict';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  applyCifar10Augmentation,
  CIFAR10_MAX_TRANSLATION,
  CIFAR10_RECORD_BYTES,
  drawCifar10Augmentation,
  loadCifar10,
  type Cifar10Augmentation,
  type Cifar10Dataset,
} from '../../src/data/cifar10.js';
import { RandomStream } from '../../src/random/stream.js';
import { CIFAR10_FILE_ORDER, fixtureBatchFile, fixturePixel, writeFixtureBatches } from './cifar10-fixture.js';

const RECORDS = 3;
const SIDE = 32;
const ALL_FILES = CIFAR10_FILE_ORDER;
const pixelValue = fixturePixel;
const batchFile = (first: number): Uint8Array => fixtureBatchFile(first, RECORDS);
const writeBatches = (folder: string): Promise<void> => writeFixtureBatches(folder, RECORDS);

/** Reads (row, column, channel) of image `n` in an NHWC batch. */
function at(batch: Uint8Array, n: number, row: number, column: number, channel: number): number {
  return batch[((n * SIDE + row) * SIDE + column) * 3 + channel];
}

describe('CIFAR-10 loader', () => {
  let root: string;
  let folder: string;
  let cifar: Cifar10Dataset;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ebflow-cifar-'));
    folder = join(root, 'batches');
    await writeBatches(folder);
    cifar = await loadCifar10({ directory: folder, recordsPerFile: RECORDS });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('maps files to splits', () => {
    assert.deepEqual(cifar.sizes, { train: 4 * RECORDS, validation: RECORDS, test: RECORDS });
    assert.deepEqual(cifar.imageShape, [32, 32, 3]);
    assert.equal(cifar.dimension, 3072);
  });

  it('converts channel-major records to NHWC', () => {
    const batch = cifar.batch('train', [5, 0]);
    for (const [row, column] of [
      [0, 0],
      [0, 31],
      [17, 4],
      [31, 31],
    ]) {
      for (let c = 0; c < 3; c++) {
        assert.equal(at(batch, 0, row, column, c), pixelValue(5, c, row, column), `record 5 (${row}, ${column}, ${c})`);
        assert.equal(at(batch, 1, row, column, c), pixelValue(0, c, row, column), `record 0 (${row}, ${column}, ${c})`);
      }
    }
  });

  it('takes validation from data_batch_5 and test from test_batch', () => {
    assert.equal(at(cifar.batch('validation', [1]), 0, 2, 3, 1), pixelValue(4 * RECORDS + 1, 1, 2, 3));
    assert.equal(at(cifar.batch('test', [2]), 0, 9, 30, 2), pixelValue(5 * RECORDS + 2, 2, 9, 30));
    assert.deepEqual(Array.from(cifar.labels('validation')), [2, 3, 4]);
    assert.deepEqual(Array.from(cifar.labels('test')), [5, 6, 7]);
    assert.equal(cifar.labels('train')[11], 1);
  });

  it('leaves validation images unaugmented', () => {
    const plain = cifar.batch('validation', [0, 1, 2]);
    const withStream = cifar.batch('validation', [0, 1, 2], new RandomStream(3));
    assert.deepEqual(withStream, plain);
  });

  it('augments training images reproducibly', () => {
    const indices = Array.from({ length: 12 }, (_, i) => i);
    const first = cifar.batch('train', indices, new RandomStream(11));
    const second = cifar.batch('train', indices, new RandomStream(11));
    const plain = cifar.batch('train', indices);
    assert.deepEqual(first, second);
    assert.notDeepEqual(first, plain);
  });

  it('names the folder and files when the folder is absent', async () => {
    const absent = join(root, 'nowhere');
    await assert.rejects(loadCifar10({ directory: absent, recordsPerFile: RECORDS }), (error: Error) => {
      assert.match(error.message, new RegExp(`folder ${absent} not found`));
      for (const file of ALL_FILES) assert.ok(error.message.includes(file), `message lists ${file}`);
      assert.match(error.message, /cifarDirectory/);
      return true;
    });
  });

  it('lists missing files', async () => {
    const partial = join(root, 'partial');
    await writeBatches(partial);
    await unlink(join(partial, 'data_batch_3.bin'));
    await unlink(join(partial, 'test_batch.bin'));
    await assert.rejects(
      loadCifar10({ directory: partial, recordsPerFile: RECORDS }),
      /missing data_batch_3\.bin, test_batch\.bin in /,
    );
  });

  it('rejects a truncated file', async () => {
    const truncated = join(root, 'truncated');
    await writeBatches(truncated);
    await writeFile(join(truncated, 'data_batch_2.bin'), batchFile(RECORDS).subarray(0, 2 * CIFAR10_RECORD_BYTES + 100));
    await assert.rejects(
      loadCifar10({ directory: truncated, recordsPerFile: RECORDS }),
      /data_batch_2\.bin has 6246 bytes, expected 9219 \(3 records of 3073 bytes\)/,
    );
  });

  it('rejects official-size expectations on small files', async () => {
    await assert.rejects(loadCifar10({ directory: folder }), /expected 30730000/);
  });

  it('rejects labels above 9', async () => {
    const badLabel = join(root, 'bad-label');
    await writeBatches(badLabel);
    const bytes = batchFile(0);
    bytes[CIFAR10_RECORD_BYTES] = 12;
    await writeFile(join(badLabel, 'data_batch_1.bin'), bytes);
    await assert.rejects(loadCifar10({ directory: badLabel, recordsPerFile: RECORDS }), /record 1 has label 12/);
  });
});

describe('CIFAR-10 augmentation', () => {
  // A source image whose every value encodes its position: (row, column, channel).
  const source = new Uint8Array(3072);
  for (let row = 0; row < SIDE; row++) {
    for (let column = 0; column < SIDE; column++) {
      for (let c = 0; c < 3; c++) source[(row * SIDE + column) * 3 + c] = (row * 8 + column + c * 50) % 256;
    }
  }
  const sourceAt = (row: number, column: number, c: number): number => source[(row * SIDE + column) * 3 + c];
  const transform = (draws: Cifar10Augmentation): Uint8Array => {
    const out = new Uint8Array(3072);
    applyCifar10Augmentation(source, out, draws);
    return out;
  };
  const none: Cifar10Augmentation = { flipBefore: false, shiftX: 0, shiftY: 0, flipAfter: false };

  it('is the identity without flips or shifts', () => {
    assert.deepEqual(transform(none), source);
  });

  it('mirrors columns for one flip', () => {
    const out = transform({ ...none, flipAfter: true });
    assert.equal(at(out, 0, 4, 0, 1), sourceAt(4, 31, 1));
    assert.equal(at(out, 0, 4, 30, 2), sourceAt(4, 1, 2));
  });

  it('shifts content and repeats the edge', () => {
    const out = transform({ ...none, shiftX: 1, shiftY: -1 });
    // Content moves right by one and up by one; the vacated column and row repeat the border.
    assert.equal(at(out, 0, 5, 10, 0), sourceAt(6, 9, 0));
    assert.equal(at(out, 0, 5, 0, 0), sourceAt(6, 0, 0));
    assert.equal(at(out, 0, 31, 7, 0), sourceAt(31, 6, 0));
  });

  it('reverses the shift between two flips', () => {
    const out = transform({ flipBefore: true, shiftX: 1, shiftY: 0, flipAfter: true });
    assert.equal(at(out, 0, 3, 10, 0), sourceAt(3, 11, 0));
    assert.equal(at(out, 0, 3, 31, 0), sourceAt(3, 31, 0));
  });

  it('rejects shifts beyond the padding', () => {
    assert.throws(() => transform({ ...none, shiftX: 3 }), /shifts must lie in ±2 pixels/);
  });

  it('draws flips and integer shifts at the reference rates', () => {
    const random = new RandomStream(5);
    const draws = 20_000;
    let flipsBefore = 0;
    let flipsAfter = 0;
    let moved = 0;
    const seen = new Set<number>();
    for (let i = 0; i < draws; i++) {
      const d = drawCifar10Augmentation(random);
      flipsBefore += d.flipBefore ? 1 : 0;
      flipsAfter += d.flipAfter ? 1 : 0;
      moved += d.shiftX !== 0 ? 1 : 0;
      seen.add(d.shiftX).add(d.shiftY);
    }
    assert.deepEqual([...seen].sort(), [-1, 0, 1]);
    // Binomial standard deviations are about 0.0035; allow 5 of them.
    assert.ok(Math.abs(flipsBefore / draws - 0.5) < 0.018, `flipBefore rate ${flipsBefore / draws}`);
    assert.ok(Math.abs(flipsAfter / draws - 0.5) < 0.018, `flipAfter rate ${flipsAfter / draws}`);
    const expectedMoved = (CIFAR10_MAX_TRANSLATION - 0.5) / CIFAR10_MAX_TRANSLATION;
    assert.ok(Math.abs(moved / draws - expectedMoved) < 0.018, `shift rate ${moved / draws}, expected ${expectedMoved}`);
  });
});
