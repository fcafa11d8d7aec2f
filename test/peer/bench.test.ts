import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { fallbackKernelsNotice, runPeerComparison, resolvePeerCommand } from '../../src/peer/bench.js';
import { findTorchPython } from '../../src/peer/python.js';
import { writePeerReport } from '../../src/peer/report.js';
import type { OurSide, PeerCell } from '../../src/peer/sweep.js';
import { chooseOpenBlasCore, readCpuFlags } from '../../src/tensor/native-blas.js';
import { fakePeerCommand, removeFakePeer, writeFakePeer } from './fake-peer.js';

const CELL: PeerCell = { arch: 'fc', objective: 'dsm', imageShape: [28, 28, 1], depth: 2, batch: 100 };
const TIMING = { warmup: 0, iterations: 3, rounds: 2, seed: 0 };

function fakeOurSide(): OurSide & { runs: number } {
  const side = {
    backend: 'fake-backend',
    runs: 0,
    async run(_cell: PeerCell, timing: { iterations: number }) {
      side.runs += 1;
      return { samplesMs: Array.from({ length: timing.iterations }, () => 20), lastLoss: 1 };
    },
  };
  return side;
}

/** Writes an executable shell script standing in for a Python interpreter. */
async function writeInterpreter(directory: string, name: string, body: string): Promise<string> {
  const path = join(directory, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

/** Returns the python3 on PATH when it exists and cannot import torch, or null. */
function pathPythonWithoutTorch(): string | null {
  const probe = spawnSync('python3', ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
  if (probe.error !== undefined || probe.status === 0) return null;
  return /No module named 'torch'/.test(probe.stderr) ? 'python3' : null;
}

describe('peer comparison without torch', () => {
  let directory = '';
  let withoutTorch = '';

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'ebflow-no-torch-'));
    withoutTorch = await writeInterpreter(directory, 'python-no-torch',
      'echo "Traceback (most recent call last):" >&2; echo "ModuleNotFoundError: No module named \'torch\'" >&2; exit 1');
  });

  after(async () => {
    if (directory !== '') await rm(directory, { recursive: true, force: true });
  });

  it('explains how to install torch', async () => {
    const search = await findTorchPython({ env: { ...process.env, EBFLOW_PYTHON: withoutTorch } });
    assert.equal(search.found, false);
    if (search.found) return;
    assert.equal(search.attempts.length, 1);
    assert.match(search.message, new RegExp(`EBFLOW_PYTHON=${withoutTorch}`));
    assert.match(search.message, /No module named 'torch'/);
    assert.match(search.message, /apt-get install python3-torch libopenblas0-openmp/);
    assert.match(search.message, /pip install torch/);
  });

  it('still runs our side and reports it', async () => {
    const ours = fakeOurSide();
    const notices: string[] = [];
    const report = await runPeerComparison(ours, {
      cells: [CELL],
      timing: TIMING,
      peerThreads: [1, 2],
      ompWaitPolicy: 'passive',
      runTimeoutMs: 20_000,
      env: { ...process.env, EBFLOW_PYTHON: withoutTorch },
      onEvent: (event) => { if (event.type === 'notice') notices.push(event.message); },
    });
    assert.equal(ours.runs, 2);
    assert.deepEqual(report.ours.blas, undefined);
    assert.equal(report.peer, null);
    assert.equal(report.comparisons[0]!.ours.medianMs, 20);
    assert.deepEqual(report.comparisons[0]!.peer, []);
    assert.equal(notices.length, 1);
    assert.match(report.notices[0]!, /Only our side runs/);

    const paths = await writePeerReport(report, join(directory, 'report'));
    const csv = await readFile(paths.csv, 'utf8');
    const row = csv.trim().split('\n')[1]!.split(',');
    assert.equal(row[6], '20.000');
    assert.equal(row[7], '');
    assert.equal(row[10], '');
  });

  it('records our BLAS and kernel threads', async () => {
    const ours = Object.assign(fakeOurSide(), {
      blas: 'matrix products and LU on OpenBLAS (libtest.so, 2 threads, openmp, SkylakeX kernels)',
      kernelThreads: 2,
      lapackThreads: 2,
    });
    const report = await runPeerComparison(ours, {
      cells: [CELL],
      timing: TIMING,
      peerThreads: [1],
      ompWaitPolicy: 'inherit',
      runTimeoutMs: 20_000,
      env: { ...process.env, EBFLOW_PYTHON: withoutTorch },
    });
    assert.equal(report.ours.blas, ours.blas);
    assert.equal(report.ours.kernelThreads, 2);
    assert.equal(report.ours.lapackThreads, 2);
    const paths = await writePeerReport(report, join(directory, 'report-blas'));
    const [header, row] = (await readFile(paths.csv, 'utf8')).trim().split('\n');
    assert.deepEqual(header!.split(',').slice(-3), ['ours_blas', 'ours_kernel_threads', 'ours_lapack_threads']);
    assert.ok(row!.endsWith(`"${ours.blas}",2,2`), row);
  });

  it('reports the real pyenv python3 too', async (context) => {
    const python = pathPythonWithoutTorch();
    if (python === null) {
      context.skip('the python3 on PATH is missing or has torch');
      return;
    }
    const { command, notice } = await resolvePeerCommand({ env: { ...process.env, EBFLOW_PYTHON: python } });
    assert.equal(command, null);
    assert.match(notice ?? '', /No module named 'torch'.*apt-get install python3-torch/s);
  });

  it('finds an interpreter and reads its torch version', async () => {
    const missing = join(directory, 'missing-python');
    const fake = await writeInterpreter(directory, 'python-with-torch', 'echo 9.9.9');
    const search = await findTorchPython({ env: { PATH: process.env.PATH }, candidates: [missing, withoutTorch, fake] });
    assert.equal(search.found, true);
    if (!search.found) return;
    assert.equal(search.python, fake);
    assert.equal(search.torchVersion, '9.9.9');
    assert.deepEqual(search.attempts.map((attempt) => attempt.problem), ['not found', "ModuleNotFoundError: No module named 'torch'"]);
  });
});

