import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  PeerCrashError,
  PeerProcess,
  PeerRunError,
  PeerTimeoutError,
  type RunSpec,
} from '../../src/peer/driver.js';
import { PeerProtocolError, parsePeerRequest } from '../../src/peer/protocol.js';
import { fakePeerCommand, removeFakePeer, writeFakePeer } from './fake-peer.js';

const SPEC: RunSpec = {
  arch: 'fc', objective: 'ml', imageShape: [28, 28, 1], L: 2, batch: 100, warmup: 1, iterations: 3, threads: 2, seed: 0,
};
const TIMEOUT_MS = 20_000;

describe('PeerProcess', () => {
  let script = '';
  const started: PeerProcess[] = [];

  before(async () => {
    script = await writeFakePeer();
  });

  after(async () => {
    for (const peer of started) peer.kill();
    await removeFakePeer(script);
  });

  async function start(mode: string, log?: string): Promise<PeerProcess> {
    const peer = await PeerProcess.start(fakePeerCommand(script, mode, log), { helloTimeoutMs: TIMEOUT_MS });
    started.push(peer);
    return peer;
  }

  it('reads hello and parses results', async () => {
    const log = join(dirname(script), 'requests-normal.log');
    const peer = await start('normal', log);
    assert.equal(peer.hello.engine, 'fake');
    assert.equal(peer.hello.blas, 'FakeBLAS 1.0');

    const first = await peer.run(SPEC, TIMEOUT_MS);
    assert.deepEqual(first.samplesMs, [50, 51, 52]);
    assert.equal(first.threads, 2);
    assert.equal(first.D, 784);
    const second = await peer.run({ ...SPEC, threads: 1, hyper: { sigma: 0.5 } }, TIMEOUT_MS);
    assert.deepEqual(second.samplesMs, [100, 101, 102]);
    assert.notEqual(first.id, second.id);

    await peer.shutdown();
    assert.equal(peer.usable, false);
    const requests = (await readFile(log, 'utf8')).trim().split('\n').map((line, index) => parsePeerRequest(line, index + 1));
    assert.equal(requests.length, 3);
    assert.equal(requests[0]!.type === 'run' && requests[0]!.threads, 2);
    assert.deepEqual(requests[1]!.type === 'run' && requests[1]!.hyper, { sigma: 0.5 });
    assert.equal(requests[2]!.type, 'shutdown');
  });

  it('surfaces a peer error and stays usable', async () => {
    const peer = await start('error-ssm');
    await assert.rejects(peer.run({ ...SPEC, objective: 'ssm' }, TIMEOUT_MS), (error: unknown) => {
      assert.ok(error instanceof PeerRunError);
      assert.match(error.message, /objective ssm is not implemented by this peer/);
      assert.match(error.message, /fc\/ssm/);
      return true;
    });
    assert.equal(peer.usable, true);
    const result = await peer.run({ ...SPEC, objective: 'dsm' }, TIMEOUT_MS);
    assert.equal(result.samplesMs.length, 3);
    await peer.shutdown();
  });

  it('detects a crash with its stderr', async () => {
    const peer = await start('crash-on-run');
    await assert.rejects(peer.run(SPEC, TIMEOUT_MS), (error: unknown) => {
      assert.ok(error instanceof PeerCrashError);
      assert.match(error.message, /exited with code 3/);
      assert.match(error.message, /Segmentation fault in fake_kernel/);
      assert.match(error.message, /run-1/);
      return true;
    });
    assert.equal(peer.usable, false);
    await assert.rejects(peer.run(SPEC, TIMEOUT_MS), PeerCrashError);
  });

  it('detects a crash before hello', async () => {
    await assert.rejects(PeerProcess.start(fakePeerCommand(script, 'crash-at-start')), (error: unknown) => {
      assert.ok(error instanceof PeerCrashError);
      assert.match(error.message, /exited with code 4/);
      assert.match(error.message, /libfake\.so\.1/);
      return true;
    });
  });

  it('rejects a command that cannot start', async () => {
    const command = { command: join(dirname(script), 'no-such-peer'), args: [], shell: false };
    await assert.rejects(PeerProcess.start(command), (error: unknown) => {
      assert.ok(error instanceof PeerCrashError);
      assert.match(error.message, /could not be started/);
      assert.match(error.message, /ENOENT/);
      return true;
    });
  });

  it('rejects stdout noise before hello', async () => {
    await assert.rejects(PeerProcess.start(fakePeerCommand(script, 'garbage-hello')), (error: unknown) => {
      assert.ok(error instanceof PeerProtocolError);
      assert.equal(error.lineNumber, 1);
      assert.match(error.message, /Loading torch/);
      return true;
    });
  });

  it('rejects an invalid result line', async () => {
    const peer = await start('bad-result');
    await assert.rejects(peer.run(SPEC, TIMEOUT_MS), (error: unknown) => {
      assert.ok(error instanceof PeerProtocolError);
      assert.equal(error.lineNumber, 2);
      assert.match(error.message, /"samplesMs"/);
      return true;
    });
    assert.equal(peer.usable, false);
    await peer.waitForExit();
  });

  it('rejects a wrong sample count', async () => {
    const peer = await start('wrong-count');
    await assert.rejects(peer.run(SPEC, TIMEOUT_MS), /has 2 samples, but run-1 asked for 3 timed iterations/);
  });

  it('stops an unresponsive peer', async () => {
    const peer = await start('hang');
    await assert.rejects(peer.run(SPEC, 300), (error: unknown) => {
      assert.ok(error instanceof PeerTimeoutError);
      assert.match(error.message, /within 0\.3 s/);
      return true;
    });
    await peer.waitForExit();
    assert.equal(peer.usable, false);
  });

  it('runs a shell peer command', async () => {
    const command = { command: `"${process.execPath}" "${script}"`, args: [], shell: true, env: { ...process.env, FAKE_PEER_MODE: 'normal' } };
    const peer = await PeerProcess.start(command, { helloTimeoutMs: TIMEOUT_MS });
    started.push(peer);
    const result = await peer.run({ ...SPEC, threads: 4 }, TIMEOUT_MS);
    assert.deepEqual(result.samplesMs, [25, 26, 27]);
    await peer.shutdown();
  });
});
