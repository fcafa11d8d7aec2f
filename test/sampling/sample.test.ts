import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

import { toPixels } from '../../src/data/preprocess.js';
import { createFcFlow } from '../../src/models/fc-flow.js';
import { RandomStream } from '../../src/random/stream.js';
import { sampleImages } from '../../src/sampling/sample.js';
import { resolveTrainingConfig, type TrainingConfigInput } from '../../src/train/config.js';
import { createTrainingSession, loadCheckpointModel } from '../../src/train/session-impl.js';

function synthetic(change: Partial<TrainingConfigInput> = {}) {
  return resolveTrainingConfig({
    dataset: 'synthetic',
    architecture: 'fc',
    objective: 'ssm',
    imageShape: [4, 4, 1],
    batchSize: 50,
    learningRate: 1e-2,
    seed: 1,
    ...change,
  });
}

describe('sampling', () => {
  let folder = '';
  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('wasm');
    await tf.ready();
    folder = await mkdtemp(join(tmpdir(), 'ebflow-sample-'));
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('inverts base noise with the EMA weights', async () => {
    const session = await createTrainingSession(synthetic());
    for (let i = 0; i < 3; i++) await session.step();
    const samples = await sampleImages(session, 12, new RandomStream(5), { batchSize: 5 });
    assert.equal(samples.count, 12);
    assert.deepEqual(samples.imageShape, [4, 4, 1]);
    assert.equal(samples.pixels.length, 12 * 16);

    // The same computation by hand: a fresh model with the EMA shadows, and the same draws.
    const shadows = session.getState().ema?.shadows ?? [];
    const model = createFcFlow({ dimension: 16, depth: 2, residual: false });
    model.variables.forEach((v, i) => v.assign(tf.tensor(shadows[i], v.shape)));
    const draws = new RandomStream(5);
    const expected: number[] = [];
    for (const size of [5, 5, 2]) {
      const pixels = tf.tidy(() => toPixels(model.inverse(tf.tensor2d(draws.normalArray(size * 16), [size, 16])), 0.5));
      expected.push(...pixels.dataSync());
      pixels.dispose();
    }
    assert.deepEqual([...samples.pixels], expected);
    assert.ok(new Set(samples.pixels).size > 10, 'samples vary');
    model.variables.forEach((v) => v.dispose());
    session.dispose();
  });

  it('gives equal pixels with MaP on and off', async () => {
    const withMap = await createTrainingSession(synthetic());
    const withoutMap = await createTrainingSession(synthetic({ matchAfterPreprocessing: false }));
    for (let i = 0; i < 2; i++) await withMap.step();
    withoutMap.setState(withMap.getState());
    const on = await sampleImages(withMap, 8, new RandomStream(6));
    const off = await sampleImages(withoutMap, 8, new RandomStream(6));
    assert.deepEqual(off.pixels, on.pixels);
    withMap.dispose();
    withoutMap.dispose();
  });

  it('samples a checkpoint and a CNN', async () => {
    const session = await createTrainingSession(synthetic({ architecture: 'cnn', imageShape: [8, 8, 1] }));
    await session.step();
    const path = join(folder, 'cnn.ckpt');
    await session.saveCheckpoint(path);
    const fromSession = await sampleImages(session, 3, new RandomStream(7));
    session.dispose();

    const loaded = await loadCheckpointModel(path);
    const fromCheckpoint = await sampleImages(loaded, 3, new RandomStream(7));
    assert.equal(fromCheckpoint.pixels.length, 3 * 64);
    assert.deepEqual(fromCheckpoint.pixels, fromSession.pixels);
    loaded.dispose();
    await assert.rejects(sampleImages(loaded, 0, new RandomStream(1)), /count must be a positive integer, received 0/);
  });
});
