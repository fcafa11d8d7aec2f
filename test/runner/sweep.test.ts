import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import type { RunEvent } from '../../src/runner/events.js';
import { cellFileName, mergeResults, MixedHashError, parseRecord, readResults, removeStaleTemporaryFiles } from '../../src/runner/results.js';
import { selectShard } from '../../src/runner/selection.js';
import { planRun, runScenario, ScenarioChangedError, type RunOptions } from '../../src/runner/sweep.js';
import { resolveDocument } from '../../src/scenarios/catalog.js';
import type { ResolvedScenario } from '../../src/scenarios/scenario.js';
import { FAKE_ENVIRONMENT, fakeFactory, fakeScenarioDocument, type FakeBehaviour } from './fake-session.js';

const temporaryFolders: string[] = [];
function temporaryFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'ebflow-sweep-'));
  temporaryFolders.push(folder);
  return folder;
}
after(() => {
  for (const folder of temporaryFolders) rmSync(folder, { recursive: true, force: true });
});

/** 5 objectives × 2 seeds of a tiny synthetic FC grid, plus whatever `change` alters. */
function scenario(change: (document: Record<string, any>) => void = () => {}): ResolvedScenario {
  const document = fakeScenarioDocument();
  change(document);
  return resolveDocument(document, 'fake.json');
}

function options(resultsRoot: string, factory: RunOptions['createSession'], extra: Partial<RunOptions> = {}): RunOptions {
  return {
    resultsRoot,
    backend: { name: 'fake', attempts: [{ name: 'fake' }] },
    createSession: factory,
    environment: FAKE_ENVIRONMENT,
    tensorBytes: () => 0,
    ...extra,
  };
}

function recordFiles(folder: string): string[] {
  return readdirSync(folder).filter((name) => name.endsWith('.json') && name !== 'scenario.json');
}

