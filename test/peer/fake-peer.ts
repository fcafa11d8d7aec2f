/**
 * A fake peer for the tests: a small Node script that speaks the peer protocol without torch.
 *
 * Its behaviour is set by FAKE_PEER_MODE:
 *   normal          responds to every run; sample k of a run is 100 / threads + k ms
 *   slow-threads-2  like normal, but 2 threads take 5x as long as 1 thread
 *   error-ssm       responds to runs of objective ssm with an `error` message
 *   crash-on-run    writes a line to standard error and exits with code 3 on the first run
 *   crash-at-start  writes a line to standard error and exits with code 4 before hello
 *   garbage-hello   writes "Loading torch..." to standard output before hello
 *   bad-result      responds to runs with a result whose samplesMs is a string
 *   wrong-count     responds to runs with one sample fewer than requested
 *   hang            never responds to runs
 * When FAKE_PEER_LOG names a file, every request line is appended to it. FAKE_PEER_BLAS replaces
 * the BLAS line of its hello.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import type { PeerCommand } from '../../src/peer/driver.js';

const FAKE_PEER_SOURCE = String.raw`
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const mode = process.env.FAKE_PEER_MODE ?? 'normal';
const log = process.env.FAKE_PEER_LOG;
const send = (message) => process.stdout.write(JSON.stringify({ protocol: 1, ...message }) + '\n');

if (mode === 'crash-at-start') {
  process.stderr.write('ImportError: libfake.so.1: cannot open shared object file\n');
  process.exit(4);
}
if (mode === 'garbage-hello') process.stdout.write('Loading torch...\n');
send({
  type: 'hello', engine: 'fake', version: '0.0.1', threads: 1, blas: process.env.FAKE_PEER_BLAS ?? 'FakeBLAS 1.0', machine: 'x86_64',
  ompWaitPolicy: process.env.OMP_WAIT_POLICY ?? null,
});

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (log) appendFileSync(log, line + '\n');
  const request = JSON.parse(line);
  if (request.type === 'shutdown') process.exit(0);
  if (mode === 'crash-on-run') {
    process.stderr.write('Segmentation fault in fake_kernel\n');
    process.exit(3);
  }
  if (mode === 'hang') return;
  if (mode === 'error-ssm' && request.objective === 'ssm') {
    send({ type: 'error', id: request.id, message: 'objective ssm is not implemented by this peer' });
    return;
  }
  if (mode === 'bad-result') {
    send({ type: 'result', id: request.id, samplesMs: 'soon', medianMs: 1, lastLoss: 0, threads: 1 });
    return;
  }
  const slowdown = mode === 'slow-threads-2' && request.threads === 2 ? 5 : 1;
  const count = mode === 'wrong-count' ? request.iterations - 1 : request.iterations;
  const samplesMs = Array.from({ length: count }, (_, k) => (100 / request.threads) * slowdown + k);
  const sorted = [...samplesMs].sort((a, b) => a - b);
  send({
    type: 'result', id: request.id, samplesMs, medianMs: sorted[Math.floor(sorted.length / 2)],
    lastLoss: 1.5, threads: request.threads, D: request.imageShape[0] * request.imageShape[1] * request.imageShape[2],
  });
});
`;

/** Writes the fake peer into a fresh temporary folder and returns its path. */
export async function writeFakePeer(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'ebflow-fake-peer-'));
  const path = join(directory, 'fake-peer.mjs');
  await writeFile(path, FAKE_PEER_SOURCE);
  return path;
}

/** Deletes the folder that `writeFakePeer` made for the script at `path`, unless the path is empty. */
export async function removeFakePeer(path: string): Promise<void> {
  if (path !== '') await rm(dirname(path), { recursive: true, force: true });
}

/** Returns the command that starts the fake peer at `path` in `mode`. */
export function fakePeerCommand(path: string, mode: string, log?: string): PeerCommand {
  const env: NodeJS.ProcessEnv = { ...process.env, FAKE_PEER_MODE: mode };
  if (log !== undefined) env.FAKE_PEER_LOG = log;
  return { command: process.execPath, args: [path], shell: false, env };
}
