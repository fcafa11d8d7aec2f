import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { projectRoot } from '../../src/scenarios/catalog.js';

const TOYS = join(projectRoot(), 'dist', 'src', 'cli', 'toys.js');

describe('toys', () => {
  const folder = mkdtempSync(join(tmpdir(), 'ebflow-toys-'));

  after(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  it('record keeps the backend selection', () => {
    const argv = ['--dataset', 'multimodal10', '--iterations', '1', '--batch', '8', '--evaluation-points', '16', '--train-points', '64', '--blocks', '1'];
    const result = spawnSync(process.execPath, [TOYS, ...argv, '--backend', 'wasm', '--out', folder], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(result.status, 0, result.stderr);
    const recordPath = result.stdout.trim().split('\n').at(-1) ?? '';
    const record = JSON.parse(readFileSync(recordPath, 'utf8')) as { environment: Record<string, unknown> };
    assert.equal(record.environment.backend, 'wasm');
    assert.ok(record.environment.kernelThreads !== undefined, 'kernelThreads missing');
    const lapackThreads = record.environment.lapackThreads as { threads: number; reason: string } | undefined;
    assert.ok(lapackThreads !== undefined, 'lapackThreads missing');
    assert.ok(lapackThreads.threads === 1 || lapackThreads.threads === 2, `threads ${lapackThreads.threads}`);
    assert.notEqual(lapackThreads.reason, '');
  });
});
