import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { projectRoot } from '../../src/scenarios/catalog.js';

const BENCH_LINALG = join(projectRoot(), 'dist', 'src', 'cli', 'bench-linalg.js');

function run(argv: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [BENCH_LINALG, ...argv], { encoding: 'utf8', timeout: 60_000 });
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
      const pair = rows.find((line) => line.includes('two of them at once ran at'));
      assert.match(pair ?? '', /ran at \d+\.\d\d of the D×D·D×D rate and \d+\.\d\d of the 100×D·D×D rate \(medians\)$/);
    }
  });

  it('invalid size rejected', () => {
    const result = run(['--sizes', '0']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--sizes must be a comma-separated list of positive integers, received '0'/);
  });
});
