import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { describeTable2, describeTable4 } from '../../src/report/agreement.js';
import { cellKeyOf } from '../../src/report/cells.js';
import { buildScalingTable, buildSpeedUpTable, fitRuntimeScaling } from '../../src/report/scaling.js';
import { tableToCsv, type ReportTable, type TableRow } from '../../src/report/table.js';
import { buildObjectiveTable, buildRuntimeTable, buildTable1, buildTable2, buildTable4, trainingLengthNotes } from '../../src/report/tables.js';
import { T_975, loadFixtureContext } from './fixtures.js';

function findRow(table: ReportTable, match: Record<string, string | number | null>): TableRow {
  const rows = table.rows.filter((row) => Object.entries(match).every(([key, value]) => row.values[key] === value));
  assert.equal(rows.length, 1, `expected one row matching ${JSON.stringify(match)} in ${table.id}, found ${rows.length}`);
  return rows[0];
}

function near(actual: unknown, expected: number, tolerance = 1e-9): void {
  assert.equal(typeof actual, 'number', `expected a number near ${expected}, got ${String(actual)}`);
  assert.ok(Math.abs((actual as number) - expected) <= tolerance, `expected ${expected}, got ${String(actual)}`);
}

describe('report loading', () => {
  it('groups fixture records and lists bad files', async () => {
    const { loaded } = await loadFixtureContext();
    assert.deepEqual(
      loaded.sets.map((set) => set.scenarioName),
      ['fixture-paper', 'fixture-runtime', 'fixture-toys'],
    );
    assert.equal(loaded.skipped.length, 2);
    const reasons = loaded.skipped.map((entry) => entry.reason).join('\n');
    assert.match(reasons, /invalid JSON/);
    assert.match(reasons, /schemaVersion 0/);
    assert.deepEqual(loaded.notComparable, []);
  });
});

describe('objective table', () => {
  it('ML and SSM cells match hand-computed values', async () => {
    const { loaded, context } = await loadFixtureContext();
    const table = buildObjectiveTable(context, loaded.sets[0]);

    const ml = findRow(table, { objective: 'ml', variant: null });
    assert.equal(ml.state, 'ok');
    assert.equal(ml.values.runs, 3);
    assert.equal(ml.values.median_ms, 100);
    assert.equal(ml.values.median_ms_ci_low, 99);
    assert.equal(ml.values.median_ms_ci_high, 101);
    assert.equal(ml.values.iterations_per_s, 10);
    near(ml.values.nll_nats, 1092);
    near(ml.values.nll_nats_ci, (T_975[2] * 2) / Math.sqrt(3));
    near(ml.values.bits_per_dim, 1092 / (784 * Math.LN2));
    near(ml.values.nll_diff_nats, 1092 - 1092.4);

    const ssm = findRow(table, { objective: 'ssm', variant: null });
    assert.equal(ssm.values.median_ms, 25);
    assert.equal(ssm.values.speedup_vs_ml, 4);
    // Conservative range: 99 / 25 and 101 / 25 (SSM's interval is [25, 25]).
    near(ssm.values.speedup_ci_low, 99 / 25);
    near(ssm.values.speedup_ci_high, 101 / 25);
    near(ssm.values.nll_nats, 1093.5);
    near(ssm.values.nll_nats_ci, (T_975[2] * 0.5) / Math.sqrt(3));
    near(ssm.values.nll_diff_nats, 1093.5 - 1092.8);
    near(ssm.values.paper_speedup_vs_ml, 33.11 / 8.0);
  });

  it('marks diverged and errored cells', async () => {
    const { loaded, context } = await loadFixtureContext();
    const table = buildObjectiveTable(context, loaded.sets[0]);

    const dsm = findRow(table, { objective: 'dsm' });
    assert.equal(dsm.state, 'partial');
    assert.match(String(dsm.values.status), /1 completed, 1 diverged \(step 120\)/);
    assert.equal(dsm.values.median_ms, 12.5);
    assert.equal(dsm.values.nll_nats_ci, null);
    assert.equal(dsm.values.non_finite_losses, 3);

    const fdssm = findRow(table, { objective: 'fdssm' });
    assert.equal(fdssm.state, 'failed');
    assert.match(String(fdssm.values.status), /2 errored \(out of memory\)/);
    assert.equal(fdssm.values.median_ms, null);
    assert.equal(fdssm.values.nll_nats, null);
    assert.ok(table.notes.some((note) => note.includes('✗')));
  });
});

