/**
 * Small CIFAR-10 binary batch files for tests: the official layout with fewer records per file.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { CIFAR10_FILES, CIFAR10_RECORD_BYTES } from '../../src/data/cifar10.js';

const SIDE = 32;
const PLANE = SIDE * SIDE;

export const CIFAR10_FILE_ORDER = [...CIFAR10_FILES.train, ...CIFAR10_FILES.validation, ...CIFAR10_FILES.test];

/** Returns the byte written for global record `record`, channel `channel`, pixel (row, column). */
export function fixturePixel(record: number, channel: number, row: number, column: number): number {
  return (record * 7 + channel * 85 + row * 3 + column * 5) % 256;
}

/** Builds one binary batch file of `records` records numbered from `first`, with label = record mod 10. */
export function fixtureBatchFile(first: number, records: number): Uint8Array {
  const bytes = new Uint8Array(records * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < records; r++) {
    const record = first + r;
    const base = r * CIFAR10_RECORD_BYTES;
    bytes[base] = record % 10;
    for (let c = 0; c < 3; c++) {
      for (let row = 0; row < SIDE; row++) {
        for (let column = 0; column < SIDE; column++) {
          bytes[base + 1 + c * PLANE + row * SIDE + column] = fixturePixel(record, c, row, column);
        }
      }
    }
  }
  return bytes;
}

/** Writes the six batch files into `folder`, file f holding records f·records … (f+1)·records − 1. */
export async function writeFixtureBatches(folder: string, records: number): Promise<void> {
  await mkdir(folder, { recursive: true });
  for (let f = 0; f < CIFAR10_FILE_ORDER.length; f++) {
    await writeFile(join(folder, CIFAR10_FILE_ORDER[f]), fixtureBatchFile(f * records, records));
  }
}
