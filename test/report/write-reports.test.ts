import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { parseReportArguments } from '../../src/cli/report.js';
import { writeReports } from '../../src/report/index.js';
import { FIXTURE_RESULTS, copyFixtures } from './fixtures.js';

const temporary: string[] = [];

async function temporaryFolder(prefix: string): Promise<string> {
  const folder = await mkdtemp(path.join(os.tmpdir(), prefix));
  temporary.push(folder);
  return folder;
}

after(async () => {
  await Promise.all(temporary.map((folder) => rm(folder, { recursive: true, force: true })));
});

describe('writeReports', () => {
  it('writes tables, figures and a self-contained page', async () => {
    const out = await temporaryFolder('report-out-');
    const result = await writeReports({ resultsDir: FIXTURE_RESULTS, reportsDir: out });

    const tables = (await readdir(path.join(out, 'tables'))).sort();
    assert.deepEqual(tables, [
      'objectives-fixture-paper.csv',
      'objectives-fixture-runtime.csv',
      'objectives-fixture-toys.csv',
      'runtime.csv',
      'scaling.csv',
      'speedups.csv',
      'table1-toys.csv',
      'table2-nll-speed.csv',
      'table4-map-ema.csv',
    ]);
    const figures = await readdir(path.join(out, 'figures'));
    assert.equal(figures.filter((name) => name.endsWith('.vl.json')).length, 6);
    assert.equal(figures.filter((name) => name.endsWith('.svg')).length, 6);
    assert.equal(figures.filter((name) => name.endsWith('.png')).length, 6);
    assert.ok(result.files.includes(path.join(out, 'index.html')));
    assert.ok(result.files.includes(path.join(out, 'README.md')));
    assert.equal(result.skipped.length, 2);

    const html = await readFile(path.join(out, 'index.html'), 'utf8');
    assert.ok(!/<script/i.test(html), 'the page must not contain scripts');
    assert.ok(!/(src|href)="https?:/i.test(html), 'the page must not load anything from the network');
    assert.ok(!/@import|url\(https?:/i.test(html), 'the CSS must not load anything from the network');
    assert.equal((html.match(/<figure /g) ?? []).length, 6);
    assert.ok(html.includes('Fixture CPU 2.0GHz × 2'));
    assert.ok(html.includes('npm run report -- --results'));
    assert.ok(html.includes('our SSM NLL is 1.5 nats above our ML vs the paper’s +0.4'));
  });

  it('marks missing and diverged cells', async () => {
    const out = await temporaryFolder('report-marks-');
    await writeReports({ resultsDir: FIXTURE_RESULTS, reportsDir: out, title: 'Fixture report, 2-core test machine' });
    const html = await readFile(path.join(out, 'index.html'), 'utf8');
    assert.ok(html.includes('data-state="failed"'));
    assert.ok(html.includes('data-state="partial"'));
    assert.ok(html.includes('data-state="missing"'));
    assert.ok(html.includes('1 completed, 1 diverged (step 120)'));
    const readme = await readFile(path.join(out, 'README.md'), 'utf8');
    assert.match(readme, /\| mnist ✗ failed \| fc \| fdssm \|/);
    assert.match(readme, /\| mnist ⚠ partial \| fc \| dsm \|/);
    assert.match(readme, /\| mnist \(missing\) \| fc \| sml \| — \| — \| — \| — \| 0 \| 0 \| missing \| missing \|/);
    assert.match(readme, /^# Fixture report, 2-core test machine$/m);
    assert.ok(html.includes('<h1>Fixture report, 2-core test machine</h1>'));
    assert.match(readme, /## Scenarios without results here/);
    assert.match(readme, /- fig2a-runtime-vs-size: about 5\.0 h on a 2-core machine \(estimate\); run `npm run bench -- fig2a-runtime-vs-size`/);
    assert.ok(html.includes('id="absent"'));
    const csv = await readFile(path.join(out, 'tables', 'table2-nll-speed.csv'), 'utf8');
    const smlLine = csv.split('\n').find((line) => line.startsWith('mnist,fc,sml,'))!;
    assert.ok(!/,0,0,missing,0[,.]/.test(smlLine), `missing cells must not read as zeros: ${smlLine}`);
  });

  it('reports an empty results folder as all missing', async () => {
    const empty = await temporaryFolder('report-empty-');
    const out = await temporaryFolder('report-empty-out-');
    const result = await writeReports({ resultsDir: empty, reportsDir: out });
    const table2 = result.tables.find((table) => table.id === 'table2-nll-speed')!;
    assert.equal(table2.rows.length, 20);
    assert.ok(table2.rows.every((row) => row.state === 'missing'));
    const html = await readFile(path.join(out, 'index.html'), 'utf8');
    assert.ok(html.includes('No result records were found'));
    assert.ok(html.includes('Figures not drawn'));
  });

  it('filters by scenario and rejects unknown names', async () => {
    const out = await temporaryFolder('report-scenario-');
    const result = await writeReports({ resultsDir: FIXTURE_RESULTS, reportsDir: out, scenario: 'fixture-toys' });
    assert.deepEqual(
      result.tables.filter((table) => table.id.startsWith('objectives-')).map((table) => table.id),
      ['objectives-fixture-toys'],
    );
    await assert.rejects(
      writeReports({ resultsDir: FIXTURE_RESULTS, reportsDir: out, scenario: 'nope' }),
      /no results for scenario "nope".*found fixture-paper, fixture-runtime, fixture-toys/,
    );
  });

  it('separates scenario hashes that differ', async () => {
    const results = await copyFixtures('report-hashes-');
    temporary.push(results);
    const source = path.join(results, 'fixture-toys', 'sine_coupling2d_ml_D2_B2048_seed1.json');
    const record = JSON.parse(await readFile(source, 'utf8'));
    record.scenario.hash = 'dddd4444dddd4444dddd4444dddd4444';
    await writeFile(source, JSON.stringify(record));
    const out = await temporaryFolder('report-hashes-out-');
    const result = await writeReports({ resultsDir: results, reportsDir: out });
    assert.deepEqual(result.notComparable, [
      { scenarioName: 'fixture-toys', hashes: ['cccc3333cccc3333cccc3333cccc3333', 'dddd4444dddd4444dddd4444dddd4444'] },
    ]);
    const html = await readFile(path.join(out, 'index.html'), 'utf8');
    assert.ok(html.includes('not comparable'));
    assert.ok(html.includes('fixture-toys@dddd4444'));
  });
});

describe('comparison of two result folders', () => {
  it('gives ratios per matching cell and flags differing hashes', async () => {
    const folderA = await copyFixtures('report-compare-a-');
    const folderB = await copyFixtures('report-compare-b-');
    temporary.push(folderA, folderB);

    // B: the ML cell at D = 256 is twice as slow, and the toy scenario ran another definition.
    const slower = path.join(folderB, 'fixture-runtime', 'synthetic_fc_ml_D256_L2_B100_seed0.json');
    const record = JSON.parse(await readFile(slower, 'utf8'));
    record.timing.samplesMs = record.timing.samplesMs.map((value: number) => value * 2);
    await writeFile(slower, JSON.stringify(record));
    const toysFolder = path.join(folderB, 'fixture-toys');
    for (const name of await readdir(toysFolder)) {
      if (name.endsWith('.json')) {
        const file = path.join(toysFolder, name);
        const toy = JSON.parse(await readFile(file, 'utf8'));
        toy.scenario.hash = 'eeee5555eeee5555eeee5555eeee5555';
        await writeFile(file, JSON.stringify(toy));
      }
    }

    const out = await temporaryFolder('report-compare-out-');
    const result = await writeReports({ resultsDir: 'unused', reportsDir: out, compare: [folderA, folderB] });
    assert.deepEqual(result.files.map((file) => path.basename(file)), ['comparison.csv', 'comparison.md', 'comparison.html']);
    const table = result.tables[0];

    const ml256 = table.rows.find(
      (row) => row.values.scenario === 'fixture-runtime' && row.values.objective === 'ml' && row.values.dimension === 256 && row.values.layers === 2,
    )!;
    assert.equal(ml256.values.comparison, 'comparable');
    assert.ok(Math.abs((ml256.values.ms_ratio as number) - 2) < 1e-12);
    const ssm = table.rows.find((row) => row.values.scenario === 'fixture-paper' && row.values.objective === 'ssm' && row.values.variant === null)!;
    assert.equal(ssm.values.ms_ratio, 1);
    assert.equal(ssm.values.nll_diff_nats, 0);

    const toys = table.rows.filter((row) => row.values.scenario === 'fixture-toys');
    assert.equal(toys.length, 2);
    assert.ok(toys.every((row) => row.values.comparison === 'not comparable: scenario hashes differ'));
    assert.ok(toys.every((row) => row.values.ms_ratio === null));
    assert.match(table.agreement.join(' '), /not comparable: fixture-toys/);
  });
});

describe('report command line', () => {
  it('parses options', () => {
    assert.deepEqual(parseReportArguments([]), {
      help: false,
      options: { resultsDir: 'results', reportsDir: 'reports', scenario: undefined, compare: undefined },
    });
    assert.deepEqual(parseReportArguments(['--results', 'r', '--out', 'o', '--scenario', 's']), {
      help: false,
      options: { resultsDir: 'r', reportsDir: 'o', scenario: 's', compare: undefined },
    });
    assert.deepEqual(parseReportArguments(['--compare', 'a', 'b']), {
      help: false,
      options: { resultsDir: 'results', reportsDir: 'reports', scenario: undefined, compare: ['a', 'b'] },
    });
    assert.deepEqual(parseReportArguments(['--title', 'Reference report: 2-core AMD EPYC, 2026-12-05']), {
      help: false,
      options: { resultsDir: 'results', reportsDir: 'reports', scenario: undefined, compare: undefined, title: 'Reference report: 2-core AMD EPYC, 2026-12-05' },
    });
    assert.deepEqual(parseReportArguments(['--help']), { help: true });
  });

  it('rejects bad options', () => {
    assert.throws(() => parseReportArguments(['--compare', 'a']), /--compare needs a value/);
    assert.throws(() => parseReportArguments(['--bogus']), /unknown argument "--bogus"/);
    assert.throws(() => parseReportArguments(['--out']), /--out needs a value/);
    assert.throws(() => parseReportArguments(['--compare', 'a', 'b', '--scenario', 's']), /cannot be combined/);
  });

  it('runs as a program', async () => {
    const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/report.js');
    const run = promisify(execFile);
    const help = await run(process.execPath, [cli, '--help']);
    assert.match(help.stdout, /--compare <a> <b>/);
    await assert.rejects(run(process.execPath, [cli, '--bogus']), (error: { code: number; stderr: string }) => {
      assert.equal(error.code, 2);
      assert.match(error.stderr, /unknown argument/);
      return true;
    });
    await assert.rejects(run(process.execPath, [cli, '--results', '/nonexistent-results-folder']), (error: { code: number; stderr: string }) => {
      assert.equal(error.code, 2);
      assert.match(error.stderr, /\/nonexistent-results-folder does not exist/);
      return true;
    });
    const empty = await mkdtemp(path.join(os.tmpdir(), 'ebflow-empty-results-'));
    try {
      await assert.rejects(run(process.execPath, [cli, '--results', empty, '--out', path.join(empty, 'reports')]), (error: { code: number; stderr: string }) => {
        assert.equal(error.code, 2);
        assert.match(error.stderr, /contains no result records; run `npm run bench` first/);
        return true;
      });
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