describe('paper tables', () => {
  it('Table 2 keeps every paper cell and shows missing ones empty', async () => {
    const { context } = await loadFixtureContext();
    const table = buildTable2(context);
    assert.equal(table.rows.length, 20);
    assert.equal(table.rows.filter((row) => row.state === 'missing').length, 16);

    const sml = findRow(table, { dataset: 'mnist', architecture: 'fc', objective: 'sml' });
    assert.equal(sml.state, 'missing');
    assert.equal(sml.values.nll_nats, null);
    assert.equal(sml.values.paper_nll_nats, 1092.3);

    const ssm = findRow(table, { dataset: 'mnist', architecture: 'fc', objective: 'ssm' });
    near(ssm.values.nll_minus_ml, 1.5);
    near(ssm.values.paper_nll_minus_ml, 0.4, 1e-9);
    near(ssm.values.iterations_per_s_ratio, 40 / 33.11);

    const csv = tableToCsv(table);
    const header = csv.split('\n')[0].split(',');
    const smlLine = csv.split('\n').find((line) => line.startsWith('mnist,fc,sml,'))!;
    const smlFields = smlLine.split(',');
    assert.equal(smlFields[header.indexOf('nll_nats')], '');
    assert.equal(smlFields[header.indexOf('iterations_per_s')], '');
    assert.equal(smlFields[header.indexOf('paper_nll_nats')], '1092.3');
  });

  it('Table 2 steps trained per row', async () => {
    const { context } = await loadFixtureContext();
    const table = buildTable2(context);
    // The ML and SSM runs evaluated last at step 300; one DSM run stopped evaluating at step 200.
    assert.equal(findRow(table, { dataset: 'mnist', architecture: 'fc', objective: 'ml' }).values.trained_steps, 300);
    assert.equal(findRow(table, { dataset: 'mnist', architecture: 'fc', objective: 'dsm' }).values.trained_steps, 200);
    assert.equal(findRow(table, { dataset: 'mnist', architecture: 'fc', objective: 'sml' }).values.trained_steps ?? null, null);
    const note = table.notes.find((text) => text.includes('steps trained'));
    assert.ok(note !== undefined, table.notes.join('\n'));
    assert.match(note, /^Rows with an NLL beside the paper’s trained for 200–300 steps/);
    assert.match(describeTable2(table).join(' '), /our ML NLL after 300 steps is 1092\.0 nats vs the paper’s 1092\.4/);
  });

  it('no training-length note without paper NLLs', () => {
    assert.deepEqual(trainingLengthNotes([{ state: 'ok', values: { nll_nats: 1000, paper_nll_nats: null, trained_steps: 5 } }]), []);
    assert.deepEqual(
      trainingLengthNotes([{ state: 'ok', values: { nll_nats: 1000, paper_nll_nats: 990, trained_steps: 5 } }]).map((note) => note.slice(0, 52)),
      ['Rows with an NLL beside the paper’s trained for 5 st'],
    );
    const [full] = trainingLengthNotes([{ state: 'ok', values: { nll_nats: 1000, paper_nll_nats: 990, trained_steps: 5 } }]);
    assert.match(full ?? '', /^Rows with an NLL beside the paper’s trained for 5 steps \(“steps trained”\)\. /);
    const [partly] = trainingLengthNotes([
      { state: 'ok', values: { nll_nats: 1000, paper_nll_nats: 990, trained_steps: 5 } },
      { state: 'ok', values: { nll_nats: 1000, paper_nll_nats: 990, trained_steps: null } },
    ]);
    assert.match(partly ?? '', /^Rows with an NLL beside the paper’s trained for 5 steps \(“steps trained”\) where their records give it\. /);
  });

  it('Table 2 sentences give gaps in numbers', async () => {
    const { context } = await loadFixtureContext();
    const sentences = describeTable2(buildTable2(context)).join(' ');
    assert.match(sentences, /our SSM NLL is 1\.5 nats above our ML vs the paper’s \+0\.4/);
    assert.match(sentences, /SSM iterates 4× as fast as ML vs the paper’s 4\.14×/);
    assert.match(sentences, /FDSSM has no completed run/);
    assert.match(sentences, /16 of the paper’s cells have no records yet/);
  });

  it('Table 1 toy metrics with t intervals', async () => {
    const { context } = await loadFixtureContext();
    const table = buildTable1(context);
    const ssm = findRow(table, { dataset: 'sine', objective: 'ssm' });
    near(ssm.values.kl, 0.12, 1e-12);
    near(ssm.values.kl_ci, (T_975[2] * 0.02) / Math.sqrt(3), 1e-9);
    near(ssm.values.fisher, 2);
    near(ssm.values.fisher_ci, (T_975[2] * 1) / Math.sqrt(3));
    near(ssm.values.kl_reference, 0.05, 1e-12);
    const ml = findRow(table, { dataset: 'sine', objective: 'ml' });
    near(ml.values.kl, 0.1, 1e-12);
    near(ml.values.kl_ci, (T_975[1] * Math.SQRT2 * 0.01) / Math.SQRT2, 1e-9);
    assert.equal(ml.values.kl_reference, null);
    const swirl = table.rows.filter((row) => row.values.dataset === 'swirl');
    assert.equal(swirl.length, 5);
    assert.ok(swirl.every((row) => row.state === 'missing' && row.values.kl === null));
  });

  it('Table 4 places our MaP-off cell beside the paper', async () => {
    const { context } = await loadFixtureContext();
    const table = buildTable4(context);
    const noMap = findRow(table, { architecture: 'fc', objective: 'ssm', ema: 'on', map: 'off', variant: 'no-map' });
    near(noMap.values.nll_nats, 1705);
    // Two runs, s = √50: half-width = t(0.975, 1) · √50 / √2 = 5 · t.
    near(noMap.values.nll_nats_ci, 5 * T_975[1], 1e-6);
    assert.equal(noMap.values.paper_nll_nats, 1720.5);
    near(noMap.values.nll_diff_nats, 1705 - 1720.5);
    const missingCnn = findRow(table, { architecture: 'cnn', objective: 'dsm', ema: 'off', map: 'off' });
    assert.equal(missingCnn.state, 'missing');
    const sentences = describeTable4(table).join(' ');
    assert.match(sentences, /MaP lowers our NLL by 611\.5 nats in fixture-paper \(paper: 627\.7 nats\)/);

    // A MaP-on row of another scenario, listed first, must not be paired with this scenario's MaP-off row.
    const withMap = findRow(table, { architecture: 'fc', objective: 'ssm', ema: 'on', map: 'on', scenario: 'fixture-paper' });
    // The MaP-on SSM runs evaluated last at step 300 and one DSM run at step 200. The MaP-off runs record no evaluations.
    assert.equal(withMap.values.trained_steps, 300);
    assert.equal(noMap.values.trained_steps, null);
    assert.equal(missingCnn.values.trained_steps, null);
    assert.ok(table.columns.some((column) => column.key === 'trained_steps'));
    const note = table.notes.find((text) => text.includes('steps trained'));
    assert.ok(note !== undefined, table.notes.join('\n'));
    assert.match(note, /^Rows with an NLL beside the paper’s trained for 200–300 steps \(“steps trained”\) where their records give it\. /);
    const other = { ...withMap, values: { ...withMap.values, scenario: 'other-budget', nll_nats: 9999 } };
    const mixed = describeTable4({ ...table, rows: [other, ...table.rows] }).join(' ');
    assert.match(mixed, /MaP lowers our NLL by 611\.5 nats in fixture-paper/);
  });
});

