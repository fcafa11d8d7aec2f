import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

import type { ObjectiveName } from '../../src/objectives/objective.js';
import { RandomStream } from '../../src/random/stream.js';
import { resolveTrainingConfig, type TrainingConfigInput } from '../../src/train/config.js';
import { ParallelGradientEngine } from '../../src/train/parallel/gradient-engine.js';
import { createModel, createTrainingSession, type SessionState } from '../../src/train/session-impl.js';

const OBJECTIVES: readonly ObjectiveName[] = ['ml', 'sml', 'ssm', 'dsm', 'fdssm'];
const STEPS = 3;
const TOLERANCE = 1e-5;
/**
 * FDSSM divides differences of nearly equal energies by ε² (ε = 0.1 for one-channel CNNs), which
 * magnifies float32 rounding: on one thread, the mean of the two half-batch gradients already
 * differs from the full-batch gradient by up to 5e-6 relative (4×4×1 CNN, 10 images), and three
 * RMSprop steps turn that into about 1.4e-5 on the smallest biases.
 */
const FDSSM_TOLERANCE = 1e-4;

function config(change: Partial<TrainingConfigInput>) {
  return resolveTrainingConfig({
    dataset: 'synthetic',
    architecture: 'fc',
    objective: 'dsm',
    imageShape: [4, 4, 1],
    batchSize: 10,
    seed: 2,
    ...change,
  });
}

/** Runs `STEPS` steps and returns the losses and the final state. */
async function run(change: Partial<TrainingConfigInput>): Promise<{ losses: number[]; state: SessionState; tensors: number[] }> {
  const session = await createTrainingSession(config(change));
  try {
    const losses: number[] = [];
    const tensors: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      losses.push((await session.step()).loss);
      tensors.push(...(session.gradientWorkers?.workerTensorCounts ?? []));
    }
    return { losses, state: session.getState(), tensors };
  } finally {
    session.dispose();
  }
}

/** Returns max |a − b| / max |a| over the elements. */
function relativeDifference(a: Float32Array, b: Float32Array): number {
  let difference = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    difference = Math.max(difference, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return difference / scale;
}

/** Checks that the two-worker run matches the one-thread run of the same config. */
async function checkEquivalent(change: Partial<TrainingConfigInput>): Promise<void> {
  const label = JSON.stringify(change);
  const tolerance = change.objective === 'fdssm' ? FDSSM_TOLERANCE : TOLERANCE;
  const single = await run({ ...change, workers: 1 });
  const parallel = await run({ ...change, workers: 2 });
  // With 10 images the split is 5 and 5; the models change every step, so this also checks the
  // parameters reach the workers.
  single.losses.forEach((loss, i) => {
    assert.ok(Number.isFinite(loss), `${label} step ${i + 1}: single-thread loss ${loss}`);
    const relative = Math.abs(parallel.losses[i] - loss) / Math.abs(loss);
    assert.ok(relative <= tolerance, `${label} step ${i + 1}: loss ${parallel.losses[i]} with 2 workers, ${loss} on one thread`);
  });
  assert.notEqual(single.losses[0], single.losses[STEPS - 1], `${label}: the loss did not change, so the steps compared nothing`);
  single.state.parameters.forEach((values, i) => {
    const relative = relativeDifference(values, parallel.state.parameters[i]);
    assert.ok(relative <= tolerance, `${label} parameter ${i}: relative difference ${relative}`);
  });
  assert.deepEqual(parallel.state.random, single.state.random, `${label}: the random streams diverged`);
  assert.ok(
    parallel.tensors.every((count) => count === parallel.tensors[0]),
    `${label}: worker tensor counts per step ${parallel.tensors.join(', ')}`,
  );
}

describe('parallel gradients', () => {
  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('wasm');
    await tf.ready();
  });

  it('matches one thread on an FC model', async () => {
    for (const objective of OBJECTIVES) await checkEquivalent({ objective });
  });

  it('matches one thread on a CNN', async () => {
    for (const objective of OBJECTIVES) await checkEquivalent({ objective, architecture: 'cnn', imageShape: [4, 4, 1] });
  });

  it('splits several SSM slices and an odd batch', async () => {
    await checkEquivalent({ objective: 'ssm', slices: 2, batchSize: 7 });
  });

  it('matches without MaP, with λ and with three layers', async () => {
    await checkEquivalent({ objective: 'ssm', matchAfterPreprocessing: false });
    await checkEquivalent({ objective: 'ml', matchAfterPreprocessing: false });
    await checkEquivalent({ objective: 'ml', depth: 3, batchSize: 1 });
    await checkEquivalent({ objective: 'dsm', energyWeight: 0.01 });
  });

  it('reports a worker error with its message', async () => {
    const resolved = config({ objective: 'dsm', workers: 2 });
    const model = createModel(resolved, new RandomStream(0));
    const engine = await ParallelGradientEngine.create(resolved, model, tf.getBackend());
    const x = tf.zeros([4, 16]);
    const misnamed = { wrongName: tf.zeros([4, 16]) };
    try {
      await assert.rejects(engine.computeGradients(x, misnamed), /parallel gradients: worker [01] failed: .*dsm objective: the prepared batch has no "noise"/);
      // The workers stay usable after a failed step.
      const { loss, gradients } = await engine.computeGradients(x, { noise: tf.ones([4, 16]) });
      assert.ok(Number.isFinite(loss), `loss after the error ${loss}`);
      assert.equal(gradients.length, model.variables.length);
      gradients.forEach((gradient, i) => assert.deepEqual(gradient.shape, model.variables[i].shape, `gradient ${i}`));
      tf.dispose(gradients);
    } finally {
      await engine.dispose();
      tf.dispose([x, misnamed.wrongName]);
      model.variables.forEach((v) => v.dispose());
    }
  });

  it('reports a worker start failure', async () => {
    const resolved = config({ objective: 'dsm', workers: 2 });
    const model = createModel(resolved, new RandomStream(0));
    try {
      await assert.rejects(
        ParallelGradientEngine.create(resolved, model, 'no-such-backend'),
        /parallel gradients: worker [01] failed to start: .*unknown backend 'no-such-backend'/,
      );
    } finally {
      model.variables.forEach((v) => v.dispose());
    }
  });

  it('rejects pending and later steps after dispose', async () => {
    const resolved = config({ objective: 'ssm', workers: 2 });
    const model = createModel(resolved, new RandomStream(0));
    const engine = await ParallelGradientEngine.create(resolved, model, tf.getBackend());
    const x = tf.zeros([4, 16]);
    const directions = tf.ones([4, 16]);
    try {
      const pending = assert.rejects(engine.computeGradients(x, { directions }), /terminated by dispose/);
      await engine.dispose();
      await pending;
      await assert.rejects(engine.computeGradients(x, { directions }), /after dispose/);
    } finally {
      tf.dispose([x, directions]);
      model.variables.forEach((v) => v.dispose());
    }
  });

  it('rejects invalid workers values', () => {
    assert.throws(() => config({ workers: 3 as 2 }), /workers must be 1 .* or 2 .*received 3/);
    assert.throws(
      () => config({ architecture: 'cnn', spectralNorm: true, workers: 2 }),
      /workers 2 cannot be combined with spectralNorm true/,
    );
    assert.equal(config({}).workers, 1);
  });
});
