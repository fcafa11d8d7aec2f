import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { dequantizedInverse, preprocess, toPixels } from '../../src/data/preprocess.js';
import { useBackend } from '../../src/backend/select.js';
import { RandomStream } from '../../src/random/stream.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';
import { derivative } from '../helpers/finite-difference.js';
import { referenceLogAbsDet } from '../reference/fc-reference.js';
import {
  referenceDequantizedInverse,
  referencePreprocessLogDet,
  referencePreprocessValue,
} from '../reference/losses-reference.js';

const LOGIT_SCALE = 0.5;
/** Two 2×2×2 images covering the extreme pixel values. */
const PIXELS = [0, 255, 17, 128, 254, 1, 0, 255, 200, 3, 99, 255, 0, 64, 250, 5];
const SHAPE = [2, 2, 2, 2];
const PER_SAMPLE = 8;

/** Returns the uniform draws that `preprocess` takes from a stream seeded with `seed`. */
function uniforms(seed: number): Float64Array {
  return Float64Array.from(new RandomStream(seed).uniformArray(PIXELS.length));
}

forEachBackend((backend) => {
  it('preprocess output matches the float64 chain', () => {
    const pixels = tf.tensor(PIXELS, SHAPE);
    const { x, logDet } = preprocess(pixels, new RandomStream(3), LOGIT_SCALE);
    const u = uniforms(3);
    const expected = PIXELS.map((pixel, i) => referencePreprocessValue(pixel, u[i], LOGIT_SCALE));
    assert.deepEqual(x.shape, SHAPE);
    assert.equal(firstMismatch(x.dataSync(), expected, { relative: 1e-4, absolute: 1e-4 }, 'x′'), null);
    assert.deepEqual(logDet.shape, [2]);
    tf.dispose([pixels, x, logDet]);
  });

  it('preprocess log-det equals log|det| of a numerical Jacobian', () => {
    const pixels = tf.tensor(PIXELS, SHAPE);
    const { x, logDet } = preprocess(pixels, new RandomStream(4), LOGIT_SCALE);
    const u = uniforms(4);
    for (let b = 0; b < 2; b++) {
      // The full D×D Jacobian of y₀ ↦ x′ by float64 central differences of the reference chain.
      const start = b * PER_SAMPLE;
      const dequantised = Array.from({ length: PER_SAMPLE }, (_, i) => PIXELS[start + i] + u[start + i]);
      const jacobian = new Float64Array(PER_SAMPLE * PER_SAMPLE);
      for (let i = 0; i < PER_SAMPLE; i++) {
        for (let j = 0; j < PER_SAMPLE; j++) {
          const output = (t: number): number => {
            const point = dequantised.slice();
            point[j] += t;
            return referencePreprocessValue(point[i], 0, LOGIT_SCALE);
          };
          // A small step keeps the stencil inside (0, 256) next to the pixel values 0 and 255.
          jacobian[i * PER_SAMPLE + j] = derivative(output, 0, 1, 1e-4);
        }
      }
      const numerical = referenceLogAbsDet(jacobian, PER_SAMPLE);
      const closedForm = referencePreprocessLogDet(PIXELS.slice(start, start + PER_SAMPLE), u.subarray(start, start + PER_SAMPLE), LOGIT_SCALE);
      assert.ok(Math.abs(numerical - closedForm) < 1e-6 * Math.abs(closedForm), `sample ${b}: ${numerical} vs ${closedForm}`);
      assert.equal(firstMismatch([logDet.dataSync()[b]], [numerical], backend.accumulated, `logDet[${b}]`), null);
    }
    tf.dispose([pixels, x, logDet]);
  });

  it('inverse chain recovers the dequantised values and the pixels', () => {
    const pixels = tf.tensor(PIXELS, SHAPE);
    const { x, logDet } = preprocess(pixels, new RandomStream(5), LOGIT_SCALE);
    const u = uniforms(5);
    const continuous = dequantizedInverse(x, LOGIT_SCALE);
    const expectedContinuous = PIXELS.map((pixel, i) => pixel + u[i]);
    assert.equal(firstMismatch(continuous.dataSync(), expectedContinuous, { relative: 0, absolute: 1e-3 }, 'y₀'), null);
    const referenceValues = Array.from(x.dataSync(), (value) => referenceDequantizedInverse(value, LOGIT_SCALE));
    assert.equal(firstMismatch(continuous.dataSync(), referenceValues, { relative: 1e-5, absolute: 1e-4 }, 'y₀'), null);

    const pixelTensor = toPixels(x, LOGIT_SCALE);
    const recovered = pixelTensor.dataSync();
    PIXELS.forEach((pixel, i) => {
      // A draw within float32 rounding of 0 or 1 may land on the neighbouring integer.
      if (u[i] > 1e-3 && u[i] < 1 - 1e-3) assert.equal(recovered[i], pixel, `pixel ${i} (u = ${u[i]})`);
    });
    tf.dispose([pixels, x, logDet, continuous, pixelTensor]);
  });

  it('toPixels clamps to 0…255 and returns integers', () => {
    const x = tf.tensor1d([-100, -30, 0, 0.01, 30, 100]);
    const pixels = toPixels(x, LOGIT_SCALE);
    assert.deepEqual(Array.from(pixels.dataSync()), [0, 0, 128, 128, 255, 255]);
    tf.dispose([x, pixels]);
  });

  it('preprocess rejects an invalid logit scale', () => {
    const pixels = tf.zeros([1, 4]);
    assert.throws(() => preprocess(pixels, new RandomStream(1), 0), /preprocess: logitScale \(α_l\) must be a finite positive number, received 0/);
    pixels.dispose();
  });
});

it('preprocess kernel on wasm matches the tensor ops', async () => {
  const random = new RandomStream(8);
  const pixels = Array.from(random.uniformArray(3 * 784), (value) => Math.floor(value * 256));
  const run = () => tf.tidy(() => {
    const { x, logDet } = preprocess(tf.tensor4d(pixels, [3, 28, 28, 1]), new RandomStream(9), 0.75);
    return { x: x.dataSync(), logDet: logDet.dataSync() };
  });
  await useBackend('cpu');
  const withTensorOps = run();
  await useBackend('wasm');
  const withKernel = run();
  assert.equal(firstMismatch(withKernel.x, Array.from(withTensorOps.x), { relative: 1e-6, absolute: 1e-6 }, 'x′'), null);
  assert.equal(firstMismatch(withKernel.logDet, Array.from(withTensorOps.logDet), { relative: 1e-6, absolute: 1e-3 }, 'logDet'), null);
});
