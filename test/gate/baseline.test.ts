import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import {
  buildBaseline,
  cpuBaselinePath,
  currentCpuSignature,
  defaultBaselinePath,
  machineBaselinePath,
  machineKey,
  medianIndex,
  readBaseline,
  referenceCellSamples,
  sharedBaselinePath,
  signatureKey,
  writeBaseline,
} from '../../src/gate/baseline.js';
import { median } from '../../src/gate/statistics.js';
import { renderBaselineSummary } from '../../src/gate/table.js';
import { makeRun, makeScenario } from './fixtures.js';

test('baseline references the median run per cell', () => {
  const scenario = makeScenario();
  // Run 1 is slow in one cell and run 2 fast, so run 0 is the median there.
  const runs = [
    makeRun(scenario, { seed: 1 }),
    makeRun(scenario, { seed: 2, factors: { 'fc/D784/ssm': 1.5 } }),
    makeRun(scenario, { seed: 3, factors: { 'fc/D784/ssm': 0.7 } }),
  ];
  const baseline = buildBaseline(runs, new Date('2026-02-03T04:05:06Z'));
  assert.equal(baseline.recordedAt, '2026-02-03T04:05:06.000Z');
  assert.equal(baseline.runs.length, 3);
  assert.equal(baseline.summary['fc/D784/ssm'].referenceRun, 0);
  assert.equal(referenceCellSamples(baseline, 'fc/D784/ssm')?.run, 0);
  const medians = baseline.summary['fc/D784/ssm'].runMedians as number[];
  assert.ok(medians[1] > medians[0]);
  assert.ok(medians[0] > medians[2]);
  const reference = referenceCellSamples(baseline, 'fc/D784/ssm');
  assert.equal(baseline.summary['fc/D784/ssm'].medianNormalized, median(reference!.samples.normalized));
});

test('baseline needs three compatible runs', () => {
  const scenario = makeScenario();
  const run = (seed: number, options = {}) => makeRun(scenario, { seed, ...options });
  assert.throws(() => buildBaseline([run(1)]), /received 1 run\(s\); a baseline needs at least 3/);
  assert.throws(() => buildBaseline([run(1), run(2)]), /needs at least 3/);
  assert.throws(() => buildBaseline([run(1), run(2), run(3, { backend: 'cpu' })]), /run 2 used backend cpu, run 0 used wasm/);
  assert.throws(() => buildBaseline([run(1), run(2, { hash: 'abc' }), run(3)]), /run 1 has scenario hash abc/);
  const injected = run(3);
  injected.injection = [{ objective: 'ssm', factor: 1.5 }];
  assert.throws(() => buildBaseline([run(1), run(2), injected]), /test-only slowdown/);
});

test('medianIndex skips missing runs', () => {
  assert.equal(medianIndex([3, 1, 2]), 2);
  assert.equal(medianIndex([null, 5, 1]), 2);
  assert.equal(medianIndex([4, 1, 3, 2]), 3);
  assert.equal(medianIndex([null, null]), null);
});

