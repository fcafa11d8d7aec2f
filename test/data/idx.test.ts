import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IdxFileError, parseIdx, readIdxFile, sha256Hex } from '../../src/data/idx.js';

const FIX = 'Restore the test file.';

/** Builds an IDX file: big-endian magic, big-endian dimension sizes, then the given payload. */
function idxBytes(magic: number, dimensions: number[], payload: number[]): Uint8Array {
  const header = new DataView(new ArrayBuffer(4 + 4 * dimensions.length));
  header.setUint32(0, magic, false);
  dimensions.forEach((size, i) => header.setUint32(4 + 4 * i, size, false));
  const bytes = new Uint8Array(header.byteLength + payload.length);
  bytes.set(new Uint8Array(header.buffer), 0);
  bytes.set(payload, header.byteLength);
  return bytes;
}

describe('IDX reader', () => {
  let folder: string;
  const imagePayload = Array.from({ length: 3 * 2 * 2 }, (_, i) => (i * 37) % 256);

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'ebflow-idx-'));
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('parses a valid image file', async () => {
    const path = join(folder, 'valid-images');
    await writeFile(path, idxBytes(IDX_IMAGES_MAGIC, [3, 2, 2], imagePayload));
    const parsed = await readIdxFile(path, { magic: IDX_IMAGES_MAGIC, fix: FIX });
    assert.deepEqual(parsed.dimensions, [3, 2, 2]);
    assert.deepEqual(Array.from(parsed.data), imagePayload);
  });

  it('parses a valid label file', () => {
    const parsed = parseIdx(idxBytes(IDX_LABELS_MAGIC, [4], [7, 0, 9, 1]), 'labels', { magic: IDX_LABELS_MAGIC, fix: FIX });
    assert.deepEqual(parsed.dimensions, [4]);
    assert.deepEqual(Array.from(parsed.data), [7, 0, 9, 1]);
  });

  it('accepts a matching checksum', async () => {
    const bytes = idxBytes(IDX_IMAGES_MAGIC, [3, 2, 2], imagePayload);
    const path = join(folder, 'pinned-images');
    await writeFile(path, bytes);
    const parsed = await readIdxFile(path, { magic: IDX_IMAGES_MAGIC, sha256: sha256Hex(bytes), fix: FIX });
    assert.equal(parsed.data.length, 12);
  });

  it('rejects a truncated file', async () => {
    const bytes = idxBytes(IDX_IMAGES_MAGIC, [3, 2, 2], imagePayload).subarray(0, 4 + 12 + 11);
    const path = join(folder, 'truncated-images');
    await writeFile(path, bytes);
    await assert.rejects(readIdxFile(path, { magic: IDX_IMAGES_MAGIC, fix: FIX }), (error: Error) => {
      assert.ok(error instanceof IdxFileError);
      assert.match(error.message, /truncated/);
      assert.ok(error.message.includes(path), error.message);
      assert.ok(error.message.includes(FIX), error.message);
      return true;
    });
  });

  it('rejects a file cut inside its header', () => {
    const bytes = idxBytes(IDX_IMAGES_MAGIC, [3, 2, 2], imagePayload).subarray(0, 9);
    assert.throws(() => parseIdx(bytes, 'short', { magic: IDX_IMAGES_MAGIC, fix: FIX }), /fewer than its 16-byte header/);
  });

  it('rejects a wrong magic number', () => {
    const bytes = idxBytes(IDX_LABELS_MAGIC, [3], [1, 2, 3]);
    assert.throws(
      () => parseIdx(bytes, 'labels-as-images', { magic: IDX_IMAGES_MAGIC, fix: FIX }),
      /labels-as-images: invalid magic number 2049 \(0x00000801\), expected 2051/,
    );
  });

  it('rejects dimensions larger than the file', () => {
    const bytes = idxBytes(IDX_IMAGES_MAGIC, [4, 2, 2], imagePayload);
    assert.throws(
      () => parseIdx(bytes, 'too-few-values', { magic: IDX_IMAGES_MAGIC, fix: FIX }),
      /dimensions \[4, 2, 2\], which need 32 bytes, but the file has 28 \(truncated\)/,
    );
  });

  it('rejects dimensions smaller than the file', () => {
    const bytes = idxBytes(IDX_IMAGES_MAGIC, [2, 2, 2], imagePayload);
    assert.throws(() => parseIdx(bytes, 'extra-values', { magic: IDX_IMAGES_MAGIC, fix: FIX }), /has trailing bytes/);
  });

  it('rejects a checksum mismatch', async () => {
    const bytes = idxBytes(IDX_IMAGES_MAGIC, [3, 2, 2], imagePayload);
    const expected = sha256Hex(bytes);
    bytes[bytes.length - 1] ^= 0xff;
    const path = join(folder, 'corrupted-images');
    await writeFile(path, bytes);
    await assert.rejects(
      readIdxFile(path, { magic: IDX_IMAGES_MAGIC, sha256: expected, fix: FIX }),
      new RegExp(`sha256 checksum mismatch: the file has [0-9a-f]{64}, expected ${expected}`),
    );
  });

  it('names a missing file and the fix', async () => {
    const path = join(folder, 'absent');
    await assert.rejects(readIdxFile(path, { magic: IDX_IMAGES_MAGIC, fix: FIX }), (error: Error) => {
      assert.equal(error.message, `IDX reader: ${path}: file not found. ${FIX}`);
      return true;
    });
  });
});
