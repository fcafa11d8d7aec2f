import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { ResultsLock, ResultsLockError } from '../../src/runner/lock.js';

const folders: string[] = [];
after(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

function resultsRoot(): string {
  const folder = mkdtempSync(join(tmpdir(), 'ebflow-lock-'));
  folders.push(folder);
  return folder;
}

function ownerFile(root: string, name: string, pid: number): void {
  writeFileSync(join(root, name), JSON.stringify({ pid, hostname: hostname(), startedAt: '2026-01-01T00:00:00.000Z' }));
}

describe('ResultsLock', () => {
  it('second run of a scenario is rejected', () => {
    const root = resultsRoot();
    const first = ResultsLock.acquire(root, 'smoke', null);
    assert.throws(
      () => ResultsLock.acquire(root, 'smoke', null),
      (error: Error) => error instanceof ResultsLockError && error.message.includes(`pid ${process.pid}`) && error.message.includes('.smoke.lock'),
    );
    first.lock.release();
    assert.equal(existsSync(join(root, '.smoke.lock')), false);
    const again = ResultsLock.acquire(root, 'smoke', null);
    again.lock.release();
  });

  it('shards exclude each other only as needed', () => {
    const root = resultsRoot();
    const shardOne = ResultsLock.acquire(root, 'smoke', { index: 1, count: 2 });
    const shardTwo = ResultsLock.acquire(root, 'smoke', { index: 2, count: 2 });
    const otherScenario = ResultsLock.acquire(root, 'default', null);
    assert.throws(() => ResultsLock.acquire(root, 'smoke', null), ResultsLockError);
    assert.throws(() => ResultsLock.acquire(root, 'smoke', { index: 1, count: 2 }), ResultsLockError);
    assert.throws(() => ResultsLock.acquire(root, 'smoke', { index: 1, count: 3 }), ResultsLockError);
    for (const acquired of [shardOne, shardTwo, otherScenario]) acquired.lock.release();
    assert.deepEqual(readdirSync(root), []);
  });

  it('stale lock of an exited process is replaced', async () => {
    const root = resultsRoot();
    const child = spawn(process.execPath, ['-e', '']);
    const pid = child.pid as number;
    await new Promise((resolve) => child.on('exit', resolve));
    ownerFile(root, '.smoke.lock', pid);
    const acquired = ResultsLock.acquire(root, 'smoke', null);
    assert.deepEqual(acquired.replaced, [join(root, '.smoke.lock')]);
    acquired.lock.release();
  });

  it('unreadable lock file counts as stale', () => {
    const root = resultsRoot();
    writeFileSync(join(root, '.smoke.shard-1-of-3.lock'), 'not json');
    const acquired = ResultsLock.acquire(root, 'smoke', null);
    assert.equal(acquired.replaced.length, 1);
    acquired.lock.release();
  });
});
