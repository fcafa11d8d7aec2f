import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { writeBaseline } from '../../src/gate/baseline.js';
import { GATE_EXIT_CODES } from '../../src/gate/compare.js';
import { loadGateScenario } from '../../src/gate/scenario.js';
import { makeBaseline, makeScenario } from './fixtures.js';

const cliFolder = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli');
const checkScript = path.join(cliFolder, 'bench-check.js');
const baselineScript = path.join(cliFolder, 'bench-baseline.js');

function run(script: string, args: string[], env: Record<string, string> = {}) {
  const childEnv = { ...process.env, ...env };
  if (!('EBFLOW_INJECT_SLOWDOWN' in env)) delete childEnv.EBFLOW_INJECT_SLOWDOWN;
  return spawnSync(process.execPath, [script, ...args], { env: childEnv, encoding: 'utf8', timeout: 60_000 });
}

test('bench:check rejects a malformed slowdown switch', () => {
  const result = run(checkScript, [], { EBFLOW_INJECT_SLOWDOWN: 'ssm:fast' });
  assert.equal(result.status, GATE_EXIT_CODES.error);
  assert.match(result.stderr, /EBFLOW_INJECT_SLOWDOWN: cannot parse "ssm:fast"/);
});

test('bench:check reports a missing baseline', () => {
  const result = run(checkScript, ['--baseline', 'no/such/baseline.json']);
  assert.equal(result.status, GATE_EXIT_CODES.error);
  assert.match(result.stderr, /no baseline at no\/such\/baseline\.json; record one with "npm run bench:baseline -- --output no\/such\/baseline\.json"/);
});

test('bench:check exits 3 for another scenario hash', () => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'gate-cli-test-'));
  try {
    // A baseline of another scenario (the test fixture's), compared with benchmarks/gate.json.
    const baselineFile = path.join(folder, 'baseline.json');
    const outputFile = path.join(folder, 'output.json');
    const committed = loadGateScenario('benchmarks/gate.json');
    const foreign = makeBaseline(makeScenario());
    foreign.scenario.name = committed.name;
    writeBaseline(baselineFile, foreign);
    const result = run(checkScript, ['--baseline', baselineFile, '--backend', 'cpu', '--output', outputFile]);
    assert.equal(result.status, GATE_EXIT_CODES.notComparable, result.stderr);
    assert.match(result.stderr, /NOT COMPARABLE/);
    assert.match(result.stderr, /scenario hash differs/);
    assert.match(result.stderr, /backend differs: the baseline was recorded on "wasm", this run uses "cpu"/);
    // The fixture's CPU model is "Test CPU", which no machine reports.
    assert.match(result.stderr, /CPU model differs: the baseline was recorded on "Test CPU"/);
    const output = JSON.parse(readFileSync(outputFile, 'utf8'));
    assert.equal(output.outcome, 'not-comparable');
    assert.equal(output.exitCode, GATE_EXIT_CODES.notComparable);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test('bench:baseline needs three runs and no slowdown', () => {
  const tooFew = run(baselineScript, ['--runs', '1']);
  assert.equal(tooFew.status, 2);
  assert.match(tooFew.stderr, /--runs must be an integer ≥ 3, received "1"/);
  const injected = run(baselineScript, [], { EBFLOW_INJECT_SLOWDOWN: 'ssm:1.5' });
  assert.equal(injected.status, 2);
  assert.match(injected.stderr, /EBFLOW_INJECT_SLOWDOWN is set, which would record a test-only slowdown/);
});
