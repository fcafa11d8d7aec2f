import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BACKEND_REQUESTS } from '../../src/backend/select.js';
import { ArgumentError, BACKEND_CHOICES, BENCH_USAGE, parseBenchArguments } from '../../src/cli/args.js';

describe('parseBenchArguments', () => {
  it('defaults with no arguments', () => {
    const args = parseBenchArguments([]);
    assert.equal(args.scenario, null);
    assert.equal(args.backend, null);
    assert.equal(args.shard, null);
    assert.equal(args.only, null);
    assert.equal(args.fresh, false);
    assert.equal(args.resultsRoot, 'results');
    assert.equal(args.reportsDir, 'reports');
    assert.equal(args.report, true);
    assert.equal(args.merge, null);
  });

  it('reads every option', () => {
    const args = parseBenchArguments([
      'table2',
      '--backend',
      'WASM',
      '--shard=2/4',
      '--only',
      '/fc\\/(ssm|dsm)/',
      '--fresh',
      '--results',
      'out/results',
      '--reports=out/reports',
      '--no-report',
      '--dry-run',
    ]);
    assert.equal(args.scenario, 'table2');
    assert.equal(args.backend, 'wasm');
    assert.deepEqual(args.shard, { index: 2, count: 4 });
    assert.equal(args.fresh, true);
    assert.equal(args.resultsRoot, 'out/results');
    assert.equal(args.reportsDir, 'out/reports');
    assert.equal(args.report, false);
    assert.equal(args.dryRun, true);
    assert.ok(args.only);
    assert.equal(args.only.filter('mnist/fc/ssm/D784/L2/B100/seed0'), true);
    assert.equal(args.only.filter('mnist/fc/ml/D784/L2/B100/seed0'), false);
  });

  it('substring filter', () => {
    const filter = parseBenchArguments(['--only', 'seed1']).only?.filter;
    assert.equal(filter?.('a/seed1'), true);
    assert.equal(filter?.('a/seed0'), false);
  });

  it('merge collects folders', () => {
    const args = parseBenchArguments(['--merge', 'a/results', 'b/results', '--results', 'all']);
    assert.deepEqual(args.merge, ['a/results', 'b/results']);
    assert.equal(args.resultsRoot, 'all');
  });

  it('help and list', () => {
    assert.equal(parseBenchArguments(['-h']).help, true);
    assert.equal(parseBenchArguments(['--list']).list, true);
  });

  const errors: [string, string[], RegExp][] = [
    ['shard index above count', ['--shard', '5/4'], /"5\/4"/],
    ['shard index zero', ['--shard', '0/3'], /"0\/3"/],
    ['shard not a fraction', ['--shard', 'two'], /"two"/],
    ['shard count zero', ['--shard', '1/0'], /"1\/0"/],
    ['unknown backend', ['--backend', 'tpu'], /"tpu"/],
    ['unknown option', ['--frsh'], /"--frsh".*--fresh/],
    ['missing value', ['--results'], /--results needs a value/],
    ['value swallowed by option', ['--only', '--fresh'], /--only needs a value/],
    ['empty filter', ['--only', ''], /empty filter/],
    ['invalid regular expression', ['--only', '/(unclosed/'], /\/\(unclosed\//],
    ['flag with a value', ['--fresh=yes'], /--fresh=yes/],
    ['option twice', ['--shard', '1/2', '--shard', '2/2'], /--shard was given twice/],
    ['two scenarios', ['table2', 'smoke'], /"smoke"/],
    ['merge without folders', ['--merge'], /--merge needs at least one/],
    ['merge with shard', ['--merge', 'a', '--shard', '1/2'], /--shard/],
    ['merge after scenario', ['table2', '--merge', 'a'], /"table2"/],
    ['empty results folder', ['--results='], /--results: empty/],
  ];
  for (const [name, argv, pattern] of errors) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => parseBenchArguments(argv),
        (error: Error) => {
          assert.ok(error instanceof ArgumentError, `${error.name}: ${error.message}`);
          assert.match(error.message, pattern);
          return true;
        },
      );
    });
  }

  it('backend choices match selectBackend', () => {
    assert.deepEqual([...BACKEND_CHOICES], [...BACKEND_REQUESTS]);
  });

  it('help names every option with its unit', () => {
    for (const option of ['--backend', '--shard', '--only', '--fresh', '--results', '--reports', '--no-report', '--dry-run', '--merge', '--list', '--help']) {
      assert.ok(BENCH_USAGE.includes(option), `--help leaves out ${option}`);
    }
    for (const unit of ['ms', 'it/s', 'nats', 'bits per dimension', 'minutes']) assert.ok(BENCH_USAGE.includes(unit), `--help leaves out the unit ${unit}`);
  });
});
