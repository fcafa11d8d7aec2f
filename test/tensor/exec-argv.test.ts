import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { workerExecArgv } from '../../src/tensor/threads/exec-argv.js';

describe('workerExecArgv', () => {
  test('drops --input-type in both spellings', () => {
    assert.deepEqual(workerExecArgv(['--input-type=module', '--max-old-space-size=4096']), ['--max-old-space-size=4096']);
    assert.deepEqual(workerExecArgv(['--input-type', 'module', '--expose-gc']), ['--expose-gc']);
  });

  test('keeps every other option in order', () => {
    assert.deepEqual(workerExecArgv(['--expose-gc', '--stack-size=2000']), ['--expose-gc', '--stack-size=2000']);
    assert.deepEqual(workerExecArgv([]), []);
  });
});
