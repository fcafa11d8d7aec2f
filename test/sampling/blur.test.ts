import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';

import { drawBlurSigma, gaussianBlur, gaussianKernel1d } from '../../src/sampling/blur.js';
import { RandomStream } from '../../src/random/stream.js';

/** Float64 blur of an NHWC batch by the definition: reflect-pad, then the 2-D kernel per channel. */
function blurByDefinition(values: Float32Array, shape: number[], sigma: number, size: number): Float64Array {
  const [batch, height, width, channels] = shape;
  const kernel = gaussianKernel1d(size, sigma);
  const half = (size - 1) / 2;
  const reflect = (index: number, length: number): number => {
    if (index < 0) return -index;
    if (index >= length) return 2 * (length - 1) - index;
    return index;
  };
  const out = new Float64Array(values.length);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < height; i++) {
      for (let j = 0; j < width; j++) {
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let u = 0; u < size; u++) {
            for (let v = 0; v < size; v++) {
              const row = reflect(i + u - half, height);
              const column = reflect(j + v - half, width);
              sum += kernel[u] * kernel[v] * values[((b * height + row) * width + column) * channels + c];
            }
          }
          out[((b * height + i) * width + j) * channels + c] = sum;
        }
      }
    }
  }
  return out;
}

describe('Gaussian blur', () => {
  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  it('builds a normalised symmetric kernel', () => {
    const kernel = gaussianKernel1d(5, 0.8);
    assert.ok(Math.abs(kernel.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    assert.equal(kernel[0], kernel[4]);
    assert.equal(kernel[1], kernel[3]);
    assert.ok(Math.abs(kernel[1] / kernel[2] - Math.exp(-0.5 / 0.64)) < 1e-12);
    assert.throws(() => gaussianKernel1d(4, 1), /size must be a positive odd integer, received 4/);
  });

  it('matches the definition with reflect padding', () => {
    const shape = [2, 6, 7, 3];
    const random = new RandomStream(1);
    const values = random.normalArray(shape.reduce((a, b) => a * b, 1));
    for (const sigma of [0.1, 0.7, 2.0]) {
      const input = tf.tensor4d(values, shape as [number, number, number, number]);
      const blurred = gaussianBlur(input, sigma);
      const actual = blurred.dataSync();
      const expected = blurByDefinition(values, shape, sigma, 5);
      for (let i = 0; i < actual.length; i++) {
        assert.ok(Math.abs(actual[i] - expected[i]) < 1e-5, `σ ${sigma}, element ${i}: ${actual[i]} vs ${expected[i]}`);
      }
      tf.dispose([input, blurred]);
    }
  });

  it('keeps constant images', () => {
    const input = tf.fill([1, 5, 5, 2], 3.5) as tf.Tensor4D;
    const blurred = gaussianBlur(input, 1.3);
    assert.ok(blurred.dataSync().every((v) => Math.abs(v - 3.5) < 1e-5));
    tf.dispose([input, blurred]);
  });

  it('draws σ from [0.1, 2]', () => {
    const random = new RandomStream(2);
    const draws = Array.from({ length: 2000 }, () => drawBlurSigma(random));
    assert.ok(draws.every((sigma) => sigma >= 0.1 && sigma < 2));
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    assert.ok(Math.abs(mean - 1.05) < 0.05, `mean σ ${mean}`);
  });
});
