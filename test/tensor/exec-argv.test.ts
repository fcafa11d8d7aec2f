import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { workerExecArgv } from '../../src/tensor/threads/exec-argv.js';

const SELECT_MODULE = fileURLToPath(new URL('../../src/backend/select.js', import.meta.url));

describe('workerExecArgv', () => {
  test('drops --input-type in both spellings', () => {
    assert.deepEqual(workerExecArgv(['--input-type=module', '--no-warnings']), ['--no-warnings']);
    assert.deepEqual(workerExecArgv(['--input-type', 'module', '--trace-warnings']), ['--trace-warnings']);
    assert.deepEqual(workerExecArgv(['--input-type=commonjs']), []);
  });

  test('inherits options without --input-type', () => {
    // An explicit list with a V8 or per-process option would make new Worker throw.
    assert.equal(workerExecArgv(['--max-old-space-size=4096', '--title=bench']), undefined);
    assert.equal(workerExecArgv(['--expose-gc', '--stack-size=2000']), undefined);
    assert.equal(workerExecArgv([]), undefined);
  });
});

describe('worker threads under node options', () => {
  const folder = mkdtempSync(join(tmpdir(), 'ebflow-exec-argv-'));

  after(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  test('V8 options keep the workers', () => {
    const script = join(folder, 'select.mjs');
    writeFileSync(
      script,
      `import { selectBackend } from ${JSON.stringify(SELECT_MODULE)};
const selection = await selectBackend('wasm');
console.log(JSON.stringify({ blas: selection.blas.state, kernelThreads: selection.kernelThreads, lapackThreads: selection.lapackThreads }));
`,
    );
    for (const option of ['--max-old-space-size=4096', '--expose-gc']) {
      const child = spawnSync(process.execPath, [option, script], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(child.status, 0, `${option}: ${child.stderr}`);
      const report = JSON.parse(child.stdout) as {
        blas: string;
        kernelThreads: { threads: number; reason: string };
        lapackThreads: { threads: number; reason: string };
      };
      if (availableParallelism() < 2 || (process.env.EBFLOW_WASM_THREADS ?? '') === '1') continue;
      assert.equal(report.kernelThreads.threads, 2, `${option}: ${report.kernelThreads.reason}`);
      if (report.blas === 'loaded') assert.equal(report.lapackThreads.threads, 2, `${option}: ${report.lapackThreads.reason}`);
    }
  });
});
