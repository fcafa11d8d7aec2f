import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

import { loadCifar10 } from '../../src/data/cifar10.js';
import type { ImageDataset } from '../../src/data/dataset.js';
import { CheckpointError, readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.js';
import { resolveTrainingConfig, type TrainingConfigInput } from '../../src/train/config.js';
import {
  createTrainingSession,
  loadCheckpointModel,
  resumeTrainingSession,
  type EbflowTrainingSession,
  type SessionState,
} from '../../src/train/session-impl.js';
import type { TrainingConfig } from '../../src/train/session.js';
import { writeFixtureBatches } from '../data/cifar10-fixture.js';

let folder = '';

function synthetic(change: Partial<TrainingConfigInput> = {}): TrainingConfig {
  return resolveTrainingConfig({ dataset: 'synthetic', architecture: 'fc', objective: 'ssm', imageShape: [6, 6, 1], batchSize: 50, ...change });
}

async function run(session: EbflowTrainingSession, steps: number): Promise<void> {
  for (let i = 0; i < steps; i++) await session.step();
}

/** Asserts that two states are equal array by array, naming the first field that differs. */
function assertSameState(actual: SessionState, expected: SessionState, label: string): void {
  assert.equal(actual.iteration, expected.iteration, `${label}: iteration`);
  assert.equal(actual.nonFiniteSteps, expected.nonFiniteSteps, `${label}: nonFiniteSteps`);
  assert.deepEqual(actual.random, expected.random, `${label}: random stream`);
  assert.deepEqual(actual.epochOrder, expected.epochOrder, `${label}: data order`);
  actual.parameters.forEach((values, i) => assert.deepEqual(values, expected.parameters[i], `${label}: parameter ${i}`));
  assert.equal(actual.optimizer.updates, expected.optimizer.updates, `${label}: optimiser updates`);
  actual.optimizer.squareAverages.forEach((values, i) => assert.deepEqual(values, expected.optimizer.squareAverages[i], `${label}: RMSprop average ${i}`));
  assert.equal(actual.ema?.updates, expected.ema?.updates, `${label}: EMA updates`);
  actual.ema?.shadows.forEach((values, i) => assert.deepEqual(values, expected.ema?.shadows[i], `${label}: EMA shadow ${i}`));
  assert.deepEqual(actual.buffers, expected.buffers, `${label}: buffers`);
}

describe('checkpoints', () => {
  let cifar: ImageDataset;

  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('wasm');
    await tf.ready();
    folder = await mkdtemp(join(tmpdir(), 'ebflow-checkpoint-'));
    // Eight records per file: 32 training images, four batches of 8 per epoch.
    await writeFixtureBatches(join(folder, 'cifar'), 8);
    cifar = await loadCifar10({ directory: join(folder, 'cifar'), recordsPerFile: 8 });
  });

  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('resumes to the uninterrupted parameters', async () => {
    const cases: { label: string; config: TrainingConfig; dataset?: ImageDataset; before: number; after: number }[] = [
      // Shuffled data, spectral normalisation (u, v buffers), an epoch boundary after the resume.
      {
        label: 'CIFAR-10 CNN dsm',
        config: resolveTrainingConfig({ dataset: 'cifar10', architecture: 'cnn', objective: 'dsm', batchSize: 8, seed: 3, learningRate: 1e-3 }),
        dataset: cifar,
        before: 3,
        after: 3,
      },
      { label: 'FC ssm without MaP', config: synthetic({ matchAfterPreprocessing: false, seed: 5, learningRate: 1e-3 }), before: 2, after: 2 },
      { label: 'FC ml without EMA', config: synthetic({ objective: 'ml', emaDecay: null, seed: 6 }), before: 2, after: 1 },
    ];
    for (const { label, config, dataset, before: stepsBefore, after: stepsAfter } of cases) {
      assert.equal(config.spectralNorm, label.startsWith('CIFAR'), `${label}: spectral normalisation`);
      const path = join(folder, `${label.replaceAll(' ', '-')}.ckpt`);
      const interrupted = await createTrainingSession(config, { dataset });
      await run(interrupted, stepsBefore);
      await interrupted.saveCheckpoint(path);
      interrupted.dispose();

      const resumed = await resumeTrainingSession(path, { dataset });
      assert.equal(resumed.iteration, stepsBefore, `${label}: resumed iteration`);
      await run(resumed, stepsAfter);

      const uninterrupted = await createTrainingSession(config, { dataset });
      await run(uninterrupted, stepsBefore + stepsAfter);
      const expected = uninterrupted.getState();
      assertSameState(resumed.getState(), expected, label);
      if (label.startsWith('CIFAR')) {
        assert.ok(expected.epochOrder !== null, 'CIFAR-10 has a data order');
        assert.equal(expected.buffers?.length, 12, 'six convolutions with u and v each');
      }
      if (config.architecture === 'fc') {
        // The same evaluation draws follow. (A CIFAR-size CNN evaluation takes minutes: six
        // float64 log-dets of 3072×3072 Toeplitz matrices.)
        const a = await resumed.evaluate('test', 8);
        const b = await uninterrupted.evaluate('test', 8);
        assert.equal(a.nllNats, b.nllNats, `${label}: evaluation after the resume`);
      }
      resumed.dispose();
      uninterrupted.dispose();
    }
  });

  it('names tensors and stores the config', async () => {
    const session = await createTrainingSession(synthetic());
    await session.step();
    const path = join(folder, 'named.ckpt');
    await session.saveCheckpoint(path);
    const contents = await readCheckpoint(path);
    assert.deepEqual(contents.config, session.config);
    assert.equal(contents.architecture, 'fc');
    assert.equal(contents.counters.iteration, 1);
    assert.equal(contents.counters.optimizerUpdates, 1);
    assert.equal(contents.counters.emaUpdates, 1);
    assert.deepEqual(
      contents.tensors.map((t) => `${t.group} ${t.name} [${t.shape}]`),
      [
        'parameter dense[0].weight [36,36]',
        'parameter dense[0].bias [36]',
        'parameter dense[1].weight [36,36]',
        'parameter dense[1].bias [36]',
        'optimizer dense[0].weight [36,36]',
        'optimizer dense[0].bias [36]',
        'optimizer dense[1].weight [36,36]',
        'optimizer dense[1].bias [36]',
        'ema dense[0].weight [36,36]',
        'ema dense[0].bias [36]',
        'ema dense[1].weight [36,36]',
        'ema dense[1].bias [36]',
      ],
    );
    assert.deepEqual(contents.tensors[1].values, session.getState().parameters[1]);
    // No temporary file is left beside the checkpoint.
    assert.deepEqual((await readdir(folder)).filter((name) => name.includes('named')), ['named.ckpt']);
    session.dispose();
  });

  it('rejects damaged files', async () => {
    const session = await createTrainingSession(synthetic());
    await session.step();
    const path = join(folder, 'damaged.ckpt');
    await session.saveCheckpoint(path);
    const good = await readFile(path);
    session.dispose();
    const headerLength = good.readUInt32LE(8);

    const flipped = Buffer.from(good);
    flipped[flipped.length - 5] ^= 0x40;
    await writeFile(path, flipped);
    await assert.rejects(readCheckpoint(path), (error: unknown) => {
      assert.ok(error instanceof CheckpointError);
      assert.equal(error.problem, 'corrupt');
      assert.match(error.message, /is damaged: the payload's sha256 is [0-9a-f]{64}, the header records [0-9a-f]{64} \(checksum mismatch\)/);
      return true;
    });

    await writeFile(path, good);
    await truncate(path, good.length - 100);
    await assert.rejects(readCheckpoint(path), /its payload has \d+ bytes, the header declares \d+ \(the file is truncated\)/);
    await truncate(path, 20);
    await assert.rejects(readCheckpoint(path), /the header declares \d+ bytes but only 8 follow the preamble \(the file is truncated\)/);

    await writeFile(path, Buffer.concat([Buffer.from('PK\u0003\u0004'), good.subarray(4)]));
    await assert.rejects(readCheckpoint(path), /is not an EBFlow checkpoint: it starts with "PK/);

    // A header whose config was edited no longer matches its hash.
    const header = JSON.parse(good.subarray(12, 12 + headerLength).toString('utf8'));
    header.config.learningRate = 0.5;
    const edited = Buffer.from(JSON.stringify(header), 'utf8');
    const preamble = Buffer.from(good.subarray(0, 12));
    preamble.writeUInt32LE(edited.length, 8);
    await writeFile(path, Buffer.concat([preamble, edited, good.subarray(12 + headerLength)]));
    await assert.rejects(readCheckpoint(path), /the config's sha256 is [0-9a-f]{64}, the header records [0-9a-f]{64} \(the header was edited or corrupted\)/);

    header.config.learningRate = 1e-4;
    header.counters.iteration = -1;
    const badCounters = Buffer.from(JSON.stringify(header), 'utf8');
    preamble.writeUInt32LE(badCounters.length, 8);
    await writeFile(path, Buffer.concat([preamble, badCounters, good.subarray(12 + headerLength)]));
    await assert.rejects(readCheckpoint(path), /its header's counters are invalid: iteration is -1, not a non-negative integer/);

    header.counters.iteration = 1;
    header.formatVersion = 2;
    const newer = Buffer.from(JSON.stringify(header), 'utf8');
    preamble.writeUInt32LE(newer.length, 8);
    await writeFile(path, Buffer.concat([preamble, newer, good.subarray(12 + headerLength)]));
    await assert.rejects(readCheckpoint(path), /has format version 2, but this code reads version 1 only/);

    await assert.rejects(readCheckpoint(join(folder, 'absent.ckpt')), /checkpoint .*absent\.ckpt not found/);
  });

  it('rejects mismatched sessions', async () => {
    const source = await createTrainingSession(synthetic());
    await source.step();
    const contents = source.checkpointContents();
    source.dispose();

    const smaller = await createTrainingSession(synthetic({ imageShape: [5, 5, 1] }));
    assert.throws(
      () => smaller.restoreCheckpoint(contents, 'small.ckpt'),
      (error: unknown) => {
        assert.ok(error instanceof CheckpointError);
        assert.equal(error.problem, 'mismatch');
        assert.match(error.message, /^checkpoint small\.ckpt does not match this session: /);
        assert.match(error.message, /config\.imageShape is \[6,6,1\] in the checkpoint and \[5,5,1\] here/);
        assert.match(error.message, /checkpoint has dense\[0\]\.weight of shape \[36,36\], the model expects \[25,25\]/);
        assert.match(error.message, /checkpoint has the EMA shadow of dense\[1\]\.bias of shape \[36\], the model expects \[25\]/);
        assert.match(error.message, /resumeTrainingSession does that/);
        return true;
      },
    );
    smaller.dispose();

    const other = await createTrainingSession(synthetic({ objective: 'dsm', emaDecay: null }));
    assert.throws(() => other.restoreCheckpoint(contents), /config\.emaDecay is 0\.999 in the checkpoint and null here; config\.objective is "ssm" in the checkpoint and "dsm" here; checkpoint has the EMA shadow of dense\[0\]\.weight of shape \[36,36\], which the model does not have/);
    other.dispose();

    const cnn = await createTrainingSession(synthetic({ architecture: 'cnn', imageShape: [8, 8, 1] }));
    assert.throws(() => cnn.restoreCheckpoint(contents), /checkpoint holds a "fc" model, this one is "cnn".*checkpoint has no conv\[0\]\.weight; the model expects one of shape \[7,7,1,1\]/);
    cnn.dispose();

    // A folder key is stored but not compared.
    const moved = await createTrainingSession(synthetic());
    const before = tf.memory().numTensors;
    moved.restoreCheckpoint({ ...contents, config: { ...contents.config, cifarDirectory: '/elsewhere' } });
    assert.equal(tf.memory().numTensors, before, 'restoring leaks no tensors');
    assert.equal(moved.iteration, 1);
    moved.dispose();
  });

  it('leaves the target intact when writing fails', async () => {
    const session = await createTrainingSession(synthetic());
    const target = join(folder, 'occupied');
    await mkdir(join(target, 'inside'), { recursive: true });
    // Renaming a file over a non-empty folder fails after the temporary file is written.
    await assert.rejects(session.saveCheckpoint(target));
    assert.deepEqual(await readdir(target), ['inside']);
    assert.deepEqual((await readdir(folder)).filter((name) => name.endsWith('.tmp')), [], 'no temporary file left');

    const contents = session.checkpointContents();
    contents.tensors[0] = { ...contents.tensors[0], shape: [5] };
    await assert.rejects(writeCheckpoint(join(folder, 'bad.ckpt'), contents), /dense\[0\]\.weight has 1296 values for shape \[5\]/);
    session.dispose();
  });

  it('loads the EMA weights for sampling', async () => {
    const session = await createTrainingSession(synthetic({ learningRate: 1e-2 }));
    await run(session, 2);
    const path = join(folder, 'model.ckpt');
    await session.saveCheckpoint(path);
    const state = session.getState();
    session.dispose();

    const ema = await loadCheckpointModel(path);
    assert.equal(ema.weights, 'ema');
    assert.equal(ema.iteration, 2);
    ema.model.variables.forEach((v, i) => assert.deepEqual(v.dataSync(), state.ema?.shadows[i], `EMA weight ${i}`));
    const raw = await loadCheckpointModel(path, { weights: 'raw' });
    raw.model.variables.forEach((v, i) => assert.deepEqual(v.dataSync(), state.parameters[i], `raw weight ${i}`));
    assert.notDeepEqual(state.parameters[0], state.ema?.shadows[0]);
    ema.dispose();
    raw.dispose();
  });
});
