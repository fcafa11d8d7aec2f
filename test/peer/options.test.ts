import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BENCH_PEER_HELP, fcShapeForDimension, parseBenchPeerArgs } from '../../src/peer/options.js';

describe('parseBenchPeerArgs', () => {
  it('builds the default cells', () => {
    const options = parseBenchPeerArgs([]);
    assert.equal(options.cells.length, 15);
    assert.deepEqual(options.cells[0], { arch: 'fc', objective: 'ml', imageShape: [28, 28, 1], depth: 2, batch: 100 });
    assert.deepEqual(options.cells[5]!.imageShape, [32, 32, 3]);
    assert.deepEqual(options.cells[10], { arch: 'cnn', objective: 'ml', imageShape: [28, 28, 1], depth: 6, batch: 100 });
    assert.deepEqual(options.peerThreads, [1, 2]);
    assert.deepEqual(options.timing, { warmup: 3, iterations: 10, rounds: 3, seed: 0, sweepWarmup: 1 });
    assert.equal(options.outDir, 'reports/peer');
    assert.equal(options.runTimeoutMs, 1_800_000);
    assert.equal(options.backend, undefined);
    assert.equal(options.ompWaitPolicy, 'short-spin');
  });

  it('reads every option', () => {
    const options = parseBenchPeerArgs([
      '--arch', 'cnn', '--objectives', 'ssm,dsm', '--shapes', '32x32x3,8x8x1', '--batch', '10', '--warmup', '0',
      '--iterations', '4', '--rounds', '2', '--sweep-warmup', '0', '--peer-threads', '2', '--backend', 'cpu', '--seed', '9',
      '--run-timeout', '60', '--peer-command', 'python3 my_peer.py', '--out', '/tmp/peer', '--omp-wait-policy', 'inherit',
    ]);
    assert.deepEqual(options.cells.map((cell) => `${cell.objective}:${cell.imageShape.join('x')}`),
      ['ssm:32x32x3', 'dsm:32x32x3', 'ssm:8x8x1', 'dsm:8x8x1']);
    assert.equal(options.cells[0]!.batch, 10);
    assert.deepEqual(options.timing, { warmup: 0, iterations: 4, rounds: 2, seed: 9, sweepWarmup: 0 });
    assert.deepEqual(options.peerThreads, [2]);
    assert.equal(options.backend, 'cpu');
    assert.equal(options.peerCommand, 'python3 my_peer.py');
    assert.equal(options.runTimeoutMs, 60_000);
    assert.equal(options.outDir, '/tmp/peer');
    assert.equal(options.ompWaitPolicy, 'inherit');
  });

  it('maps D to image shapes', () => {
    assert.deepEqual(fcShapeForDimension(784), [28, 28, 1]);
    assert.deepEqual(fcShapeForDimension(3072), [32, 32, 3]);
    assert.deepEqual(fcShapeForDimension(1000), [1, 1000, 1]);
    const options = parseBenchPeerArgs(['--arch', 'fc', '--objectives', 'ml', '--dims', '256,2x3x4', '--depth', '3']);
    assert.deepEqual(options.cells.map((cell) => cell.imageShape), [[16, 16, 1], [2, 3, 4]]);
    assert.equal(options.cells[0]!.depth, 3);
  });

  it('rejects invalid values by option', () => {
    assert.throws(() => parseBenchPeerArgs(['--arch', 'glow']), /--arch "glow" is invalid; use names from fc, cnn/);
    assert.throws(() => parseBenchPeerArgs(['--objectives', 'ml,nce']), /--objectives "ml,nce"/);
    assert.throws(() => parseBenchPeerArgs(['--shapes', '30x30x1']), /--shapes "30x30x1".*multiples of 4/);
    assert.throws(() => parseBenchPeerArgs(['--iterations', '0']), /--iterations "0" is invalid; use an integer ≥ 1/);
    assert.throws(() => parseBenchPeerArgs(['--batch', '1.5']), /--batch "1.5"/);
    assert.throws(() => parseBenchPeerArgs(['--dims', 'abc']), /--dims "abc"/);
    assert.throws(() => parseBenchPeerArgs(['--peer-threads', ',']), /--peer-threads/);
    assert.throws(() => parseBenchPeerArgs(['--bogus']), /bogus/);
    assert.throws(() => parseBenchPeerArgs(['--omp-wait-policy', 'spin']), /--omp-wait-policy "spin"/);
    assert.throws(() => parseBenchPeerArgs(['--omp-wait-policy', 'passive,active']), /--omp-wait-policy "passive,active"/);
  });

  it('documents every option in the help', () => {
    for (const option of ['arch', 'objectives', 'dims', 'shapes', 'depth', 'batch', 'warmup', 'iterations', 'rounds',
      'peer-threads', 'backend', 'seed', 'run-timeout', 'peer-command', 'omp-wait-policy', 'out', 'help']) {
      assert.match(BENCH_PEER_HELP, new RegExp(`--${option}\\b`));
    }
    assert.equal(parseBenchPeerArgs(['--help']).help, true);
  });
});
