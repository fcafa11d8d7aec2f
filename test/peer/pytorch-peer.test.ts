/**
 * The real PyTorch peer over the protocol, on tiny cells. Skipped when no interpreter has torch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { PeerProcess, PeerRunError, type RunSpec } from '../../src/peer/driver.js';
import { findTorchPython, pytorchPeerCommand } from '../../src/peer/python.js';
import { OBJECTIVE_NAMES } from '../../src/objectives/objective.js';

const TIMEOUT_MS = 60_000;

describe('pytorch_peer.py', () => {
  let peer: PeerProcess | null = null;
  let skipReason: string | null = null;

  before(async () => {
    const search = await findTorchPython();
    if (!search.found) {
      skipReason = 'no Python interpreter with torch';
      return;
    }
    peer = await PeerProcess.start(pytorchPeerCommand(search.python), { helloTimeoutMs: TIMEOUT_MS });
  });

  after(async () => {
    await peer?.shutdown();
  });

  it('says hello with version and BLAS', (context) => {
    if (peer === null) return context.skip(skipReason ?? '');
    assert.equal(peer.hello.engine, 'pytorch');
    assert.match(peer.hello.version, /^\d+\.\d+/);
    assert.ok(peer.hello.threads >= 1);
    assert.equal(typeof peer.hello.blas, 'string');
  });

  it('runs every objective on both models', async (context) => {
    if (peer === null) return context.skip(skipReason ?? '');
    const cells: Array<Pick<RunSpec, 'arch' | 'imageShape' | 'L'>> = [
      { arch: 'fc', imageShape: [4, 4, 1], L: 2 },
      { arch: 'cnn', imageShape: [8, 8, 1], L: 6 },
    ];
    for (const cell of cells) {
      for (const objective of OBJECTIVE_NAMES) {
        const result = await peer.run({ ...cell, objective, batch: 4, warmup: 1, iterations: 2, threads: 1, seed: 0 }, TIMEOUT_MS);
        assert.equal(result.samplesMs.length, 2, `${cell.arch}/${objective}`);
        assert.equal(result.D, cell.imageShape[0] * cell.imageShape[1] * cell.imageShape[2], `${cell.arch}/${objective}`);
        assert.equal(result.threads, 1);
        assert.equal(typeof result.lastLoss, 'number', `${cell.arch}/${objective} loss ${result.lastLoss}`);
      }
    }
  });

  it('matches the FC parameter count', async (context) => {
    if (peer === null) return context.skip(skipReason ?? '');
    const result = await peer.run({ arch: 'fc', objective: 'fdssm', imageShape: [28, 28, 1], L: 2, batch: 2, warmup: 0, iterations: 1, threads: 2, seed: 0 }, TIMEOUT_MS);
    // Two dense 784×784 layers with biases: 2·(784² + 784).
    assert.equal(result.parameters, 1_230_880);
    assert.equal(result.threads, 2);
  });

  it('rejects an invalid request and stays usable', async (context) => {
    if (peer === null) return context.skip(skipReason ?? '');
    await assert.rejects(
      peer.run({ arch: 'cnn', objective: 'ml', imageShape: [6, 6, 1], L: 6, batch: 2, warmup: 0, iterations: 1, threads: 1, seed: 0 }, TIMEOUT_MS),
      (error: unknown) => error instanceof PeerRunError && /multiples of 4/.test(error.message));
    await assert.rejects(
      peer.run({ arch: 'fc', objective: 'dsm', imageShape: [2, 2, 1], L: 1, batch: 2, warmup: 0, iterations: 1, threads: 1, seed: 0, hyper: { sigma: -1 } }, TIMEOUT_MS),
      /hyper-parameter 'sigma' has an invalid value -1/);
    assert.equal(peer.usable, true);
  });
});