describe('runScenario', () => {
  it('records every cell with events in order', async () => {
    const root = temporaryFolder();
    const resolved = scenario();
    const { factory, created } = fakeFactory();
    const events: RunEvent[] = [];
    const summary = await runScenario(resolved, options(root, factory, { onEvent: (event) => events.push(event) }));

    assert.equal(summary.cells.length, 10);
    assert.equal(created.length, 10);
    assert.ok(created.every((session) => session.disposed), 'a session was not disposed');
    assert.equal(recordFiles(summary.folder).length, 10);
    for (const cell of summary.cells) {
      assert.equal(cell.record.outcome.status, 'completed', cell.cellId);
      assert.equal(cell.record.losses.length, 4);
      assert.equal(cell.record.timing?.samplesMs.length, 4);
      // Periodic evaluations after steps 2 and 4, then the final one.
      assert.deepEqual(cell.record.evaluations.map((point) => [point.step, point.result.split, point.result.images]), [
        [2, 'validation', 10],
        [4, 'validation', 10],
        [4, 'test', 20],
      ]);
      assert.equal(cell.record.finalNll?.split, 'test');
      assert.equal(cell.record.scenario.hash, resolved.hash);
      assert.equal(cell.record.config?.objective, cell.record.parameters.objective);
    }

    const starts = events.filter((event) => event.type === 'cell-start');
    assert.deepEqual(starts.map((event) => event.type === 'cell-start' && `${event.index}/${event.count}`), Array.from({ length: 10 }, (_, i) => `${i + 1}/10`));
    assert.equal(events[0].type, 'scenario-start');
    const iteration = events.find((event) => event.type === 'iteration');
    assert.ok(iteration?.type === 'iteration', 'no iteration event');
    assert.notEqual(iteration.cellEtaSeconds, null);
    assert.notEqual(iteration.scenarioEtaSeconds, null);
    assert.equal(events.filter((event) => event.type === 'evaluation').length, 30);
    assert.equal(events.at(-1)?.type, 'cell-end');
  });

  it('diverged cell recorded and sweep goes on', async () => {
    const root = temporaryFolder();
    const resolved = scenario((document) => {
      document.measure.budget = { iterations: 10 };
    });
    const { factory } = fakeFactory((config): FakeBehaviour => (config.objective === 'ssm' ? { nonFiniteFrom: 3 } : {}));
    const summary = await runScenario(resolved, options(root, factory));
    for (const cell of summary.cells) {
      if (cell.record.parameters.objective === 'ssm') {
        assert.deepEqual(cell.record.outcome, { status: 'diverged', step: 3, firstNonFiniteValue: 'NaN' });
        assert.equal(cell.record.losses.length, 5, 'steps 3, 4 and 5 are non-finite; 5 exceeds the allowed 2');
        assert.equal(cell.record.nonFiniteLosses, 3);
        assert.equal(cell.record.finalNll, cell.record.evaluations.at(-1)?.result ?? null, 'no final evaluation after divergence');
        assert.ok(!cell.record.evaluations.some((point) => point.result.split === 'test'));
      } else {
        assert.equal(cell.record.outcome.status, 'completed', cell.cellId);
      }
    }
    // The record on disk keeps the non-finite losses as null and reads back as NaN.
    const file = join(summary.folder, cellFileName('synthetic/fc/ssm/D16/L2/B100/seed0'));
    assert.match(readFileSync(file, 'utf8'), /null/);
    const record = parseRecord(readFileSync(file, 'utf8'));
    assert.notEqual(typeof record, 'string', String(record));
    assert.ok(Number.isNaN(typeof record === 'string' ? 0 : record.losses[4]), 'the null loss did not come back as NaN');
  });

  it('errored cells retried on re-run', async () => {
    const root = temporaryFolder();
    const resolved = scenario();
    let failing = true;
    const first = fakeFactory((config): FakeBehaviour & { failCreate?: boolean } => {
      if (!failing) return {};
      if (config.objective === 'dsm') return { failCreate: true };
      if (config.objective === 'fdssm' && config.seed === 1) return { failAtStep: 2 };
      if (config.objective === 'ml' && config.seed === 0) return { failEvaluate: true };
      return {};
    });
    const summary = await runScenario(resolved, options(root, first.factory));
    const errored = summary.cells.filter((cell) => cell.record.outcome.status === 'errored').map((cell) => cell.cellId);
    assert.deepEqual(errored, [
      'synthetic/fc/dsm/D16/L2/B100/seed0',
      'synthetic/fc/dsm/D16/L2/B100/seed1',
      'synthetic/fc/fdssm/D16/L2/B100/seed1',
      'synthetic/fc/ml/D16/L2/B100/seed0',
    ]);
    assert.equal(summary.erroredNow, 4);
    const dsm = summary.cells.find((cell) => cell.cellId === errored[0]);
    assert.match(dsm?.record.outcome.status === 'errored' ? dsm.record.outcome.message : '', /creating the training session failed: .*injected creation failure/);

    failing = false;
    const second = fakeFactory();
    const rerun = await runScenario(resolved, options(root, second.factory));
    assert.deepEqual(second.created.map((session) => `${session.config.objective}/${session.config.seed}`).sort(), ['dsm/0', 'dsm/1', 'fdssm/1', 'ml/0']);
    assert.equal(rerun.erroredNow, 0);
    assert.ok(rerun.cells.every((cell) => cell.record.outcome.status === 'completed'));
    assert.equal(rerun.cells.filter((cell) => cell.ranNow).length, 4);

    const third = fakeFactory();
    await runScenario(resolved, options(root, third.factory));
    assert.equal(third.created.length, 0, 'a complete folder ran cells again');
  });

  it('unsupported cell recorded as skipped', async () => {
    const root = temporaryFolder();
    // A configuration resolver that does not support the cell yet, as for an unbuilt architecture.
    const resolver = (): never => {
      throw new RangeError("architecture 'glow' with SSM is not supported yet");
    };
    const resolved = resolveDocument(
      {
        name: 'skip-probe',
        description: 'probe',
        grid: { datasets: ['mnist'], architectures: ['glow'], objectives: ['ssm'] },
        measure: { kind: 'train', budget: { iterations: 1 } },
      },
      '',
      resolver,
    );
    const { factory, created } = fakeFactory();
    const summary = await runScenario(resolved, options(root, factory));
    assert.equal(created.length, 0);
    const record = summary.cells[0].record;
    assert.equal(record.outcome.status, 'skipped');
    assert.match(record.outcome.status === 'skipped' ? record.outcome.reason : '', /not supported yet/);
    assert.equal(record.config, null);
    assert.equal(record.parameters.architecture, 'glow');
  });

  it('runtime cells time warm-up apart', async () => {
    const root = temporaryFolder();
    const resolved = scenario((document) => {
      document.grid.objectives = ['dsm'];
      document.measure = { kind: 'runtime', warmupIterations: 2, iterations: 5 };
    });
    const { factory, created } = fakeFactory();
    const summary = await runScenario(resolved, options(root, factory));
    for (const cell of summary.cells) {
      assert.equal(cell.record.measure, 'runtime');
      assert.equal(cell.record.timing?.warmupIterations, 2);
      assert.equal(cell.record.timing?.samplesMs.length, 5);
      assert.deepEqual(cell.record.evaluations, []);
      assert.equal(cell.record.finalNll, null);
      // The fake session launches no kernel and calls no LAPACK routine, so its count is zero.
      assert.deepEqual(cell.record.operations, { perStep: 0, lapackPerStep: 0, partial: false });
      assert.equal(cell.record.losses.length, 5, 'the counted step is not a timed one');
    }
    // 2 warm-up and 5 timed steps: the second warm-up step is the counted one.
    assert.ok(created.every((session) => session.steps === 7 && session.evaluations.length === 0));
  });

  it('without warm-up one more step is counted', async () => {
    const resolved = scenario((document) => {
      document.grid.objectives = ['dsm'];
      document.measure = { kind: 'runtime', warmupIterations: 0, iterations: 4 };
    });
    const { factory, created } = fakeFactory();
    const summary = await runScenario(resolved, options(temporaryFolder(), factory));
    for (const [index, cell] of summary.cells.entries()) {
      assert.deepEqual(cell.record.operations, { perStep: 0, lapackPerStep: 0, partial: false });
      assert.equal(cell.record.timing?.samplesMs.length, 4);
      assert.equal(created[index].steps, 5);
    }
  });

  it('failed warm-up count fails the cell', async () => {
    const resolved = scenario((document) => {
      document.grid.objectives = ['dsm'];
      document.measure = { kind: 'runtime', warmupIterations: 2, iterations: 3 };
    });
    // The second warm-up step is the counted one, and a step that throws there fails the cell.
    const { factory } = fakeFactory(() => ({ failAtStep: 2 }));
    const summary = await runScenario(resolved, options(temporaryFolder(), factory));
    for (const cell of summary.cells) {
      assert.equal(cell.record.outcome.status, 'errored');
      assert.match(cell.record.outcome.status === 'errored' ? cell.record.outcome.message : '', /injected failure at step 2/);
    }
  });

  it('no operation count after divergence or in training', async () => {
    const diverging = scenario((document) => {
      document.grid.objectives = ['dsm'];
      document.measure = { kind: 'runtime', warmupIterations: 0, iterations: 5 };
      document.divergence = { maxConsecutiveNonFinite: 1 };
    });
    const { factory, created } = fakeFactory(() => ({ nonFiniteFrom: 2 }));
    const summary = await runScenario(diverging, options(temporaryFolder(), factory));
    for (const [index, cell] of summary.cells.entries()) {
      assert.equal(cell.record.outcome.status, 'diverged');
      assert.equal(cell.record.operations, null);
      assert.equal(created[index].steps, cell.record.losses.length, 'no step after the divergence');
    }

    const training = scenario((document) => {
      document.grid.objectives = ['dsm'];
      document.measure = { kind: 'train', budget: { iterations: 3 } };
    });
    const trained = fakeFactory();
    const trainSummary = await runScenario(training, options(temporaryFolder(), trained.factory));
    for (const [index, cell] of trainSummary.cells.entries()) {
      assert.equal('operations' in cell.record, false);
      assert.equal(trained.created[index].steps, 3);
    }
  });

  it('failed count keeps the cell timed', async () => {
    const resolved = scenario((document) => {
      document.grid.objectives = ['dsm'];
      document.measure = { kind: 'runtime', warmupIterations: 0, iterations: 4 };
    });
    // No warm-up and 4 timed steps, so step 5 is the counted one.
    const { factory } = fakeFactory(() => ({ failAtStep: 5 }));
    const events: RunEvent[] = [];
    const summary = await runScenario(resolved, options(temporaryFolder(), factory, { onEvent: (event) => events.push(event) }));
    for (const cell of summary.cells) {
      assert.equal(cell.record.outcome.status, 'completed');
      assert.equal(cell.record.timing?.samplesMs.length, 4);
      assert.equal(cell.record.operations, null);
      const warnings = events.filter((event) => event.type === 'warning' && event.cellId === cell.cellId);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0].type === 'warning' ? warnings[0].message : '', /counting the operations of one step failed: FakeSession: injected failure at step 5/);
    }
  });

  it('epoch budget uses iterations per epoch', async () => {
    const root = temporaryFolder();
    const resolved = scenario((document) => {
      document.grid.objectives = ['dsm'];
      document.grid.seeds = [0];
      document.measure = { kind: 'train', budget: { epochs: 1.5 }, final: false };
    });
    const { factory, created } = fakeFactory();
    const summary = await runScenario(resolved, options(root, factory));
    // The fake session has 10 iterations per epoch.
    assert.equal(created[0].steps, 15);
    assert.equal(summary.cells[0].record.finalNll, null);
  });

  it('changed scenario rejected until --fresh', async () => {
    const root = temporaryFolder();
    await runScenario(scenario(), options(root, fakeFactory().factory));
    const changed = scenario((document) => {
      document.measure.budget = { iterations: 5 };
    });
    const { factory, created } = fakeFactory();
    await assert.rejects(runScenario(changed, options(root, factory)), (error: ScenarioChangedError) => {
      assert.ok(error instanceof ScenarioChangedError);
      assert.match(error.message, /fake-sweep[/\\]scenario\.json/);
      assert.match(error.message, /--fresh/);
      return true;
    });
    assert.throws(() => planRun(changed, { resultsRoot: root }), ScenarioChangedError);
    assert.equal(created.length, 0);

    const fresh = await runScenario(changed, options(root, factory, { fresh: true }));
    assert.ok(fresh.movedAsideTo, 'nothing was moved aside');
    assert.ok(existsSync(fresh.movedAsideTo));
    assert.match(fresh.movedAsideTo, /fake-sweep\.old-\d{8}T\d{6}Z/);
    assert.equal(recordFiles(fresh.movedAsideTo).length, 10, 'the old records were not kept');
    assert.equal(created.length, 10);
    // Readers skip the folder moved aside.
    assert.equal(readResults(root).length, 10);
  });

  it('record with another hash rejected', async () => {
    const root = temporaryFolder();
    const resolved = scenario();
    const summary = await runScenario(resolved, options(root, fakeFactory().factory, { only: (id) => id.includes('/ml/') }));
    const file = join(summary.folder, recordFiles(summary.folder)[0]);
    const record = JSON.parse(readFileSync(file, 'utf8'));
    record.scenario.hash = 'f'.repeat(64);
    writeFileSync(file, JSON.stringify(record));
    await assert.rejects(runScenario(resolved, options(root, fakeFactory().factory)), (error: Error) => error instanceof ScenarioChangedError && error.message.includes(file));
  });

  it('unreadable record file run again', async () => {
    const root = temporaryFolder();
    const resolved = scenario();
    const first = await runScenario(resolved, options(root, fakeFactory().factory));
    const broken = join(first.folder, cellFileName('synthetic/fc/sml/D16/L2/B100/seed1'));
    writeFileSync(broken, '{"schemaVersion": 1, "cellId": "synth');
    const warnings: string[] = [];
    const { factory, created } = fakeFactory();
    await runScenario(resolved, options(root, factory, { onEvent: (event) => event.type === 'warning' && warnings.push(event.message) }));
    assert.deepEqual(created.map((session) => `${session.config.objective}/${session.config.seed}`), ['sml/1']);
    assert.ok(warnings.some((message) => message.includes(broken)), warnings.join('\n'));
    assert.equal(typeof parseRecord(readFileSync(broken, 'utf8')), 'object');
  });

  it('crash between write and rename recovers', async () => {
    const root = temporaryFolder();
    const resolved = scenario();
    let writes = 0;
    const crashing = {
      beforeRename: () => {
        writes += 1;
        // Write 1 is the manifest; crash on the fourth cell's record.
        if (writes === 5) throw new Error('simulated crash before rename');
      },
    };
    const first = fakeFactory();
    await assert.rejects(runScenario(resolved, options(root, first.factory, { writeHooks: crashing })), /simulated crash/);
    const folder = join(root, 'fake-sweep');
    const names = readdirSync(folder);
    assert.equal(names.filter((name) => name.endsWith('.tmp')).length, 1, 'the temporary file of the crashed write is missing');
    assert.equal(recordFiles(folder).length, 3);
    for (const name of recordFiles(folder)) assert.equal(typeof parseRecord(readFileSync(join(folder, name), 'utf8')), 'object', name);

    const second = fakeFactory();
    const summary = await runScenario(resolved, options(root, second.factory));
    assert.equal(second.created.length, 7, 'the crashed cell and the six after it run again');
    assert.equal(readdirSync(folder).filter((name) => name.endsWith('.tmp')).length, 0, 'stale temporary file not deleted');
    assert.equal(recordFiles(folder).length, 10);
    assert.ok(summary.cells.every((cell) => cell.record.outcome.status === 'completed'));
    const allCreated = [...first.created, ...second.created].map((session) => `${session.config.objective}/${session.config.seed}`);
    assert.equal(new Set(allCreated).size, 10);
  });
});

