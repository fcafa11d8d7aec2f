import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { augmentStl10Image, decodeStl10Image, loadStl10, resizeBilinear } from '../../src/data/stl10.js';
import { RandomStream } from '../../src/random/stream.js';

const SOURCE_BYTES = 3 * 96 * 96;

/** Returns the value of image n at row r, column c, channel k. */
function pixel(n: number, r: number, c: number, k: number): number {
  return (n * 13 + r * 2 + c * 5 + k * 70) % 256;
}

/** Writes images in the STL-10 layout: colour planes, each column by column. */
function storedImages(count: number): Uint8Array {
  const bytes = new Uint8Array(count * SOURCE_BYTES);
  for (let n = 0; n < count; n++) {
    for (let k = 0; k < 3; k++) {
      for (let c = 0; c < 96; c++) {
        for (let r = 0; r < 96; r++) bytes[n * SOURCE_BYTES + k * 9216 + c * 96 + r] = pixel(n, r, c, k);
      }
    }
  }
  return bytes;
}

/**
 * Computes the antialiased bilinear 96 → 64 resize of one channel of an NHWC image, by the filter's
 * definition in exact integer arithmetic: with s = 1.5 every distance x + ½ − (i + ½)·s is a
 * multiple of ¼, so 6·max(0, 1 − |d|/s) = max(0, 6 − 4|d|) is an integer weight. Halves round up.
 */
function resizeByDefinition(source: Uint8Array, channel: number): number[] {
  const weight = (x: number, i: number): number => Math.max(0, 6 - Math.abs(4 * x + 2 - (4 * i + 2) * 1.5));
  const round = (sum: number, total: number): number => Math.floor((2 * sum + total) / (2 * total));
  const horizontal: number[] = [];
  for (let r = 0; r < 96; r++) {
    for (let j = 0; j < 64; j++) {
      let sum = 0;
      let total = 0;
      for (let x = 0; x < 96; x++) {
        sum += weight(x, j) * source[(r * 96 + x) * 3 + channel];
        total += weight(x, j);
      }
      horizontal.push(round(sum, total));
    }
  }
  const out: number[] = [];
  for (let i = 0; i < 64; i++) {
    for (let j = 0; j < 64; j++) {
      let sum = 0;
      let total = 0;
      for (let y = 0; y < 96; y++) {
        sum += weight(y, i) * horizontal[y * 64 + j];
        total += weight(y, i);
      }
      out.push(round(sum, total));
    }
  }
  return out;
}

describe('STL-10 loader', () => {
  let folder = '';
  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'ebflow-stl10-'));
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('decodes column-major planes to NHWC', () => {
    const decoded = new Uint8Array(SOURCE_BYTES);
    decodeStl10Image(storedImages(3).subarray(2 * SOURCE_BYTES), decoded);
    for (const [r, c, k] of [[0, 0, 0], [5, 90, 1], [95, 3, 2]]) {
      assert.equal(decoded[(r * 96 + c) * 3 + k], pixel(2, r, c, k), `row ${r}, column ${c}, channel ${k}`);
    }
  });

  it('resizes by the antialiased bilinear filter', () => {
    const source = new Uint8Array(SOURCE_BYTES);
    decodeStl10Image(storedImages(1), source);
    // A non-linear pattern, so the weights matter.
    for (let i = 0; i < source.length; i++) source[i] = (source[i] * source[i]) % 251;
    const out = new Uint8Array(64 * 64 * 3);
    resizeBilinear(source, 96, out, 64, 3);
    for (let channel = 0; channel < 3; channel++) {
      const expected = resizeByDefinition(source, channel);
      for (let p = 0; p < 64 * 64; p++) assert.equal(out[p * 3 + channel], expected[p], `pixel ${p}, channel ${channel}`);
    }
    // A constant image stays constant.
    const flat = new Uint8Array(SOURCE_BYTES).fill(77);
    resizeBilinear(flat, 96, out, 64, 3);
    assert.ok(out.every((v) => v === 77));
  });

  it('augments by clamped shifts and flips', () => {
    const source = new Uint8Array(SOURCE_BYTES);
    decodeStl10Image(storedImages(1), source);
    const out = new Uint8Array(SOURCE_BYTES);
    augmentStl10Image(source, out, { flipBefore: false, shiftX: 3, shiftY: -2, flipAfter: false });
    // Output (i, j) is source (clamp(i + 2), clamp(j − 3)).
    assert.equal(out[(10 * 96 + 10) * 3], pixel(0, 12, 7, 0));
    assert.equal(out[(95 * 96 + 0) * 3 + 1], pixel(0, 95, 0, 1));
    augmentStl10Image(source, out, { flipBefore: true, shiftX: 0, shiftY: 0, flipAfter: false });
    assert.equal(out[(4 * 96 + 0) * 3 + 2], pixel(0, 4, 95, 2));
    assert.throws(() => augmentStl10Image(source, out, { flipBefore: false, shiftX: 5, shiftY: 0, flipAfter: false }), /shifts must lie in ±4 pixels/);
  });

  it('loads 64×64 splits of the training file', async () => {
    const directory = join(folder, 'good');
    await mkdir(directory);
    await writeFile(join(directory, 'train_X.bin'), storedImages(3));
    const dataset = await loadStl10({ directory });
    assert.equal(dataset.name, 'stl10');
    assert.deepEqual(dataset.imageShape, [64, 64, 3]);
    assert.deepEqual(dataset.sizes, { train: 3, validation: 3, test: 3 });
    const plain = dataset.batch('train', [1]);
    const decoded = new Uint8Array(SOURCE_BYTES);
    decodeStl10Image(storedImages(3).subarray(SOURCE_BYTES, 2 * SOURCE_BYTES), decoded);
    const resized = new Uint8Array(64 * 64 * 3);
    resizeBilinear(decoded, 96, resized, 64, 3);
    assert.deepEqual(plain, resized);
    assert.deepEqual(dataset.batch('test', [1]), resized);

    // Augmentation draws from the stream: equal streams give equal batches, and some image changes.
    const first = dataset.batch('train', [0, 1, 2, 0, 1, 2], new RandomStream(4));
    assert.deepEqual(dataset.batch('train', [0, 1, 2, 0, 1, 2], new RandomStream(4)), first);
    assert.notDeepEqual(first, dataset.batch('train', [0, 1, 2, 0, 1, 2]));
    assert.deepEqual(dataset.batch('validation', [0], new RandomStream(4)), dataset.batch('validation', [0]), 'no augmentation outside train');
  });

  it('names the folder and file when absent', async () => {
    const missingFolder = join(folder, 'nowhere');
    await assert.rejects(loadStl10({ directory: missingFolder }), new RegExp(`folder ${missingFolder} not found\\. Expected .*train_X\\.bin from the STL-10 binary version`));
    const empty = join(folder, 'empty');
    await mkdir(empty);
    await assert.rejects(loadStl10({ directory: empty }), new RegExp(`train_X\\.bin not found in ${empty}\\.`));
    const short = join(folder, 'short');
    await mkdir(short);
    await writeFile(join(short, 'train_X.bin'), storedImages(1).subarray(0, 1000));
    await assert.rejects(loadStl10({ directory: short }), /has 1000 bytes, not a positive multiple of 27648/);
  });
});
