import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { projectRoot } from '../../src/scenarios/catalog.js';

const BENCH_LINALG = join(projectRoot(), 'dist', 'src', 'cli', 'bench-linalg.js');

function run(argv: string[], environment: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [BENCH_LINALG, ...argv], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...environment } });
}

describe('bench-linalg', () => {
  it('rates and the baseline line per size', () => {
    const result = run(['--sizes', '8,16', '--repeats', '1', '--no-reference', '--backend', 'wasm']);
    assert.equal(result.status, 0, result.stderr);
    for (const size of [8, 16]) {
      const rows = result.stdout.split('\n').filter((line) => line.trimStart().startsWith(`${size} `));
      assert.ok(rows.some((line) => line.includes('logAbsDet + gradient')), result.stdout);
      const baseline = rows.find((line) => line.includes('log|det W| with W⁻ᵀ ran at'));
      assert.match(baseline ?? '', /ran at \d+\.\d\d of the D×D·D×D rate and \d+\.\d\d of the 100×D·D×D rate \(medians\)$/);
      assert.ok(rows.some((line) => line.includes('sumLogAbsDet ×2 ')), result.stdout);
      const pair = rows.find((line) => /two of them (at once|on one thread) ran at/.test(line));
      assert.match(pair ?? '', /ran at \d+\.\d\d of the D×D·D×D rate and \d+\.\d\d of the 100×D·D×D rate \(medians\)$/);
    }
  });

  it('one-thread LU rows with OpenBLAS', (t) => {
    const result = run(['--sizes', '40', '--repeats', '1', '--no-reference', '--backend', 'wasm']);
    assert.equal(result.status, 0, result.stderr);
    if (!/recursive LU/.test(result.stdout)) {
      if (process.env.EBFLOW_REQUIRE_BLAS === '1') assert.fail(`EBFLOW_REQUIRE_BLAS=1 but the recursive LU is off:\n${result.stdout}`);
      return t.skip('OpenBLAS with the recursive LU not loaded');
    }
    assert.match(result.stdout, /^ +40 1 thread: LU \+ invertLu +\d/m);
    assert.match(result.stdout, /^ +40 1 thread: sgetrf \+ sgetri +\d/m);
  });

  it('invalid size rejected', () => {
    const result = run(['--sizes', '0']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--sizes must be a comma-separated list of positive integers, received '0'/);
  });

  it('pair line on one thread', () => {
    const result = run(['--sizes', '8', '--repeats', '1', '--no-reference', '--backend', 'wasm'], { EBFLOW_WASM_THREADS: '1' });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /LAPACK threads: 1 /);
    assert.match(result.stdout, /^ +8 two of them on one thread ran at \d+\.\d\d of the D×D·D×D rate/m);
    assert.doesNotMatch(result.stdout, /worker off/);
  });

  it('oversized size rejected', () => {
    const result = run(['--sizes', '256,99999', '--no-reference']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--sizes contains 99999, whose D×D float32 matrix alone needs more than the 4 GiB/);
    assert.match(result.stderr, /Use sizes up to 32767\./);
  });

  it('missing option value rejected', () => {
    const result = run(['--sizes', '--no-reference']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /bench-linalg: --sizes needs a value/);
  });

  it('unloadable EBFLOW_BLAS library rejected', () => {
    const folder = mkdtempSync(join(tmpdir(), 'bench-linalg-'));
    const library = join(folder, 'libnot-a-library.so');
    writeFileSync(library, 'not a shared library\n');
    try {
      const result = run(['--sizes', '8', '--repeats', '1', '--no-reference', '--backend', 'wasm'], { EBFLOW_BLAS: library });
      assert.equal(result.status, 2, result.stderr);
      // Without koffi no library can load, and the message tells the user to run `npm ci` instead.
      assert.match(result.stderr, /^selectBackend: (EBFLOW_BLAS='.*libnot-a-library\.so' failed to load|the optional package koffi is not installed)/);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'a caller\'s setting is reported without a stack trace');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
