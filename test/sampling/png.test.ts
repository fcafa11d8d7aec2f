import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 as zlibCrc32, inflateSync } from 'node:zlib';

import { crc32, encodePng } from '../../src/sampling/png.js';

/** Splits a PNG file into its chunks, checking each chunk's CRC with node:zlib's CRC-32. */
function chunks(file: Buffer): { type: string; data: Buffer }[] {
  const out: { type: string; data: Buffer }[] = [];
  let offset = 8;
  while (offset < file.length) {
    const length = file.readUInt32BE(offset);
    const type = file.subarray(offset + 4, offset + 8).toString('ascii');
    const data = file.subarray(offset + 8, offset + 8 + length);
    const stored = file.readUInt32BE(offset + 8 + length);
    assert.equal(stored, zlibCrc32(file.subarray(offset + 4, offset + 8 + length)), `CRC of ${type}`);
    out.push({ type, data });
    offset += 12 + length;
  }
  return out;
}

describe('PNG encoder', () => {
  it('writes decodable grey and RGB images', () => {
    for (const channels of [1, 3] as const) {
      const width = 5;
      const height = 3;
      const pixels = Uint8Array.from({ length: width * height * channels }, (_, i) => (i * 37) % 256);
      const file = encodePng({ width, height, channels, pixels });
      assert.deepEqual([...file.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      const parts = chunks(file);
      assert.deepEqual(parts.map((p) => p.type), ['IHDR', 'IDAT', 'IEND']);
      const header = parts[0].data;
      assert.equal(header.readUInt32BE(0), width);
      assert.equal(header.readUInt32BE(4), height);
      assert.deepEqual([...header.subarray(8)], [8, channels === 1 ? 0 : 2, 0, 0, 0]);

      const raw = inflateSync(parts[1].data);
      const rowBytes = width * channels;
      assert.equal(raw.length, height * (rowBytes + 1));
      for (let row = 0; row < height; row++) {
        assert.equal(raw[row * (rowBytes + 1)], 0, `filter byte of row ${row}`);
        assert.deepEqual([...raw.subarray(row * (rowBytes + 1) + 1, (row + 1) * (rowBytes + 1))], [...pixels.subarray(row * rowBytes, (row + 1) * rowBytes)]);
      }
    }
  });

  it('computes the standard CRC-32', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 131) % 256);
    assert.equal(crc32(bytes), zlibCrc32(bytes));
  });

  it('rejects inconsistent sizes', () => {
    assert.throws(() => encodePng({ width: 2, height: 2, channels: 3, pixels: new Uint8Array(11) }), /needs 12 bytes, received 11/);
    assert.throws(() => encodePng({ width: 0, height: 2, channels: 1, pixels: new Uint8Array(0) }), /width and height must be positive integers/);
  });
});