describe('peer comparison with a peer command', () => {
  let script = '';
  before(async () => {
    script = await writeFakePeer();
  });
  after(() => removeFakePeer(script));

  it('records the peer and the ratio', async () => {
    const command = fakePeerCommand(script, 'normal');
    const report = await runPeerComparison(fakeOurSide(), {
      cells: [CELL],
      timing: TIMING,
      peerThreads: [1, 2],
      peerCommand: `"${process.execPath}" "${script}"`,
      ompWaitPolicy: 'passive',
      runTimeoutMs: 20_000,
      env: { ...command.env, OMP_WAIT_POLICY: 'ACTIVE' },
    });
    assert.deepEqual(report.notices, []);
    assert.equal(report.peer?.engine, 'fake');
    assert.equal(report.peer?.blas, 'FakeBLAS 1.0');
    assert.equal(report.peer?.ompWaitPolicy, 'PASSIVE');
    assert.deepEqual(report.comparisons[0]!.betterPeer, { threads: 2, medianMs: 51 });
    assert.equal(report.comparisons[0]!.ratio, 20 / 51);
  });

  it('warns on peer fallback kernels', async () => {
    const command = fakePeerCommand(script, 'normal');
    const blas = 'OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY USE_OPENMP Prescott MAX_THREADS=64';
    const runWithPeerEnv = (env: NodeJS.ProcessEnv) =>
      runPeerComparison(fakeOurSide(), {
        cells: [CELL],
        timing: TIMING,
        peerThreads: [1],
        peerCommand: `"${process.execPath}" "${script}"`,
        ompWaitPolicy: 'inherit',
        runTimeoutMs: 20_000,
        env: { ...command.env, FAKE_PEER_BLAS: blas, ...env },
      });
    const report = await runWithPeerEnv({});
    assert.equal(report.peer?.blas, blas);
    const flags = readCpuFlags();
    const fitting = flags === null ? null : chooseOpenBlasCore(flags);
    if (fitting === null) {
      assert.deepEqual(report.notices, []);
      return;
    }
    assert.equal(report.notices.length, 1);
    assert.match(report.notices[0]!, new RegExp(`Prescott \\(SSE3\\) kernels.*OPENBLAS_CORETYPE=${fitting}`));

    // The fake peer reports Prescott whatever OPENBLAS_CORETYPE it gets, like a library that ignores it.
    const withSetting = await runWithPeerEnv({ OPENBLAS_CORETYPE: fitting });
    assert.equal(withSetting.notices.length, 1);
    assert.match(withSetting.notices[0]!, new RegExp(`started with OPENBLAS_CORETYPE=${fitting}, which its OpenBLAS did not take$`));
  });
});

