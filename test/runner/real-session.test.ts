import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../../src/backend/select.js';
import { readResults } from '../../src/runner/results.js';
import { runScenario } from '../../src/runner/sweep.js';
import { resolveDocument } from '../../src/scenarios/catalog.js';

const folders: string[] = [];
after(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

describe('runScenario with the real training session', () => {
  it('trains, evaluates and records a tiny grid', async () => {
    const backend = await selectBackend('cpu');
    const root = mkdtempSync(join(tmpdir(), 'ebflow-real-'));
    folders.push(root);
    const resolved = resolveDocument(
      {
        name: 'real-tiny',
        description: 'end-to-end test: synthetic 4×4 images, FC model',
        grid: { datasets: ['synthetic'], architectures: ['fc'], objectives: ['ml', 'dsm'], imageSides: [4], batchSizes: [8] },
        measure: { kind: 'train', budget: { iterations: 3 }, evaluation: { every: { iterations: 2 }, maxImages: 16 }, final: { maxImages: 24 } },
      },
      '',
    );
    const tensorsBefore = tf.memory().numTensors;
    const summary = await runScenario(resolved, { resultsRoot: root, backend });

    assert.equal(summary.cells.length, 2);
    for (const { record } of summary.cells) {
      assert.deepEqual(record.outcome, { status: 'completed' }, JSON.stringify(record.outcome));
      assert.equal(record.environment.backend, 'cpu');
      assert.equal(record.losses.length, 3);
      assert.ok(record.losses.every(Number.isFinite), `losses ${record.losses}`);
      assert.equal(record.timing?.samplesMs.length, 3);
      assert.ok((record.timing?.medianMs ?? 0) > 0);
      assert.deepEqual(record.evaluations.map((point) => [point.step, point.result.split, point.result.images]), [
        [2, 'validation', 16],
        [3, 'test', 24],
      ]);
      assert.ok(Number.isFinite(record.finalNll?.nllNats), `final NLL ${record.finalNll?.nllNats}`);
      // bits/dim = NLL / (D ln 2) with D = 16.
      assert.ok(Math.abs((record.finalNll?.bitsPerDim ?? 0) - (record.finalNll?.nllNats ?? 0) / (16 * Math.LN2)) < 1e-6);
      assert.ok((record.memory?.peakTensorBytes ?? 0) > 0);
      assert.match(record.environment.packages['@tensorflow/tfjs-core'] ?? '', /^4\./);
      // A completed training cell records an 8×8 grid of samples next to itself: 2 + 8·(4 + 2) pixels square.
      assert.equal(record.artifacts?.length, 1);
      assert.equal(record.artifacts?.[0].kind, 'samples');
      const png = readFileSync(join(root, 'real-tiny', record.artifacts?.[0].path ?? ''));
      assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
      assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [50, 50]);
    }
    assert.equal(tf.memory().numTensors, tensorsBefore, 'the sessions leaked tensors');
    assert.equal(readResults(root).length, 2);
  });
});
