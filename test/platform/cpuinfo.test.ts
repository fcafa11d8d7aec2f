import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { readFirstProcessor } from '../../src/platform/cpuinfo.js';

test('first processor block only', () => {
  const folder = mkdtempSync(join(tmpdir(), 'ebflow-cpuinfo-'));
  try {
    const file = join(folder, 'cpuinfo');
    writeFileSync(file, '\nprocessor\t: 0\nmodel\t\t: 207\nmodel name\t: Xeon: test\nflags\t\t:\n\nprocessor\t: 1\nmodel\t\t: 1\n');
    const fields = readFirstProcessor(file);
    assert.equal(fields?.get('model'), '207');
    assert.equal(fields?.get('model name'), 'Xeon: test');
    assert.equal(fields?.get('flags'), '');
    assert.equal(fields?.get('processor'), '0');
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test('missing cpuinfo file', () => {
  assert.equal(readFirstProcessor(join(tmpdir(), 'ebflow-no-such-cpuinfo')), null);
});
