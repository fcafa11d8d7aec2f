/**
 * A minimal PNG encoder for 8-bit grey or RGB images, built on node:zlib's deflate. It writes
 * the signature, one IHDR chunk, one IDAT chunk (every scanline with filter type 0, "None") and
 * IEND, as the PNG specification (ISO/IEC 15948) defines them. No colour profile, gamma or text.
 */
import { writeFile } from 'node:fs/promises';
import { deflateSync } from 'node:zlib';

/** An 8-bit image, row-major, channels interleaved. */
export interface RasterImage {
  width: number;
  height: number;
  /** 1 (grey) or 3 (RGB). */
  channels: 1 | 3;
  /** width·height·channels bytes. */
  pixels: Uint8Array;
}

const SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** PNG colour types: 0 grey, 2 truecolour (RGB). */
const COLOUR_TYPE: Record<1 | 3, number> = { 1: 0, 3: 2 };

/** Returns the PNG file bytes of `image`. O(width·height·channels) plus deflate. */
export function encodePng(image: RasterImage): Buffer {
  const { width, height, channels, pixels } = image;
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1) {
    throw new RangeError(`PNG encoder: width and height must be positive integers, received ${width}×${height}`);
  }
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`PNG encoder: channels must be 1 (grey) or 3 (RGB), received ${channels}`);
  }
  const rowBytes = width * channels;
  if (pixels.length !== rowBytes * height) {
    throw new RangeError(
      `PNG encoder: a ${width}×${height} image with ${channels} channel(s) needs ${rowBytes * height} bytes, received ${pixels.length}`,
    );
  }

  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = COLOUR_TYPE[channels];
  header[10] = 0; // compression method: deflate
  header[11] = 0; // filter method: adaptive filtering with five basic types
  header[12] = 0; // no interlace

  // Each scanline starts with its filter-type byte, 0 = None.
  const scanlines = Buffer.alloc((rowBytes + 1) * height);
  for (let row = 0; row < height; row++) {
    scanlines.set(pixels.subarray(row * rowBytes, (row + 1) * rowBytes), row * (rowBytes + 1) + 1);
  }

  return Buffer.concat([
    SIGNATURE,
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(scanlines)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Encodes `image` and writes it to `path`. */
export async function writePng(path: string, image: RasterImage): Promise<void> {
  await writeFile(path, encodePng(image));
}

/** Builds one chunk: length, type, data, and the CRC-32 of type and data. */
function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

let crcTable: Uint32Array | null = null;

/** Returns the CRC-32 (polynomial 0xEDB88320, as PNG and zlib use) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  if (crcTable === null) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