describe('fallbackKernelsNotice', () => {
  const avx2 = new Set(['avx', 'avx2', 'fma']);

  it('names the core that fits the CPU', () => {
    const notice = fallbackKernelsNotice('OpenBLAS 0.3.21 DYNAMIC_ARCH Prescott MAX_THREADS=64', avx2);
    assert.match(notice ?? '', /runs Prescott \(SSE3\) kernels/);
    assert.match(notice ?? '', /OPENBLAS_CORETYPE=Haswell set$/);
  });

  it('names the setting the peer started with', () => {
    const blas = 'OpenBLAS 0.3.21 DYNAMIC_ARCH Prescott MAX_THREADS=64';
    const ignored = fallbackKernelsNotice(blas, avx2, 'haswell');
    assert.match(ignored ?? '', /although it started with OPENBLAS_CORETYPE=haswell, which its OpenBLAS did not take$/);
    assert.doesNotMatch(ignored ?? '', /run again/);
    const other = fallbackKernelsNotice(blas, avx2, 'Prescott');
    assert.match(other ?? '', /it started with OPENBLAS_CORETYPE=Prescott, so run again with OPENBLAS_CORETYPE=Haswell set instead$/);
  });

  it('stays silent when nothing is wrong', () => {
    assert.equal(fallbackKernelsNotice('OpenBLAS 0.3.21 DYNAMIC_ARCH SkylakeX MAX_THREADS=64', avx2), null);
    assert.equal(fallbackKernelsNotice('OpenBLAS 0.3.21 DYNAMIC_ARCH Prescott', new Set(['sse3'])), null);
    assert.equal(fallbackKernelsNotice('OpenBLAS 0.3.21 DYNAMIC_ARCH Prescott', null), null);
    assert.equal(fallbackKernelsNotice(null, avx2), null);
  });
});

describe('resolvePeerCommand', () => {
  it('sets or keeps OMP_WAIT_POLICY', async () => {
    const base = { peerCommand: 'my-peer', env: { PATH: '/bin', OMP_WAIT_POLICY: 'ACTIVE' } };
    const passive = await resolvePeerCommand({ ...base, ompWaitPolicy: 'passive' });
    assert.equal(passive.command?.env?.OMP_WAIT_POLICY, 'PASSIVE');
    assert.equal(passive.command?.shell, true);
    assert.equal(passive.command?.command, 'my-peer');
    const inherited = await resolvePeerCommand({ ...base, ompWaitPolicy: 'inherit' });
    assert.equal(inherited.command?.env?.OMP_WAIT_POLICY, 'ACTIVE');
    // The caller's environment object is left unchanged.
    assert.equal(base.env.OMP_WAIT_POLICY, 'ACTIVE');
  });

  it('gives the peer our engine\'s wait setting by default', async () => {
    const unset = await resolvePeerCommand({ peerCommand: 'my-peer', env: { PATH: '/bin' }, ompWaitPolicy: 'short-spin' });
    assert.equal(unset.command?.env?.OMP_WAIT_POLICY, undefined);
    assert.equal(unset.command?.env?.GOMP_SPINCOUNT, '1000');
    // A setting the user chose applies to both sides, as it does to our engine.
    const base = { peerCommand: 'my-peer', env: { PATH: '/bin', OMP_WAIT_POLICY: 'PASSIVE' } };
    const chosen = await resolvePeerCommand({ ...base, ompWaitPolicy: 'short-spin' });
    assert.equal(chosen.command?.env?.OMP_WAIT_POLICY, 'PASSIVE');
    assert.equal(chosen.command?.env?.GOMP_SPINCOUNT, undefined);
    assert.equal(base.env.OMP_WAIT_POLICY, 'PASSIVE');
  });
});
