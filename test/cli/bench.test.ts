import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { projectRoot, shippedScenarioNames } from '../../src/scenarios/catalog.js';

const BENCH = join(projectRoot(), 'dist', 'src', 'cli', 'bench.js');
const folders: string[] = [];
after(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

function bench(...argv: string[]): { status: number | null; stdout: string; stderr: string } {
  return benchWithEnvironment({}, ...argv);
}

function benchWithEnvironment(environment: Record<string, string>, ...argv: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BENCH, ...argv], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...environment } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('bench command', () => {
  it('invalid argument exits 2 naming it', () => {
    const result = bench('--shard', '9/2');
    assert.equal(result.status, 2);
    assert.match(result.stderr, /"9\/2"/);
  });

  it('--list shows every shipped scenario', () => {
    const result = bench('--list');
    assert.equal(result.status, 0, result.stderr);
    for (const name of shippedScenarioNames()) assert.match(result.stdout, new RegExp(`^${name} +\\(\\d+ cells, ~`, 'm'), name);
    assert.match(result.stdout, /default .*\[default\]/);
  });

  it('--help prints usage', () => {
    const result = bench('--help');
    assert.equal(result.status, 0);
    assert.match(result.stdout, /^Usage: npm run bench/);
  });

  it('--dry-run lists the shard cells', () => {
    const root = mkdtempSync(join(tmpdir(), 'ebflow-cli-'));
    folders.push(root);
    const result = bench('smoke', '--dry-run', '--results', root, '--shard', '1/2');
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.stdout.trim().split('\n'), ['mnist/fc/dsm/D784/L2/B100/seed0', 'mnist/fc/ml/D784/L2/B100/seed0', 'mnist/fc/ssm/D784/L2/B100/seed0']);
    assert.match(result.stderr, /5 cells, 3 selected, 0 already recorded, 3 would run/);
  });

  it('--only matching no cell exits 2', () => {
    const root = mkdtempSync(join(tmpdir(), 'ebflow-cli-'));
    folders.push(root);
    const result = bench('smoke', '--only', 'cifar10/zzz', '--results', root, '--no-report');
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /--only cifar10\/zzz selects no cell; list the cell ids with --dry-run/);
  });

  it('--dry-run --only matching no cell exits 2', () => {
    const root = mkdtempSync(join(tmpdir(), 'ebflow-cli-'));
    folders.push(root);
    const result = bench('smoke', '--dry-run', '--only', 'cifar10/zzz', '--results', root);
    assert.equal(result.status, 2, result.stderr);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /--only cifar10\/zzz selects no cell; list the cell ids with --dry-run/);
  });

  it('--dry-run rejects invalid engine variables', () => {
    const backend = benchWithEnvironment({ EBFLOW_BACKEND: 'tpu' }, 'smoke', '--dry-run');
    assert.equal(backend.status, 2);
    assert.match(backend.stderr, /invalid EBFLOW_BACKEND "tpu"; set it to one of auto, gpu, node, wasm, cpu/);
    const threads = benchWithEnvironment({ EBFLOW_BLAS_THREADS: '0' }, 'smoke', '--dry-run');
    assert.equal(threads.status, 2);
    assert.match(threads.stderr, /EBFLOW_BLAS_THREADS must be a positive integer, received '0'/);
    const library = benchWithEnvironment({ EBFLOW_BLAS: '/nonexistent/libmissing.so' }, 'smoke', '--dry-run');
    assert.equal(library.status, 2);
    assert.match(library.stderr, /EBFLOW_BLAS='\/nonexistent\/libmissing\.so' names a file that does not exist/);
    const kernelThreads = benchWithEnvironment({ EBFLOW_WASM_THREADS: '0' }, 'smoke', '--dry-run');
    assert.equal(kernelThreads.status, 2);
    assert.match(kernelThreads.stderr, /EBFLOW_WASM_THREADS is "0", not an integer from 1 to 16/);
  });

  it('invalid scenario file lists its problems', () => {
    const root = mkdtempSync(join(tmpdir(), 'ebflow-cli-'));
    folders.push(root);
    const file = join(root, 'broken.json');
    writeFileSync(
      file,
      JSON.stringify({ name: 'broken', description: 'x', grid: { datasets: ['mnist'], architectures: ['cnn'], objectives: ['sm'], imageSides: [30] }, measure: { kind: 'runtime', iterations: 0 } }),
    );
    const result = bench(file, '--dry-run');
    assert.equal(result.status, 2);
    for (const path of ['$.grid.objectives[0]', '$.grid.imageSides[0]', '$.measure.iterations']) assert.ok(result.stderr.includes(path), `${path} missing from: ${result.stderr}`);
  });

  it('unknown scenario name lists shipped ones', () => {
    const result = bench('no-such-scenario', '--dry-run');
    assert.equal(result.status, 2);
    assert.match(result.stderr, /not found/);
    assert.match(result.stderr, /smoke/);
  });
});
