/**
 * A minimal PNG encoder for 8-bit RGB images (PNG specification, ISO/IEC 15948): the signature,
 * one IHDR chunk, one zlib-compressed IDAT chunk with filter type 0 on every scanline, and IEND.
 */
import { deflateSync } from 'node:zlib';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** CRC-32 (polynomial 0xEDB88320) lookup table, as the PNG chunk checksum uses. */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** Returns the CRC-32 of `bytes`. O(length). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const checksum = Buffer.alloc(4);
  checksum.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, checksum]);
}

/**
 * Encodes an RGB image (`width × height × 3` bytes, rows top to bottom) as a PNG file.
 * O(width·height).
 */
export function encodeRgbPng(rgb: Uint8Array, width: number, height: number): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`encodeRgbPng: width and height must be positive integers, received ${width} × ${height}`);
  }
  if (rgb.length !== width * height * 3) {
    throw new RangeError(`encodeRgbPng: expected ${width} × ${height} × 3 = ${width * height * 3} bytes, received ${rgb.length}`);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: truecolour RGB
  // Bytes 10–12: deflate compression, adaptive filtering, no interlace (all 0).

  // Every scanline starts with its filter type byte (0: none).
  const stride = width * 3;
  const scanlines = Buffer.alloc(height * (stride + 1));
  for (let row = 0; row < height; row++) {
    scanlines.set(rgb.subarray(row * stride, (row + 1) * stride), row * (stride + 1) + 1);
  }
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', header), chunk('IDAT', deflateSync(scanlines)), chunk('IEND', new Uint8Array(0))]);
}
