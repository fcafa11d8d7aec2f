import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { parseRecord } from '../../src/runner/results.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'sweep-child.js');
const folders: string[] = [];
after(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

interface ChildResult {
  killed: boolean;
  code: number | null;
  output: string;
}

/** Runs the child sweep; kills it with SIGKILL as soon as it prints STALLED. */
function runChild(options: object): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD], {
      env: { ...process.env, EBFLOW_SWEEP_CHILD: JSON.stringify(options) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sweep child timed out; output so far: ${output}`));
    }, 30_000);
    const collect = (chunk: Buffer): void => {
      output += chunk.toString();
      if (!killed && output.includes('STALLED')) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ killed, code, output });
    });
  });
}

describe('sweep killed and restarted', () => {
  it('completes every cell exactly once', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ebflow-crash-'));
    folders.push(root);
    const log = join(root, 'done.log');
    const folder = join(root, 'fake-sweep');

    const kills = [
      { at: 'step', cell: 3, step: 2 },
      { at: 'rename', cell: 2 },
      { at: 'evaluate', cell: 1 },
      { at: 'rename', cell: 1 },
    ];
    for (const stall of kills) {
      const result = await runChild({ root, log, stall });
      assert.ok(result.killed, `the child did not reach ${JSON.stringify(stall)}: ${result.output}`);
      assert.notEqual(result.code, 0);
      // After every kill, every record file on disk parses.
      for (const name of readdirSync(folder).filter((n) => n.endsWith('.json'))) {
        const text = readFileSync(join(folder, name), 'utf8');
        if (name === 'scenario.json') assert.doesNotThrow(() => JSON.parse(text), name);
        else assert.equal(typeof parseRecord(text), 'object', name);
      }
    }
    const temporary = readdirSync(folder).filter((name) => name.endsWith('.tmp'));
    assert.ok(temporary.length >= 1, 'a kill between write and rename left no temporary file');

    const final = await runChild({ root, log });
    assert.equal(final.killed, false);
    assert.equal(final.code, 0, final.output);
    assert.match(final.output, /FINISHED/);

    const done = readFileSync(log, 'utf8').trim().split('\n').map((line) => line.replace(/^DONE /, ''));
    const counts = new Map<string, number>();
    for (const cellId of done) counts.set(cellId, (counts.get(cellId) ?? 0) + 1);
    assert.equal(counts.size, 10, `cells completed: ${[...counts.keys()].join(', ')}`);
    for (const [cellId, count] of counts) assert.equal(count, 1, `${cellId} completed ${count} times`);

    const names = readdirSync(folder);
    assert.equal(names.filter((name) => name.endsWith('.tmp')).length, 0);
    const records = names.filter((name) => name.endsWith('.json') && name !== 'scenario.json');
    assert.equal(records.length, 10);
    for (const name of records) {
      const record = parseRecord(readFileSync(join(folder, name), 'utf8'));
      assert.equal(typeof record, 'object', name);
      assert.equal(typeof record === 'object' ? record.outcome.status : record, 'completed', name);
    }
    assert.ok(existsSync(join(folder, 'scenario.json')));
  });
});
