import assert from 'node:assert/strict';
import { test } from 'node:test';

import { busyCompute, describeInjection, parseSlowdownInjection } from '../../src/gate/injection.js';

test('slowdown switch parses valid values', () => {
  assert.deepEqual(parseSlowdownInjection(undefined), []);
  assert.deepEqual(parseSlowdownInjection(''), []);
  assert.deepEqual(parseSlowdownInjection('  '), []);
  assert.deepEqual(parseSlowdownInjection('ssm:1.5'), [{ objective: 'ssm', factor: 1.5 }]);
  assert.deepEqual(parseSlowdownInjection(' dsm : 2 , ml:1.25'), [
    { objective: 'dsm', factor: 2 },
    { objective: 'ml', factor: 1.25 },
  ]);
  assert.deepEqual(parseSlowdownInjection('fdssm:10'), [{ objective: 'fdssm', factor: 10 }]);
  assert.equal(describeInjection(parseSlowdownInjection('ssm:1.5,dsm:2')), 'ssm ×1.5, dsm ×2');
});

test('slowdown switch rejects malformed values', () => {
  const cases: [string, RegExp][] = [
    ['ssm', /cannot parse "ssm"/],
    ['ssm:', /cannot parse "ssm:"/],
    ['ssm:abc', /cannot parse "ssm:abc"/],
    ['ssm=1.5', /cannot parse "ssm=1.5"/],
    ['ssm:1.5,', /cannot parse ""/],
    ['SSM:1.5', /cannot parse "SSM:1.5"/],
    ['adam:1.5', /unknown objective "adam"/],
    ['ssm:1', /factor 1 for ssm is out of range/],
    ['ssm:0.5', /factor 0.5 for ssm is out of range/],
    ['ssm:11', /factor 11 for ssm is out of range/],
    ['ssm:1.5,ssm:2', /objective ssm appears twice/],
  ];
  for (const [value, message] of cases) {
    assert.throws(() => parseSlowdownInjection(value), message, value);
    assert.throws(() => parseSlowdownInjection(value), /^RangeError: EBFLOW_INJECT_SLOWDOWN: /, value);
  }
  assert.throws(() => parseSlowdownInjection('ssm'), /such as "ssm:1\.5"/);
});

test('busy computation lasts the requested time', () => {
  // A clock that advances 0.01 ms per reading: the loop must keep reading until 5 ms have passed.
  let clock = 0;
  const now = (): number => (clock += 0.01);
  const spent = busyCompute(5, now);
  assert.ok(spent >= 5 && spent < 5.05, `spent ${spent}`);
  assert.equal(busyCompute(0, now), 0);
});
