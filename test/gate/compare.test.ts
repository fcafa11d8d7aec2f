import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { classifyChange, comparabilityProblems, compareWithBaseline, GATE_EXIT_CODES } from '../../src/gate/compare.js';
import type { ChangeEstimate } from '../../src/gate/statistics.js';
import { renderGateReport } from '../../src/gate/table.js';
import { makeBaseline, makeRun, makeScenario } from './fixtures.js';

const defaults = { failOnImprovement: false };

test('equal distributions pass', () => {
  const scenario = makeScenario();
  const baseline = makeBaseline(scenario);
  for (const seed of [1, 2, 3, 4, 5]) {
    const comparison = compareWithBaseline(scenario, baseline, makeRun(scenario, { seed }), defaults);
    assert.equal(comparison.outcome, 'pass', `seed ${seed}: ${renderGateReport(comparison)}`);
    assert.equal(comparison.exitCode, GATE_EXIT_CODES.pass);
    assert.deepEqual(comparison.failures, []);
  }
});

test('shift of 1.5x fails and names the cell', () => {
  const scenario = makeScenario();
  const baseline = makeBaseline(scenario);
  const run = makeRun(scenario, { seed: 1, factors: { 'fc/D784/ssm': 1.5 } });
  const comparison = compareWithBaseline(scenario, baseline, run, defaults);

  assert.equal(comparison.outcome, 'fail');
  assert.equal(comparison.exitCode, GATE_EXIT_CODES.fail);
  const cell = comparison.cells.find((entry) => entry.id === 'fc/D784/ssm');
  assert.equal(cell?.verdict, 'regression');
  assert.ok(cell !== undefined && 'estimate' in cell);
  assert.ok(cell.estimate.ratio > 1.4, `ratio ${cell.estimate.ratio}`);
  assert.ok(cell.estimate.ratio < 1.6, `ratio ${cell.estimate.ratio}`);
  assert.ok(cell.estimate.interval[0] > 1.25);
  // The ratio to ml at the same D moves too, and nothing else fails.
  assert.deepEqual(comparison.failures.map((entry) => entry.id).sort(), ['fc/D784/ssm', 'fc/D784/ssm-vs-ml']);
  assert.deepEqual(comparison.failingObjectives, ['ssm']);

  const report = renderGateReport(comparison);
  assert.match(report, /FAIL/);
  assert.match(report, /fc\/D784\/ssm \(step time\): ×1\.[45]\d slower than the baseline \(95% interval/);
});

test('large insignificant change passes with a note', () => {
  const scenario = makeScenario();
  // Four samples spread over a factor of 8: every current value is exactly 1.6x a baseline value,
  // far beyond the threshold, but four against four such values cannot tell it from noise.
  const spread = [1, 4, 0.5, 2];
  const baseline = makeBaseline(scenario, { exact: { 'fc/D196/dsm': spread } });
  const run = makeRun(scenario, { seed: 1, exact: { 'fc/D196/dsm': spread.map((value) => value * 1.6) } });
  const comparison = compareWithBaseline(scenario, baseline, run, defaults);

  const cell = comparison.cells.find((entry) => entry.id === 'fc/D196/dsm');
  assert.equal(cell?.verdict, 'not-significant');
  assert.ok(cell !== undefined && 'estimate' in cell);
  assert.ok(Math.abs(cell.estimate.ratio - 1.6) < 1e-9, `ratio ${cell.estimate.ratio}`);
  assert.ok(cell.estimate.interval[0] < 1, `interval ${cell.estimate.interval}`);
  assert.ok(cell.estimate.interval[1] > 1, `interval ${cell.estimate.interval}`);
  assert.match(cell.note ?? '', /not significant at 95%/);
  assert.equal(comparison.outcome, 'pass');
  assert.equal(comparison.exitCode, GATE_EXIT_CODES.pass);
  assert.match(renderGateReport(comparison), /fc\/D196\/dsm: ×1\.60 \(slower\) is beyond the ×1\.25 threshold but not significant/);
});

test('other backend is not comparable', () => {
  const scenario = makeScenario();
  const baseline = makeBaseline(scenario, { backend: 'cpu' });
  const comparison = compareWithBaseline(scenario, baseline, makeRun(scenario, { seed: 1, factors: { 'fc/D784/ssm': 3 } }), defaults);
  assert.equal(comparison.outcome, 'not-comparable');
  assert.equal(comparison.exitCode, GATE_EXIT_CODES.notComparable);
  assert.equal(comparison.notComparableReasons.length, 1);
  assert.match(comparison.notComparableReasons[0], /backend differs: the baseline was recorded on "cpu", this run uses "wasm"/);
  assert.deepEqual(comparison.cells, []);
  assert.match(renderGateReport(comparison), /NOT COMPARABLE/);
});

test('baseline with OpenBLAS names the fix', () => {
  const scenario = makeScenario();
  const withBlas = compareWithBaseline(scenario, makeBaseline(scenario, { backend: 'wasm+openblas' }), makeRun(scenario, { seed: 1 }), defaults);
  assert.match(withBlas.notComparableReasons[0], /run with --backend wasm with OpenBLAS installed \(and EBFLOW_BLAS unset\)/);
  const withoutBlas = compareWithBaseline(scenario, makeBaseline(scenario, { backend: 'wasm' }), makeRun(scenario, { seed: 1 }), defaults);
  assert.equal(withoutBlas.outcome, 'pass', 'the run fixture is labelled wasm');
});

test('other scenario hash is not comparable', () => {
  const scenario = makeScenario();
  const baseline = makeBaseline(scenario, { hash: 'f'.repeat(64) });
  const problems = comparabilityProblems(baseline, { scenarioHash: makeRun(scenario, { seed: 1 }).scenario.hash, backend: 'wasm' });
  assert.equal(problems.length, 1);
  assert.match(problems[0], /scenario hash differs/);
  const comparison = compareWithBaseline(scenario, baseline, makeRun(scenario, { seed: 1 }), defaults);
  assert.equal(comparison.exitCode, GATE_EXIT_CODES.notComparable);
  assert.deepEqual(comparabilityProblems(makeBaseline(scenario), { scenarioHash: makeRun(scenario, { seed: 1 }).scenario.hash, backend: 'wasm' }), []);
});

test('improvement passes unless requested to fail', () => {
  const scenario = makeScenario();
  const baseline = makeBaseline(scenario);
  const run = makeRun(scenario, { seed: 1, factors: { 'fc/D196/ssm': 0.6 } });

  const lenient = compareWithBaseline(scenario, baseline, run, defaults);
  assert.equal(lenient.outcome, 'pass');
  assert.equal(lenient.cells.find((entry) => entry.id === 'fc/D196/ssm')?.verdict, 'improvement');
  assert.equal(lenient.ratios.find((entry) => entry.id === 'fc/D196/ssm-vs-ml')?.verdict, 'improvement');

  const strict = compareWithBaseline(scenario, baseline, run, { failOnImprovement: true });
  assert.equal(strict.outcome, 'fail');
  assert.deepEqual(strict.failingObjectives, ['ssm']);
  assert.match(renderGateReport(strict), /fc\/D196\/ssm \(step time\): ×0\.\d+ faster than the baseline/);
});

test('per-cell threshold overrides the default', () => {
  const factors = { 'fc/D196/dsm': 1.4, 'fc/D784/dsm': 1.4 };
  const plain = makeScenario();
  const tolerant = makeScenario({ overrides: { 'fc/D196/dsm': 1.5, 'fc/D196/dsm-vs-ml': 1.5 } });
  const baseline = makeBaseline(plain);
  const run = makeRun(plain, { seed: 1, factors });

  const before = compareWithBaseline(plain, baseline, run, defaults);
  assert.equal(before.cells.find((entry) => entry.id === 'fc/D196/dsm')?.verdict, 'regression');

  const after = compareWithBaseline(tolerant, baseline, run, defaults);
  const overridden = after.cells.find((entry) => entry.id === 'fc/D196/dsm');
  assert.equal(overridden?.verdict, 'within-threshold');
  assert.equal(overridden?.threshold, 1.5);
  assert.equal(after.cells.find((entry) => entry.id === 'fc/D784/dsm')?.verdict, 'regression');
  assert.deepEqual(after.failures.map((entry) => entry.id).sort(), ['fc/D784/dsm', 'fc/D784/dsm-vs-ml']);
});

test('cell no longer measured fails', () => {
  const scenario = makeScenario();
  const baseline = makeBaseline(scenario);
  const comparison = compareWithBaseline(scenario, baseline, makeRun(scenario, { seed: 1, unavailable: ['fc/D196/ssm'] }), defaults);
  assert.equal(comparison.outcome, 'fail');
  const cell = comparison.cells.find((entry) => entry.id === 'fc/D196/ssm');
  assert.equal(cell?.verdict, 'not-measured');
  assert.ok(cell !== undefined && 'reason' in cell);
  assert.match(cell.reason, /architecture not available/);
  assert.equal(comparison.ratios.find((entry) => entry.id === 'fc/D196/ssm-vs-ml')?.verdict, 'absent');
});

test('cell unavailable in both runs passes', () => {
  const scenario = makeScenario();
  const baseline = makeBaseline(scenario, { unavailable: ['fc/D196/ssm'] });
  const comparison = compareWithBaseline(scenario, baseline, makeRun(scenario, { seed: 1, unavailable: ['fc/D196/ssm'] }), defaults);
  assert.equal(comparison.outcome, 'pass');
  assert.equal(comparison.cells.find((entry) => entry.id === 'fc/D196/ssm')?.verdict, 'absent');
  assert.match(renderGateReport(comparison), /measured by neither run: fc\/D196\/ssm/);
});

test('ratio moved by its reference is explained', () => {
  const scenario = makeScenario();
  const baseline = makeBaseline(scenario);
  // ml got faster: the ml cell improves, every ratio to ml grows, and only the cell is reported.
  const comparison = compareWithBaseline(scenario, baseline, makeRun(scenario, { seed: 1, factors: { 'fc/D784/ml': 0.5 } }), defaults);
  assert.equal(comparison.cells.find((entry) => entry.id === 'fc/D784/ml')?.verdict, 'improvement');
  for (const id of ['fc/D784/ssm-vs-ml', 'fc/D784/dsm-vs-ml']) {
    const ratio = comparison.ratios.find((entry) => entry.id === id);
    assert.equal(ratio?.verdict, 'explained', id);
  }
  assert.equal(comparison.outcome, 'pass');
});

test('classifyChange applies threshold and interval', () => {
  const estimate = (ratio: number, low: number, high: number): ChangeEstimate => ({
    ratio,
    interval: [low, high],
    confidence: 0.95,
    pValue: 0.01,
    method: 'mann-whitney-exact',
    baselineCount: 10,
    currentCount: 10,
  });
  assert.equal(classifyChange(estimate(1.5, 1.3, 1.7), 1.25), 'regression');
  assert.equal(classifyChange(estimate(1.5, 0.9, 2.5), 1.25), 'not-significant');
  assert.equal(classifyChange(estimate(1.2, 1.1, 1.3), 1.25), 'within-threshold');
  assert.equal(classifyChange(estimate(0.7, 0.6, 0.75), 1.25), 'improvement');
  assert.equal(classifyChange(estimate(0.7, 0.3, 1.2), 1.25), 'not-significant');
});

test('other CPU model: refused, then allowed', () => {
  const scenario = makeScenario();
  const baseline = makeBaseline(scenario);
  const run = makeRun(scenario, { seed: 1 });
  run.environment = { ...run.environment, cpuModel: 'Intel(R) Xeon(R) Processor' };
  const ownBaseline = path.join('results', 'baselines', `${scenario.name}.intel-r-xeon-r-processor.json`);

  const rejected = compareWithBaseline(scenario, baseline, run, defaults);
  assert.equal(rejected.outcome, 'not-comparable');
  assert.equal(rejected.exitCode, GATE_EXIT_CODES.notComparable);
  assert.equal(rejected.notComparableReasons.length, 1);
  assert.match(rejected.notComparableReasons[0]!, /CPU model differs: the baseline was recorded on "Test CPU", this run is on "Intel\(R\) Xeon\(R\) Processor"/);
  assert.match(rejected.notComparableReasons[0]!, /--allow-other-cpu/);
  assert.ok(rejected.notComparableReasons[0]!.includes(ownBaseline), rejected.notComparableReasons[0]);

  const allowed = compareWithBaseline(scenario, baseline, run, { ...defaults, allowOtherCpu: true });
  assert.equal(allowed.outcome, 'pass');
  const note = allowed.notes.find((text) => text.includes('Intel(R) Xeon(R) Processor'));
  assert.ok(note !== undefined, allowed.notes.join('\n'));
  assert.match(note, /may be a false alarm/);
  assert.ok(note.includes(ownBaseline), note);
});

test('same name, other CPU: rejected, then allowed', () => {
  const scenario = makeScenario();
  const baseline = makeBaseline(scenario);
  for (const run of baseline.runs) run.environment = { ...run.environment, cpuSignature: 'GenuineIntel family 6 model 143' };
  baseline.environment = { ...baseline.environment, cpuSignature: 'GenuineIntel family 6 model 143' };
  const run = makeRun(scenario, { seed: 1 });
  run.environment = { ...run.environment, cpuSignature: 'GenuineIntel family 6 model 207' };
  const ownBaseline = path.join('results', 'baselines', `${scenario.name}.test-cpu.genuineintel-6-207.json`);

  const rejected = compareWithBaseline(scenario, baseline, run, defaults);
  assert.equal(rejected.exitCode, GATE_EXIT_CODES.notComparable);
  assert.equal(rejected.notComparableReasons.length, 1);
  assert.match(rejected.notComparableReasons[0]!, /CPU differs: the baseline was recorded on "Test CPU" of GenuineIntel family 6 model 143, this run is on GenuineIntel family 6 model 207/);
  assert.ok(rejected.notComparableReasons[0]!.includes(ownBaseline), rejected.notComparableReasons[0]);

  const allowed = compareWithBaseline(scenario, baseline, run, { ...defaults, allowOtherCpu: true });
  assert.equal(allowed.outcome, 'pass');
  const report = renderGateReport(allowed);
  assert.match(report, /^baseline: .* on Test CPU, GenuineIntel family 6 model 143 \(/m);
  assert.match(report, /^this run: .* on Test CPU, GenuineIntel family 6 model 207 \(/m);
  const note = allowed.notes.find((text) => text.includes('model 207'));
  assert.ok(note !== undefined, allowed.notes.join('\n'));
  assert.ok(note.includes(ownBaseline), note);
});

test('baseline without a CPU signature: compared by name', () => {
  const scenario = makeScenario();
  const run = makeRun(scenario, { seed: 1 });
  run.environment = { ...run.environment, cpuSignature: 'GenuineIntel family 6 model 207' };
  const comparison = compareWithBaseline(scenario, makeBaseline(scenario), run, defaults);
  assert.equal(comparison.outcome, 'pass');
  const note = comparison.notes.find((text) => text.includes('records no CPU signature'));
  assert.ok(note !== undefined, comparison.notes.join('\n'));
  assert.match(note, /compared by the model name "Test CPU" alone and may come from another CPU of that name than this run's GenuineIntel family 6 model 207/);
  assert.ok(note.includes(path.join('results', 'baselines', `${scenario.name}.test-cpu.genuineintel-6-207.json`)), note);
  assert.deepEqual(
    comparabilityProblems(makeBaseline(scenario), { scenarioHash: run.scenario.hash, backend: 'wasm', cpuModel: 'Test CPU', cpuSignature: null }),
    [],
  );
});

test('run without a CPU signature: compared by name', () => {
  const scenario = makeScenario();
  const baseline = makeBaseline(scenario);
  baseline.environment = { ...baseline.environment, cpuSignature: 'GenuineIntel family 6 model 207' };
  const comparison = compareWithBaseline(scenario, baseline, makeRun(scenario, { seed: 1 }), defaults);
  assert.equal(comparison.outcome, 'pass');
  const note = comparison.notes.find((text) => text.includes('records no CPU signature'));
  assert.ok(note !== undefined, comparison.notes.join('\n'));
  assert.match(note, /^this run records no CPU signature .* baseline from GenuineIntel family 6 model 207 by the model name "Test CPU" alone/);
});

test('no signature note when neither records one', () => {
  const scenario = makeScenario();
  const comparison = compareWithBaseline(scenario, makeBaseline(scenario), makeRun(scenario, { seed: 1 }), defaults);
  assert.deepEqual(comparison.notes.filter((text) => text.includes('CPU signature')), []);
});
