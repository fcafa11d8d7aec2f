import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { parsePeerRequest } from '../../src/peer/protocol.js';
import { cellId, runInterleavedSweep, type OurSide, type PeerCell, type SweepEvent } from '../../src/peer/sweep.js';
import { fakePeerCommand, removeFakePeer, writeFakePeer } from './fake-peer.js';

const FC_ML: PeerCell = { arch: 'fc', objective: 'ml', imageShape: [28, 28, 1], depth: 2, batch: 100 };
const FC_SSM: PeerCell = { ...FC_ML, objective: 'ssm' };
const TIMING = { warmup: 1, iterations: 3, rounds: 2, seed: 5 };

/** Our side stand-in: sample k of call c is 30 + 10·c + k ms, so medians are known in advance. */
function fakeOurSide(calls: PeerCell[]): OurSide {
  return {
    backend: 'fake-backend',
    hyperparameters: () => ({ sigma: 0.25, residual: true }),
    async run(cell, timing) {
      calls.push(cell);
      const call = calls.length - 1;
      return { samplesMs: Array.from({ length: timing.iterations }, (_, k) => 30 + 10 * call + k), lastLoss: 2 };
    },
  };
}

describe('runInterleavedSweep', () => {
  let script = '';
  before(async () => {
    script = await writeFakePeer();
  });
  after(() => removeFakePeer(script));

  it('interleaves ours and peer threads per round', async () => {
    const events: SweepEvent[] = [];
    const log = join(dirname(script), 'sweep-requests.log');
    const calls: PeerCell[] = [];
    const result = await runInterleavedSweep(fakeOurSide(calls), {
      cells: [FC_ML, FC_SSM],
      timing: TIMING,
      peerThreads: [1, 2],
      peerCommand: fakePeerCommand(script, 'normal', log),
      runTimeoutMs: 20_000,
      onEvent: (event) => events.push(event),
    });

    const order = events.filter((event) => event.type === 'run-start').map((event) => `${event.cellId}#${event.round}:${event.series}`);
    const ml = cellId(FC_ML);
    const ssm = cellId(FC_SSM);
    assert.deepEqual(order, [
      `${ml}#1:ours`, `${ml}#1:peer-1t`, `${ml}#1:peer-2t`, `${ml}#2:ours`, `${ml}#2:peer-1t`, `${ml}#2:peer-2t`,
      `${ssm}#1:ours`, `${ssm}#1:peer-1t`, `${ssm}#1:peer-2t`, `${ssm}#2:ours`, `${ssm}#2:peer-1t`, `${ssm}#2:peer-2t`,
    ]);
    assert.equal(events.filter((event) => event.type === 'peer-started').length, 1);

    const [first] = result.comparisons;
    // Ours: calls 0 and 1 give [30, 31, 32] and [40, 41, 42]; the pooled median is 36.
    assert.equal(first!.ours.medianMs, 36);
    assert.equal(first!.peer[0]!.medianMs, 101);
    assert.equal(first!.peer[1]!.medianMs, 51);
    assert.deepEqual(first!.betterPeer, { threads: 2, medianMs: 51 });
    assert.equal(first!.ratio, 36 / 51);
    assert.equal(first!.ours.runs.length, 2);
    assert.equal(result.peerHello?.engine, 'fake');

    const requests = (await readFile(log, 'utf8')).trim().split('\n').map((line, index) => parsePeerRequest(line, index + 1));
    const runs = requests.filter((request) => request.type === 'run');
    assert.equal(runs.length, 8);
    for (const request of runs) {
      assert.equal(request.type === 'run' && request.seed, 5);
      assert.deepEqual(request.type === 'run' && request.hyper, { sigma: 0.25, residual: true });
    }
    assert.equal(requests.at(-1)!.type, 'shutdown');
  });

  it('warms every side up on the first cell, untimed', async () => {
    const events: SweepEvent[] = [];
    const calls: PeerCell[] = [];
    const result = await runInterleavedSweep(fakeOurSide(calls), {
      cells: [FC_SSM, FC_ML],
      timing: { ...TIMING, rounds: 1, sweepWarmup: 2 },
      peerThreads: [1, 2],
      peerCommand: fakePeerCommand(script, 'normal'),
      runTimeoutMs: 20_000,
      onEvent: (event) => events.push(event),
    });
    const order = events.filter((event) => event.type === 'run-start').map((event) => `${event.cellId}#${event.round}:${event.series}`);
    const ssm = cellId(FC_SSM);
    const ml = cellId(FC_ML);
    assert.deepEqual(order, [
      `${ssm}#0:ours`, `${ssm}#0:peer-1t`, `${ssm}#0:peer-2t`, `${ssm}#0:ours`, `${ssm}#0:peer-1t`, `${ssm}#0:peer-2t`,
      `${ssm}#1:ours`, `${ssm}#1:peer-1t`, `${ssm}#1:peer-2t`, `${ml}#1:ours`, `${ml}#1:peer-1t`, `${ml}#1:peer-2t`,
    ]);
    // The warm-up runs are calls 0 and 1; only call 2 ([50, 51, 52]) is timed for the first cell.
    assert.equal(result.comparisons[0]!.ours.runs.length, 1);
    assert.equal(result.comparisons[0]!.ours.medianMs, 51);
  });

  it('compares against the faster thread count', async () => {
    const result = await runInterleavedSweep(fakeOurSide([]), {
      cells: [FC_ML],
      timing: { ...TIMING, rounds: 1 },
      peerThreads: [1, 2],
      peerCommand: fakePeerCommand(script, 'slow-threads-2'),
      runTimeoutMs: 20_000,
    });
    const [comparison] = result.comparisons;
    assert.equal(comparison!.peer[1]!.medianMs, 251);
    assert.deepEqual(comparison!.betterPeer, { threads: 1, medianMs: 101 });
    assert.equal(comparison!.ratio, 31 / 101);
  });

  it('records peer errors per run and goes on', async () => {
    const result = await runInterleavedSweep(fakeOurSide([]), {
      cells: [FC_SSM, FC_ML],
      timing: { ...TIMING, rounds: 1 },
      peerThreads: [1],
      peerCommand: fakePeerCommand(script, 'error-ssm'),
      runTimeoutMs: 20_000,
    });
    const [ssm, ml] = result.comparisons;
    const failed = ssm!.peer[0]!.runs[0]!;
    assert.equal(failed.status, 'errored');
    assert.match(failed.status === 'errored' ? failed.message : '', /not implemented/);
    assert.equal(ssm!.peer[0]!.medianMs, null);
    assert.equal(ssm!.ratio, null);
    assert.equal(ssm!.ours.medianMs, 31);
    assert.equal(ml!.peer[0]!.medianMs, 101);
  });

  it('restarts a crashed peer, then gives up', async () => {
    const events: SweepEvent[] = [];
    const result = await runInterleavedSweep(fakeOurSide([]), {
      cells: [FC_ML],
      timing: { ...TIMING, rounds: 6 },
      peerThreads: [1],
      peerCommand: fakePeerCommand(script, 'crash-on-run'),
      runTimeoutMs: 20_000,
      onEvent: (event) => events.push(event),
    });
    const runs = result.comparisons[0]!.peer[0]!.runs;
    assert.equal(runs.length, 6);
    assert.ok(runs.every((run) => run.status === 'errored'));
    assert.match(runs[0]!.status === 'errored' ? runs[0]!.message : '', /Segmentation fault in fake_kernel/);
    // One start and three restarts crash; the fifth acquisition gives up.
    assert.equal(events.filter((event) => event.type === 'peer-started').length, 4);
    assert.match(result.peerUnavailable ?? '', /not restarted after 3 crashes/);
    assert.equal(result.comparisons[0]!.ours.runs.length, 6);
  });

  it('runs our side alone without a peer', async () => {
    const result = await runInterleavedSweep(fakeOurSide([]), {
      cells: [FC_ML],
      timing: TIMING,
      peerThreads: [1, 2],
      peerCommand: null,
      runTimeoutMs: 20_000,
    });
    assert.deepEqual(result.comparisons[0]!.peer, []);
    assert.equal(result.comparisons[0]!.ours.medianMs, 36);
    assert.equal(result.comparisons[0]!.ratio, null);
    assert.equal(result.peerHello, null);
  });
});
