/**
 * The first processor's fields of Linux's /proc/cpuinfo, shared by the OpenBLAS kernel choice
 * (its `flags`) and the gate's CPU signature (`vendor_id`, `cpu family`, `model`).
 */
import { readFileSync } from 'node:fs';

/**
 * Returns the "name : value" fields of the first processor block of `path`, names and values
 * trimmed, or null where the file cannot be read (outside Linux). O(file size).
 */
export function readFirstProcessor(path = '/proc/cpuinfo'): Map<string, string> | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    // A blank line ends the first processor's block.
    if (line.trim() === '') {
      if (fields.size > 0) break;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return fields;
}