describe('runtime scaling', () => {
  it('fits the known exponents of the synthetic fixture', async () => {
    const { context } = await loadFixtureContext();
    const inD = fitRuntimeScaling(context.cells, 'dimension', context.labelOf);
    const ml = inD.find((fit) => fit.objective === 'ml' && fit.dataset === 'synthetic')!;
    near(ml.fit!.slope, 1.5, 1e-9);
    assert.ok(ml.fit!.slopeHalfWidth! < 1e-6);
    assert.equal(ml.statedExponent, 3);
    assert.equal(ml.points.length, 4);
    const ssm = inD.find((fit) => fit.objective === 'ssm' && fit.dataset === 'synthetic')!;
    near(ssm.fit!.slope, 0.5, 1e-9);
    assert.equal(ssm.statedCost, 'O(D²L)');
    const dsm = inD.find((fit) => fit.objective === 'dsm')!;
    assert.equal(dsm.excludedPoints, 1);
    assert.equal(dsm.points.length, 3);
    near(dsm.fit!.slope, 0.5, 1e-9);

    const inL = fitRuntimeScaling(context.cells, 'layers', context.labelOf);
    const mlL = inL.find((fit) => fit.objective === 'ml')!;
    near(mlL.fit!.slope, 1, 1e-9);
    assert.equal(mlL.statedExponent, 1);
    // SSM: 8, 12, 24 ms at L = 2, 4, 8 → slope of ln(ms) on ln(L) by hand.
    const ssmL = inL.find((fit) => fit.objective === 'ssm')!;
    const xs = [2, 4, 8].map(Math.log);
    const ys = [8, 12, 24].map(Math.log);
    const meanX = (xs[0] + xs[1] + xs[2]) / 3;
    const meanY = (ys[0] + ys[1] + ys[2]) / 3;
    const slope =
      xs.reduce((sum, x, i) => sum + (x - meanX) * (ys[i] - meanY), 0) / xs.reduce((sum, x) => sum + (x - meanX) ** 2, 0);
    near(ssmL.fit!.slope, slope, 1e-12);
  });

  it('scaling table notes excluded points and includes paper fits', async () => {
    const { context } = await loadFixtureContext();
    const table = buildScalingTable(context);
    assert.ok(table.notes.some((note) => note.includes('1 point(s) with a non-positive median')));
    const paperFcMl = findRow(table, { source: 'paper', architecture: 'fc', channels: 1, objective: 'ml' });
    assert.equal(paperFcMl.values.points, 7);
    const exponent = paperFcMl.values.exponent as number;
    assert.ok(exponent > 0, `paper FC ML exponent ${exponent}`);
    assert.ok(exponent < 1, `paper FC ML exponent ${exponent}`);
  });

  it('operations exponent beside time exponent', async () => {
    const { context } = await loadFixtureContext();
    // Counts of 2·10⁶·(D/1000)^2.8 FLOP per step for the synthetic ML cells only.
    const cells = context.cells.map((cell) =>
      cell.key.dataset === 'synthetic' && cell.key.objective === 'ml' && cell.key.dimension !== null
        ? { ...cell, operationsPerStep: 2e6 * (cell.key.dimension / 1000) ** 2.8 }
        : cell,
    );
    const counted = { ...context, cells };
    const ml = fitRuntimeScaling(cells, 'dimension', context.labelOf).find((fit) => fit.objective === 'ml' && fit.dataset === 'synthetic')!;
    near(ml.operationsFit!.slope, 2.8, 1e-9);
    near(ml.fit!.slope, 1.5, 1e-9);
    const row = findRow(buildScalingTable(counted), { source: 'ours', dataset: 'synthetic', objective: 'ml', variable: 'D' });
    near(row.values.operations_exponent, 2.8, 1e-9);
    const ssmRow = findRow(buildScalingTable(counted), { source: 'ours', dataset: 'synthetic', objective: 'ssm', variable: 'D' });
    assert.equal(ssmRow.values.operations_exponent, null, 'cells without counts give no exponent');

    // One point without a count leaves the exponent out instead of fitting the other points.
    let dropped = false;
    const gap = cells.map((cell) => {
      if (dropped || cell.operationsPerStep === null) return cell;
      dropped = true;
      return { ...cell, operationsPerStep: null };
    });
    const gapRow = findRow(buildScalingTable({ ...context, cells: gap }), { source: 'ours', dataset: 'synthetic', objective: 'ml', variable: 'D' });
    assert.equal(gapRow.values.operations_exponent, null);

    // The runtime table gives the count in GFLOP and the rate over the median time.
    const runtime = buildRuntimeTable(counted);
    const at1024 = cells.find((cell) => cell.key.dataset === 'synthetic' && cell.key.objective === 'ml' && cell.key.dimension === 1024)!;
    const runtimeRow = findRow(runtime, { dataset: 'synthetic', dimension: 1024, objective: 'ml' });
    near(runtimeRow.values.gflop_per_step, at1024.operationsPerStep! / 1e9, 1e-15);
    near(runtimeRow.values.step_gflops, at1024.operationsPerStep! / 1e6 / at1024.timing!.median, 1e-12);
    assert.equal(findRow(runtime, { dataset: 'synthetic', dimension: 1024, objective: 'ssm' }).values.step_gflops, null);
  });

  it('speed-ups over ML at every D', async () => {
    const { context } = await loadFixtureContext();
    const table = buildSpeedUpTable(context);
    const at1024 = findRow(table, { dataset: 'synthetic', dimension: 1024, objective: 'ssm' });
    near(at1024.values.speedup_vs_ml, (0.001 * 1024 ** 1.5) / (0.5 * 32));
    near(at1024.values.paper_speedup_vs_ml, 0.122 / 0.03);
    const zero = findRow(table, { dataset: 'synthetic', dimension: 1600, objective: 'dsm' });
    assert.equal(zero.values.speedup_vs_ml, null);
  });

  it('runtime table compares with Figure 2(a)', async () => {
    const { context } = await loadFixtureContext();
    const table = buildRuntimeTable(context);
    const ml = findRow(table, { dataset: 'synthetic', objective: 'ml', dimension: 256, layers: 2 });
    near(ml.values.paper_ms, 69);
    near(ml.values.ms_ratio, (0.001 * 256 ** 1.5) / 69);
    const deep = findRow(table, { dataset: 'synthetic', objective: 'ml', dimension: 256, layers: 4 });
    assert.equal(deep.values.paper_ms, null);
  });
});

