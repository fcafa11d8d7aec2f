import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  PeerProtocolError,
  encodePeerRequest,
  parsePeerMessage,
  parsePeerRequest,
  type RunRequest,
} from '../../src/peer/protocol.js';

const HELLO = '{"protocol":1,"type":"hello","engine":"pytorch","version":"1.13.1","threads":2,"blas":"OpenBLAS 0.3.21"}';
const RESULT = '{"protocol":1,"type":"result","id":"run-1","samplesMs":[12.5,11,13],"medianMs":12.5,"lastLoss":0.25,"threads":1}';

function assertProtocolError(run: () => unknown, lineNumber: number, fragment: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof PeerProtocolError, `expected PeerProtocolError, got ${String(error)}`);
    assert.equal(error.lineNumber, lineNumber);
    assert.match(error.message, new RegExp(`line ${lineNumber}\\b`));
    assert.match(error.message, fragment);
    return true;
  });
}

describe('parsePeerMessage', () => {
  it('accepts a hello with BLAS info', () => {
    const hello = parsePeerMessage(HELLO, 1);
    assert.equal(hello.type, 'hello');
    if (hello.type !== 'hello') return;
    assert.equal(hello.engine, 'pytorch');
    assert.equal(hello.threads, 2);
    assert.equal(hello.blas, 'OpenBLAS 0.3.21');
  });

  it('accepts a result and a null loss', () => {
    const result = parsePeerMessage(RESULT, 2);
    assert.equal(result.type, 'result');
    if (result.type !== 'result') return;
    assert.deepEqual(result.samplesMs, [12.5, 11, 13]);
    const withNullLoss = parsePeerMessage(RESULT.replace('"lastLoss":0.25', '"lastLoss":null'), 3);
    assert.equal(withNullLoss.type === 'result' ? withNullLoss.lastLoss : 'wrong type', null);
  });

  it('accepts an error without request id', () => {
    const error = parsePeerMessage('{"protocol":1,"type":"error","id":null,"message":"request is not valid JSON"}', 4);
    assert.deepEqual(error, { protocol: 1, type: 'error', id: null, message: 'request is not valid JSON' });
  });

  it('rejects invalid JSON naming the line', () => {
    assertProtocolError(() => parsePeerMessage('Loading torch...', 1), 1, /not valid JSON.*"Loading torch\.\.\."/s);
    assertProtocolError(() => parsePeerMessage('Loading torch...', 1), 1, /logs to standard error/);
  });

  it('rejects a wrong protocol version', () => {
    assertProtocolError(() => parsePeerMessage(HELLO.replace('"protocol":1', '"protocol":2'), 7), 7, /protocol 2.*only protocol 1/);
    assertProtocolError(() => parsePeerMessage('{"type":"hello"}', 8), 8, /protocol undefined/);
  });

  it('rejects non-objects and unknown types', () => {
    assertProtocolError(() => parsePeerMessage('[1,2]', 3), 3, /not a JSON object/);
    assertProtocolError(() => parsePeerMessage('{"protocol":1,"type":"bye"}', 5), 5, /unknown type "bye"/);
    assertProtocolError(() => parsePeerMessage('{"protocol":1}', 6), 6, /no string field "type"/);
  });

  it('rejects invalid result fields by name', () => {
    const cases: Array<[string, RegExp]> = [
      [RESULT.replace('[12.5,11,13]', '[]'), /"samplesMs".*non-empty array/],
      [RESULT.replace('[12.5,11,13]', '[12.5,-1,13]'), /"samplesMs"/],
      [RESULT.replace('[12.5,11,13]', '"soon"'), /"samplesMs".*received "soon"/],
      [RESULT.replace('"medianMs":12.5', '"medianMs":"12.5"'), /"medianMs" must be a finite number/],
      [RESULT.replace('"threads":1', '"threads":0'), /"threads" must be an integer ≥ 1, received 0/],
      [RESULT.replace('"id":"run-1"', '"id":7'), /"id" must be a string/],
      [RESULT.replace('"lastLoss":0.25', '"lastLoss":"NaN"'), /"lastLoss"/],
    ];
    for (const [line, fragment] of cases) assertProtocolError(() => parsePeerMessage(line, 9), 9, fragment);
  });

  it('rejects a hello without engine', () => {
    assertProtocolError(() => parsePeerMessage(HELLO.replace('"engine":"pytorch",', ''), 1), 1, /"engine" must be a string, received nothing/);
  });

  it('shortens very long quoted lines', () => {
    const long = `{"protocol":1,"type":"error","id":null,"message":5,"pad":"${'x'.repeat(5000)}"}`;
    assert.throws(() => parsePeerMessage(long, 1), (error: Error) => error.message.length < 600);
  });
});

describe('parsePeerRequest', () => {
  const run: RunRequest = {
    protocol: 1, type: 'run', id: 'run-3', arch: 'cnn', objective: 'dsm', imageShape: [28, 28, 1],
    L: 6, batch: 100, warmup: 3, iterations: 10, threads: 2, seed: 0, hyper: { sigma: 0.1 },
  };

  it('round-trips an encoded run request', () => {
    const line = encodePeerRequest(run);
    assert.ok(line.endsWith('\n'));
    assert.deepEqual(parsePeerRequest(line.trim(), 1), run);
  });

  it('turns D into a 1×D×1 shape for fc', () => {
    const line = JSON.stringify({ ...run, arch: 'fc', imageShape: undefined, D: 784, L: 2 });
    const request = parsePeerRequest(line, 1);
    assert.equal(request.type, 'run');
    if (request.type !== 'run') return;
    assert.deepEqual(request.imageShape, [1, 784, 1]);
    assert.equal(request.L, 2);
  });

  it('parses shutdown', () => {
    assert.deepEqual(parsePeerRequest('{"protocol":1,"type":"shutdown"}', 2), { protocol: 1, type: 'shutdown' });
  });

  it('rejects invalid run fields by name', () => {
    const cases: Array<[object, RegExp]> = [
      [{ ...run, objective: 'nce' }, /"objective" must be one of ml, sml, ssm, dsm, fdssm/],
      [{ ...run, arch: 'glow' }, /"arch" must be one of fc, cnn/],
      [{ ...run, imageShape: [28, 28] }, /"imageShape"/],
      [{ ...run, iterations: 0 }, /"iterations" must be an integer ≥ 1/],
      [{ ...run, threads: 1.5 }, /"threads"/],
      [{ ...run, hyper: [1] }, /"hyper" must be an object/],
      [{ ...run, imageShape: undefined, D: 784 }, /"imageShape"/],
    ];
    for (const [request, fragment] of cases) {
      assertProtocolError(() => parsePeerRequest(JSON.stringify(request), 4), 4, fragment);
    }
    assertProtocolError(() => parsePeerRequest('{"protocol":1,"type":"hello"}', 5), 5, /driver sends run or shutdown/);
  });
});
