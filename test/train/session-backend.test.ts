import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SESSION_MODULE = fileURLToPath(new URL('../../src/train/session-impl.js', import.meta.url));
const CONFIG_MODULE = fileURLToPath(new URL('../../src/train/config.js', import.meta.url));

test('session before backend names selectBackend', () => {
  // A fresh process, because every other spec has already selected a backend in this one.
  const script = `import { createTrainingSession } from ${JSON.stringify(SESSION_MODULE)};
import { resolveTrainingConfig } from ${JSON.stringify(CONFIG_MODULE)};
const config = resolveTrainingConfig({ dataset: 'synthetic', architecture: 'fc', objective: 'dsm', imageShape: [4, 4, 1], depth: 2, batchSize: 4, seed: 0 });
try {
  await createTrainingSession(config);
  console.log('created');
} catch (error) {
  console.log(error.message);
}`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(child.status, 0, child.stderr);
  assert.match(child.stdout, /^training session: no tfjs backend is ready; await selectBackend\(\) from this library/);
});