test('baseline file round trip and errors', () => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'gate-baseline-test-'));
  try {
    const scenario = makeScenario();
    const baseline = buildBaseline([1, 2, 3].map((seed) => makeRun(scenario, { seed })));
    const file = path.join(folder, 'nested', 'demo.json');
    writeBaseline(file, baseline);
    assert.deepEqual(readBaseline(file), JSON.parse(JSON.stringify(baseline)));

    assert.throws(() => readBaseline(path.join(folder, 'none.json')), (error: any) => error.code === 'missing' && /npm run bench:baseline/.test(error.message));

    const other = path.join(folder, 'other.json');
    writeFileSync(other, JSON.stringify({ ...baseline, schemaVersion: 99 }));
    assert.throws(() => readBaseline(other), (error: any) => error.code === 'other-schema' && /schema version 99/.test(error.message));

    const broken = path.join(folder, 'broken.json');
    const damaged = JSON.parse(JSON.stringify(baseline));
    damaged.runs[1].cells[0].samples.normalized = [1, -2];
    writeFileSync(broken, JSON.stringify(damaged));
    assert.throws(() => readBaseline(broken), (error: any) => error.code === 'invalid' && /runs\[1\]\.cells\[0\] \(fc\/D196\/ml\)/.test(error.message));

    writeFileSync(broken, '{ not json');
    assert.throws(() => readBaseline(broken), (error: any) => error.code === 'invalid' && /not valid JSON/.test(error.message));
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test('machineKey file-name forms', () => {
  assert.equal(machineKey('Intel(R) Xeon(R) Processor'), 'intel-r-xeon-r-processor');
  assert.equal(machineKey('  AMD EPYC 7B13 64-Core Processor '), 'amd-epyc-7b13-64-core-processor');
  assert.equal(machineKey('Apple M2'), 'apple-m2');
  assert.equal(machineKey('(R)'), 'r');
  assert.equal(machineKey('???'), 'unknown-cpu');
});

test('defaultBaselinePath: own model, then shared', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'gate-baseline-path-'));
  try {
    const shared = sharedBaselinePath('gate', root);
    const intel = machineBaselinePath('gate', 'Intel(R) Xeon(R) Processor', root);
    assert.equal(shared, path.join(root, 'results', 'baselines', 'gate.json'));
    assert.equal(intel, path.join(root, 'results', 'baselines', 'gate.intel-r-xeon-r-processor.json'));
    // Nothing recorded yet: the shared path, so the missing-baseline message names it.
    assert.equal(defaultBaselinePath('gate', root, 'Intel(R) Xeon(R) Processor'), shared);
    writeBaseline(intel, buildBaseline([1, 2, 3].map((seed) => makeRun(makeScenario(), { seed }))));
    assert.equal(defaultBaselinePath('gate', root, 'Intel(R) Xeon(R) Processor'), intel);
    // Another CPU model, and another scenario on this model, still read the shared file.
    assert.equal(defaultBaselinePath('gate', root, 'AMD EPYC'), shared);
    assert.equal(defaultBaselinePath('other', root, 'Intel(R) Xeon(R) Processor'), sharedBaselinePath('other', root));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('baseline summary warns on wide spread', () => {
  const scenario = makeScenario();
  // Run 2 is ×1.3 slower in one cell only: above its ×1.25 threshold.
  const runs = [1, 2, 3].map((seed) => makeRun(scenario, { seed, noise: 0.01, factors: seed === 2 ? { 'fc/D784/ssm': 1.3 } : {} }));
  const summary = renderBaselineSummary(buildBaseline(runs), scenario).split('\n');
  const warnings = summary.filter((line) => line.startsWith('WARNING'));
  assert.equal(warnings.length, 1, summary.join('\n'));
  assert.match(warnings[0]!, /^WARNING: fc\/D784\/ssm: the runs' medians spread ×1\.[23]\d*, at or above its threshold ×1\.25/);
  assert.match(warnings[0]!, /comparison\.overrides/);
  assert.ok(summary.some((line) => /^fc\/D784\/ssm +\S+ +\S+ +×1\.[23]/.test(line)), summary.join('\n'));
});

test('CPU signature from cpuinfo', () => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'gate-cpuinfo-'));
  try {
    const file = path.join(folder, 'cpuinfo');
    writeFileSync(file, 'processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\nmodel name\t: Intel(R) Xeon(R) Processor\n\nprocessor\t: 1\nmodel\t\t: 1\n');
    assert.equal(currentCpuSignature(file), 'GenuineIntel family 6 model 207');
    writeFileSync(file, 'processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n');
    assert.equal(currentCpuSignature(file), null);
    assert.equal(currentCpuSignature(path.join(folder, 'missing')), null);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test('signatureKey file-name form', () => {
  assert.equal(signatureKey('GenuineIntel family 6 model 207'), 'genuineintel-6-207');
  assert.equal(signatureKey('AuthenticAMD family 25 model 17'), 'authenticamd-25-17');
});

test('defaultBaselinePath: own CPU, model name, shared', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'gate-baseline-cpu-'));
  try {
    const name = 'Intel(R) Xeon(R) Processor';
    const newer = 'GenuineIntel family 6 model 207';
    const own = cpuBaselinePath('gate', name, newer, root);
    const byName = machineBaselinePath('gate', name, root);
    assert.equal(own, path.join(root, 'results', 'baselines', 'gate.intel-r-xeon-r-processor.genuineintel-6-207.json'));
    assert.equal(cpuBaselinePath('gate', name, null, root), byName);
    assert.equal(defaultBaselinePath('gate', root, name, newer), sharedBaselinePath('gate', root));
    writeBaseline(byName, buildBaseline([1, 2, 3].map((seed) => makeRun(makeScenario(), { seed }))));
    assert.equal(defaultBaselinePath('gate', root, name, newer), byName);
    writeBaseline(own, buildBaseline([1, 2, 3].map((seed) => makeRun(makeScenario(), { seed }))));
    assert.equal(defaultBaselinePath('gate', root, name, newer), own);
    // Another CPU of the same name, and a machine without a signature, read the name's file.
    assert.equal(defaultBaselinePath('gate', root, name, 'GenuineIntel family 6 model 143'), byName);
    assert.equal(defaultBaselinePath('gate', root, name, null), byName);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
