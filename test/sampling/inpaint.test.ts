import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

import { RandomStream } from '../../src/random/stream.js';
import { drawBlurSigma, gaussianBlur } from '../../src/sampling/blur.js';
import type { ImageBatch } from '../../src/sampling/grid.js';
import { inpaintImages, inpaintingGrid, squareMask, strokeMask } from '../../src/sampling/inpaint.js';
import { resolveTrainingConfig, type TrainingConfigInput } from '../../src/train/config.js';
import { createTrainingSession, type EbflowTrainingSession } from '../../src/train/session-impl.js';

const SHAPE: [number, number, number] = [8, 8, 1];

function synthetic(change: Partial<TrainingConfigInput> = {}) {
  return resolveTrainingConfig({ dataset: 'synthetic', architecture: 'fc', objective: 'ssm', imageShape: SHAPE, batchSize: 50, seed: 2, ...change });
}

function testImages(session: EbflowTrainingSession, count: number): ImageBatch {
  const pixels = session.dataset.batch('test', Array.from({ length: count }, (_, i) => i));
  return { pixels, count, imageShape: SHAPE };
}

describe('MCMC inpainting', () => {
  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('wasm');
    await tf.ready();
  });

  it('never moves unmasked pixels', async () => {
    for (const matchAfterPreprocessing of [true, false]) {
      const session = await createTrainingSession(synthetic({ matchAfterPreprocessing }));
      for (let i = 0; i < 2; i++) await session.step();
      const images = testImages(session, 4);
      const mask = squareMask(4, SHAPE, 4);
      const before = tf.memory().numTensors;
      const result = await inpaintImages(session, images, mask, new RandomStream(3), { iterations: 6, smoothing: 0.05 });
      assert.equal(tf.memory().numTensors, before, 'no tensor leaked');
      const label = `MaP ${matchAfterPreprocessing ? 'on' : 'off'}`;
      assert.equal(result.nonFiniteIterations, 0, label);

      let movedInside = 0;
      for (let i = 0; i < mask.length; i++) {
        if (mask[i] === 0) {
          assert.equal(result.completed.pixels[i], images.pixels[i], `${label}: pixel ${i} outside the mask`);
          assert.equal(result.finalModelSpace[i], result.initialModelSpace[i], `${label}: model-space value ${i} outside the mask`);
        } else {
          assert.ok(Number.isFinite(result.finalModelSpace[i]), `${label}: finite value ${i}`);
          if (result.finalModelSpace[i] !== result.initialModelSpace[i]) movedInside += 1;
        }
      }
      assert.equal(movedInside, 4 * 16, `${label}: every masked value moved`);
      assert.ok(result.start.pixels.some((value, i) => mask[i] === 1 && value !== images.pixels[i]), `${label}: random start inside the mask`);
      session.dispose();
    }
  });

  it('follows the update formula', async () => {
    const session = await createTrainingSession(synthetic());
    await session.step();
    const count = 3;
    const images = testImages(session, count);
    const mask = squareMask(count, SHAPE, 3, 1, 2);
    const options = { iterations: 2, stepSize: 0.4, snr: 0.2, smoothing: 0.3 };
    const result = await inpaintImages(session, images, mask, new RandomStream(4), options);

    // Replay the draws: B·D normals (start), B·D uniforms (dequantisation), then per iteration σ and ξ.
    const draws = new RandomStream(4);
    const size = count * 64;
    draws.normalArray(size);
    draws.uniformArray(size);
    const shape: [number, number, number, number] = [count, ...SHAPE];
    const maskTensor = tf.cast(tf.tensor4d(mask, shape, 'int32'), 'bool');
    let x = tf.tensor4d(result.initialModelSpace, shape);
    await session.withEvaluationWeights((model) => {
      for (let iteration = 0; iteration < 2; iteration++) {
        const sigma = drawBlurSigma(draws);
        const noise = tf.tensor4d(draws.normalArray(size), shape);
        const next = tf.tidy(() => {
          const drift = tf.sub(gaussianBlur(x, sigma), x);
          const gradient = tf.reshape(model.energyDerivatives?.(tf.reshape(x, [count, 64]))?.gradient as tf.Tensor, shape);
          const score = tf.neg(gradient);
          const norms = (t: tf.Tensor): number => tf.mean(tf.norm(tf.reshape(t, [count, 64]), 'euclidean', 1)).dataSync()[0];
          const r = (norms(noise) / norms(score)) ** 2;
          let update = tf.add(tf.add(x, tf.mul(score, 0.4 ** 2 / 2)), tf.mul(drift, 0.3));
          if (iteration === 0) update = tf.add(update, tf.mul(noise, 0.2 * r * 0.4));
          return tf.where(maskTensor, update, x) as tf.Tensor4D;
        });
        tf.dispose([x, noise]);
        x = next;
      }
    });
    const expected = x.dataSync();
    for (let i = 0; i < expected.length; i++) {
      assert.ok(Math.abs(result.finalModelSpace[i] - expected[i]) <= 1e-5 * (1 + Math.abs(expected[i])), `value ${i}: ${result.finalModelSpace[i]} vs ${expected[i]}`);
    }
    tf.dispose([x, maskTensor]);
    session.dispose();
  });

  it('repeats with the same seed', async () => {
    const session = await createTrainingSession(synthetic());
    const images = testImages(session, 2);
    const mask = squareMask(2, SHAPE, 2);
    const a = await inpaintImages(session, images, mask, new RandomStream(8), { iterations: 3 });
    const b = await inpaintImages(session, images, mask, new RandomStream(8), { iterations: 3 });
    const c = await inpaintImages(session, images, mask, new RandomStream(9), { iterations: 3 });
    assert.deepEqual(a.finalModelSpace, b.finalModelSpace);
    assert.notDeepEqual(a.finalModelSpace, c.finalModelSpace);
    await assert.rejects(inpaintImages(session, images, new Uint8Array(5), new RandomStream(1)), /the mask has 5 bytes; 2 images of \[8, 8, 1\] need 128/);
    await assert.rejects(inpaintImages(session, images, mask, new RandomStream(1), { iterations: 0 }), /iterations must be a positive integer, received 0/);
    session.dispose();
  });

  it('builds masks and the result grid', () => {
    const square = squareMask(1, SHAPE, 2);
    assert.deepEqual([...square].flatMap((v, i) => (v === 1 ? [i] : [])), [27, 28, 35, 36]);
    assert.throws(() => squareMask(1, SHAPE, 9), /a 9×9 square at \(-1, -1\) does not fit 8×8 images/);
    assert.deepEqual([...strokeMask(Uint8Array.from([0, 127, 128, 255]))], [0, 0, 1, 1]);

    const count = 12;
    const originals: ImageBatch = { pixels: new Uint8Array(count * 64).fill(200), count, imageShape: SHAPE };
    const completed: ImageBatch = { pixels: new Uint8Array(count * 64).fill(40), count, imageShape: SHAPE };
    const grid = inpaintingGrid(originals, completed, squareMask(count, SHAPE, 2));
    // Two groups of three rows, ten columns.
    assert.equal(grid.width, 10 * 10 + 2);
    assert.equal(grid.height, 6 * 10 + 2);
    const at = (row: number, column: number): number => grid.pixels[row * grid.width + column];
    assert.equal(at(2, 2), 199, 'masked input keeps unmasked pixels (200 shown as 199)');
    assert.equal(at(2 + 3, 2 + 3), 128, 'masked pixels are grey');
    assert.equal(at(12, 2), 40, 'second row: the result');
    assert.equal(at(22, 2), 199, 'third row: the original');
    assert.equal(at(32 + 3, 12 + 3), 128, 'the second group starts with image 10, masked');
    assert.equal(at(32, 22), 0, 'cells after the last image stay black');
  });
});
