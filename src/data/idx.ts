/**
 * A reader of IDX files, the binary format of the MNIST distribution.
 *
 * An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the values in
 * row-major order. The magic number's bytes are 0, 0, the element type (0x08 = unsigned byte) and
 * the number of dimensions, so unsigned-byte images of shape [N, H, W] have magic 0x00000803 = 2051
 * and unsigned-byte labels of shape [N] have magic 0x00000801 = 2049. Only unsigned-byte files are
 * read, because MNIST uses no other element type.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/** The element type code of unsigned bytes in an IDX magic number. */
const UNSIGNED_BYTE_TYPE = 0x08;

/** Magic number of an unsigned-byte IDX file with three dimensions (MNIST images). */
export const IDX_IMAGES_MAGIC = 2051;
/** Magic number of an unsigned-byte IDX file with one dimension (MNIST labels). */
export const IDX_LABELS_MAGIC = 2049;

/** The decoded content of an IDX file. */
export interface IdxArray {
  /** The dimension sizes from the header, outermost first. */
  dimensions: number[];
  /** The values, row-major; a view into the file's bytes, not a copy. */
  data: Uint8Array;
}

/** The expected properties of a file; every mismatch is an error. */
export interface IdxExpectation {
  /** The magic number (2051 for images, 2049 for labels). */
  magic: number;
  /** The lowercase hex sha256 of the whole file, when it is pinned. */
  sha256?: string;
  /** A sentence telling the user how to restore the file, appended to every error. */
  fix: string;
}

/** The error thrown for a missing, truncated, corrupted or mismatching IDX file. */
export class IdxFileError extends Error {
  override readonly name = 'IdxFileError';

  constructor(
    readonly file: string,
    problem: string,
    fix: string,
  ) {
    super(`IDX reader: ${file}: ${problem}. ${fix}`);
  }
}

/**
 * Parses the bytes of an IDX file after checking the magic number and that the header's
 * dimensions account for every byte of the file. `file` names the source in errors. O(1): the
 * returned data is a view into `bytes`.
 */
export function parseIdx(bytes: Uint8Array, file: string, expected: IdxExpectation): IdxArray {
  if (bytes.length < 4) {
    throw new IdxFileError(file, `the file has ${bytes.length} bytes, fewer than the 4-byte magic number (truncated)`, expected.fix);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (magic !== expected.magic) {
    throw new IdxFileError(
      file,
      `invalid magic number ${magic} (0x${magic.toString(16).padStart(8, '0')}), expected ${expected.magic} ` +
        `(0x${expected.magic.toString(16).padStart(8, '0')})`,
      expected.fix,
    );
  }
  // The expected magic fixes the element type and the number of dimensions.
  const elementType = (magic >>> 8) & 0xff;
  if (elementType !== UNSIGNED_BYTE_TYPE || magic >>> 16 !== 0) {
    throw new RangeError(
      `IDX reader: expected magic ${expected.magic} does not describe unsigned bytes; only type 0x08 is supported`,
    );
  }
  const dimensionCount = magic & 0xff;

  const headerLength = 4 + 4 * dimensionCount;
  if (bytes.length < headerLength) {
    throw new IdxFileError(
      file,
      `the file has ${bytes.length} bytes, fewer than its ${headerLength}-byte header (truncated)`,
      expected.fix,
    );
  }
  const dimensions: number[] = [];
  let valueCount = 1;
  for (let i = 0; i < dimensionCount; i++) {
    const size = view.getUint32(4 + 4 * i, false);
    dimensions.push(size);
    valueCount *= size;
  }

  const expectedLength = headerLength + valueCount;
  if (bytes.length !== expectedLength) {
    const kind = bytes.length < expectedLength ? 'truncated' : 'has trailing bytes';
    throw new IdxFileError(
      file,
      `the header declares dimensions [${dimensions.join(', ')}], which need ${expectedLength} bytes, ` +
        `but the file has ${bytes.length} (${kind})`,
      expected.fix,
    );
  }
  return { dimensions, data: bytes.subarray(headerLength) };
}

/** Returns the lowercase hex sha256 of `bytes`. O(size). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Reads and parses an IDX file, checking the magic number, the header against the file size and,
 * when `expected.sha256` is set, the checksum. Throws an `IdxFileError` naming the file
 * and the fix when the file is missing or fails a check. O(file size).
 */
export async function readIdxFile(path: string, expected: IdxExpectation): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'file not found' : `cannot read the file (${(error as Error).message})`;
    throw new IdxFileError(path, problem, expected.fix);
  }

  // The header checks run first because they name the cause (truncation, wrong file type), while
  // a checksum mismatch only shows that something differs.
  const parsed = parseIdx(bytes, path, expected);
  if (expected.sha256 !== undefined) {
    const actual = sha256Hex(bytes);
    if (actual !== expected.sha256) {
      throw new IdxFileError(
        path,
        `sha256 checksum mismatch: the file has ${actual}, expected ${expected.sha256} (corrupted or a different file)`,
        expected.fix,
      );
    }
  }
  return parsed;
}
