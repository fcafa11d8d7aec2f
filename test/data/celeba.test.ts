import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { loadCeleba } from '../../src/data/celeba.js';

const IMAGE_BYTES = 64 * 64 * 3;

/** Returns the byte written for image n, row i, column j, channel c. */
function pixel(n: number, i: number, j: number, c: number): number {
  return (n * 31 + i * 7 + j * 3 + c * 101) % 256;
}

function imagesFile(count: number): Uint8Array {
  const bytes = new Uint8Array(count * IMAGE_BYTES);
  for (let n = 0; n < count; n++) {
    for (let i = 0; i < 64; i++) {
      for (let j = 0; j < 64; j++) {
        for (let c = 0; c < 3; c++) bytes[n * IMAGE_BYTES + (i * 64 + j) * 3 + c] = pixel(n, i, j, c);
      }
    }
  }
  return bytes;
}

describe('CelebA loader', () => {
  let folder = '';
  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'ebflow-celeba-'));
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('reads NHWC crops into three equal splits', async () => {
    const directory = join(folder, 'good');
    await mkdir(directory);
    await writeFile(join(directory, 'images.bin'), imagesFile(5));
    const dataset = await loadCeleba({ directory, limit: 4 });
    assert.equal(dataset.name, 'celeba');
    assert.deepEqual(dataset.imageShape, [64, 64, 3]);
    assert.equal(dataset.dimension, IMAGE_BYTES);
    assert.deepEqual(dataset.sizes, { train: 4, validation: 4, test: 4 });
    assert.equal(dataset.augmentsTraining, false);
    const batch = dataset.batch('test', [3, 1]);
    assert.equal(batch.length, 2 * IMAGE_BYTES);
    assert.equal(batch[(10 * 64 + 20) * 3 + 2], pixel(3, 10, 20, 2));
    assert.equal(batch[IMAGE_BYTES + (63 * 64 + 5) * 3], pixel(1, 63, 5, 0));
    assert.deepEqual(dataset.batch('train', [2]), dataset.batch('validation', [2]));
    assert.throws(() => dataset.batch('train', [4]), /index 4 .* outside the train split, which has images 0 … 3/);
  });

  it('names the folder and file when absent', async () => {
    const missingFolder = join(folder, 'nowhere');
    await assert.rejects(loadCeleba({ directory: missingFolder }), new RegExp(`folder ${missingFolder} not found\\. Expected .*images\\.bin: 64×64×3 CelebA crops`));
    const empty = join(folder, 'empty');
    await mkdir(empty);
    await assert.rejects(loadCeleba({ directory: empty }), new RegExp(`images\\.bin not found in ${empty}\\. Expected`));
  });

  it('rejects a truncated file', async () => {
    const directory = join(folder, 'short');
    await mkdir(directory);
    await writeFile(join(directory, 'images.bin'), imagesFile(2).subarray(0, IMAGE_BYTES + 100));
    await assert.rejects(loadCeleba({ directory }), /has 12388 bytes, not a positive multiple of 12288/);
  });
});