describe('cell keys', () => {
  it('reads L per architecture', async () => {
    const { loaded } = await loadFixtureContext();
    const fc = loaded.sets[1].records.find((run) => run.record.cellId.includes('/L8/'))!;
    assert.equal(cellKeyOf(fc).layers, 8);
    const cnn = { ...fc, record: { ...fc.record, parameters: { ...fc.record.parameters, architecture: 'cnn' as const, depth: null } } };
    assert.equal(cellKeyOf(cnn).layers, 6);
    const toy = loaded.sets[2].records[0];
    const toyKey = cellKeyOf(toy);
    assert.equal(toyKey.layers, null);
    assert.equal(toyKey.channels, null);
    assert.equal(toyKey.dimension, 2);
    assert.equal(toyKey.matchAfterPreprocessing, null);
  });

  it('reads techniques from the config', async () => {
    const { loaded } = await loadFixtureContext();
    const noMap = loaded.sets[0].records.find((run) => run.record.cellId.endsWith('/no-map'))!;
    const key = cellKeyOf(noMap);
    assert.equal(key.matchAfterPreprocessing, false);
    assert.equal(key.ema, true);
    assert.equal(key.variant, 'no-map');
    const withoutEma = { ...noMap, record: { ...noMap.record, config: { ...noMap.record.config!, emaDecay: null } } };
    assert.equal(cellKeyOf(withoutEma).ema, false);
  });
});
