import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { environmentsOf } from '../../src/report/page.js';
import type { ResultSet } from '../../src/report/records.js';
import type { EnvironmentInfo } from '../../src/runner/record.js';

/** Returns a result set whose records carry only the given environments. */
function setWith(environments: EnvironmentInfo[]): ResultSet {
  return {
    scenarioName: 'default',
    scenarioHash: 'abc',
    scenarioFile: 'benchmarks/default.json',
    description: null,
    records: environments.map((environment, index) => ({ record: { environment } as never, file: `/tmp/record-${index}.json` })),
  };
}

const BASE: EnvironmentInfo = {
  backend: 'wasm',
  backendAttempts: [{ name: 'wasm' }],
  nodeVersion: 'v20.0.0',
  packages: {},
  cpuModel: 'Test CPU',
  cpuCount: 2,
  platform: 'linux-x64',
  hostname: 'host',
  codeRevision: 'abc',
};

describe('environmentsOf', () => {
  test('LAPACK threads split the groups', () => {
    const withWorker = { ...BASE, lapackThreads: { threads: 2 as const, reason: 'this thread and one LAPACK worker thread' } };
    const withoutWorker = { ...BASE, lapackThreads: { threads: 1 as const, reason: 'one thread requested (EBFLOW_WASM_THREADS=1)' } };
    const groups = environmentsOf(setWith([withWorker, withoutWorker, withWorker]));
    assert.equal(groups.length, 2);
    assert.deepEqual(groups.map((group) => group.records), [2, 1]);
  });

  test('older records without them stay one group', () => {
    assert.equal(environmentsOf(setWith([BASE, BASE])).length, 1);
  });
});