describe('sharding', () => {
  it('shards cover the grid exactly once', async () => {
    const resolved = scenario((document) => {
      document.grid.seeds = [0, 1, 2];
      document.grid.batchSizes = [10, 20];
    });
    for (const count of [1, 2, 3, 7, 40]) {
      const seen: string[] = [];
      for (let index = 1; index <= count; index++) seen.push(...selectShard(resolved.cells, { index, count }).map((cell) => cell.cellId));
      assert.equal(seen.length, resolved.cells.length, `n = ${count}`);
      assert.deepEqual([...seen].sort(), resolved.cells.map((cell) => cell.cellId).sort(), `n = ${count}`);
    }
  });

  it('shard runs merge into the whole grid', async () => {
    const resolved = scenario();
    const shardRoots = [temporaryFolder(), temporaryFolder(), temporaryFolder()];
    for (const [i, root] of shardRoots.entries()) {
      await runScenario(resolved, options(root, fakeFactory().factory, { shard: { index: i + 1, count: 3 } }));
    }
    const counts = shardRoots.map((root) => recordFiles(join(root, 'fake-sweep')).length);
    assert.deepEqual(counts, [4, 3, 3]);

    const target = temporaryFolder();
    const merged = mergeResults(shardRoots, target);
    assert.equal(merged.scenarios.length, 1);
    assert.equal(merged.scenarios[0].records, 10);
    assert.deepEqual(merged.scenarios[0].duplicates, []);
    assert.equal(readResults(target).length, 10);
    assert.ok(existsSync(join(target, 'fake-sweep', 'scenario.json')));

    // The merged folder resumes: nothing is left to run.
    const { factory, created } = fakeFactory();
    await runScenario(resolved, options(target, factory));
    assert.equal(created.length, 0);
  });

  it('merge rejects mixed hashes', async () => {
    const a = temporaryFolder();
    const b = temporaryFolder();
    await runScenario(scenario(), options(a, fakeFactory().factory, { shard: { index: 1, count: 2 } }));
    const changed = scenario((document) => {
      document.measure.budget = { iterations: 3 };
    });
    await runScenario(changed, options(b, fakeFactory().factory, { shard: { index: 2, count: 2 } }));
    const target = temporaryFolder();
    assert.throws(() => mergeResults([a, b], target), (error: Error) => error instanceof MixedHashError && /different scenario versions/.test(error.message));
    assert.equal(readdirSync(target).length, 0, 'merge wrote before rejecting');
  });

  it('merge keeps the better duplicate', async () => {
    const a = temporaryFolder();
    const b = temporaryFolder();
    const resolved = scenario((document) => {
      document.grid.objectives = ['dsm'];
      document.grid.seeds = [0];
    });
    await runScenario(resolved, options(a, fakeFactory(() => ({ failAtStep: 1 })).factory));
    await runScenario(resolved, options(b, fakeFactory().factory));
    const target = temporaryFolder();
    const merged = mergeResults([a, b], target);
    assert.deepEqual(merged.scenarios[0].duplicates, ['synthetic/fc/dsm/D16/L2/B100/seed0']);
    assert.equal(readResults(target)[0].outcome.status, 'completed');
  });
});

describe('removeStaleTemporaryFiles', () => {
  it('keeps writes of live processes', () => {
    const folder = temporaryFolder();
    const host = hostname();
    const live = `.a.json~${host}~${process.ppid}~abc.tmp`;
    const dead = `.b.json~${host}~999999999~abc.tmp`;
    const own = `.c.json~${host}~${process.pid}~abc.tmp`;
    const elsewhere = `.d.json~other-host~1~abc.tmp`;
    for (const name of [live, dead, own, elsewhere]) writeFileSync(join(folder, name), '{');
    assert.deepEqual(removeStaleTemporaryFiles(folder).sort(), [dead, own].sort());
    assert.deepEqual(readdirSync(folder).sort(), [live, elsewhere].sort());
    // Ten minutes later every temporary file counts as abandoned.
    assert.deepEqual(removeStaleTemporaryFiles(folder, Date.now() + 11 * 60 * 1000).sort(), [live, elsewhere].sort());
  });
});
