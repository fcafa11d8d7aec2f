import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { useBackend } from '../../src/backend/select.js';
import { RandomStream } from '../../src/random/stream.js';
import { emaUpdate, fusedUpdateAvailable, rmsPropUpdate, sumOfSquares } from '../../src/tensor/fused-update.js';
import { clipByGlobalNorm, clipScale, globalNorm } from '../../src/train/clip.js';
import { ExponentialMovingAverage } from '../../src/train/ema.js';
import { RmsProp } from '../../src/train/rmsprop.js';
import { forEachBackend, normRelativeError } from '../helpers/backends.js';

const f = Math.fround;

function gaussian(random: RandomStream, count: number, scale = 1): Float32Array {
  return Float32Array.from({ length: count }, () => scale * random.normal());
}

// Sizes with and without a tail of n mod 4 values, and the empty tensor.
const SIZES = [0, 1, 3, 4, 7, 1003];

describe('fused update kernels on wasm', () => {
  before(async () => {
    await useBackend('wasm');
  });

  it('are available on wasm', () => {
    assert.equal(fusedUpdateAvailable(), true);
  });

  for (const n of SIZES) {
    it(`sumOfSquares of ${n} values matches float64`, () => {
      const values = gaussian(new RandomStream(n + 1), n);
      const expected = values.reduce((sum, v) => sum + f(v * v), 0);
      const total = tf.tidy(() => sumOfSquares([tf.tensor1d(values), tf.tensor1d(values.slice(0, Math.floor(n / 2)))]));
      const half = values.slice(0, Math.floor(n / 2)).reduce((sum, v) => sum + f(v * v), 0);
      assert.ok(Math.abs(total - (expected + half)) <= 1e-12 * Math.max(1, expected), `${total} vs ${expected + half}`);
    });

    it(`rmsPropUpdate of ${n} values equals the float32 update bit for bit`, () => {
      const random = new RandomStream(100 + n);
      const theta = gaussian(random, n);
      const gradient = gaussian(random, n, 0.3);
      const average = gaussian(random, n, 0.01).map(Math.abs);
      const step = { gradientScale: 0.7, weightDecay: 0.01, rho: 0.99, learningRate: 1e-3, epsilon: 1e-8 };
      const [nextTheta, nextAverage] = tf.tidy(() => {
        const next = rmsPropUpdate(tf.tensor1d(theta), tf.tensor1d(gradient), tf.tensor1d(average), step);
        return [next.parameter.dataSync(), next.average.dataSync()];
      });
      for (let i = 0; i < n; i++) {
        const g = f(f(gradient[i] * f(step.gradientScale)) + f(f(step.weightDecay) * theta[i]));
        const v = f(f(f(step.rho) * average[i]) + f(f(1 - step.rho) * f(g * g)));
        const t = f(theta[i] - f(f(f(step.learningRate) * g) / f(f(Math.sqrt(v)) + f(step.epsilon))));
        assert.equal(nextAverage[i], v, `v[${i}]`);
        assert.equal(nextTheta[i], t, `θ[${i}]`);
      }
    });

    it(`emaUpdate of ${n} values equals the float32 update bit for bit`, () => {
      const random = new RandomStream(200 + n);
      const shadow = gaussian(random, n);
      const theta = gaussian(random, n);
      const moved = tf.tidy(() => emaUpdate(tf.tensor1d(shadow), tf.tensor1d(theta), 1 - 0.999).dataSync());
      for (let i = 0; i < n; i++) assert.equal(moved[i], f(shadow[i] - f(f(1 - 0.999) * f(shadow[i] - theta[i]))), `s[${i}]`);
    });
  }

  it('leave their inputs unchanged', () => {
    tf.tidy(() => {
      const theta = tf.tensor1d([1, 2, 3, 4, 5]);
      const gradient = tf.tensor1d([0.5, -0.5, 0.25, 1, -2]);
      const average = tf.zeros([5]);
      rmsPropUpdate(theta, gradient, average, { gradientScale: 1, weightDecay: 0, rho: 0.9, learningRate: 0.1, epsilon: 1e-8 });
      emaUpdate(theta, gradient, 0.5);
      assert.deepEqual(Array.from(theta.dataSync()), [1, 2, 3, 4, 5]);
      assert.deepEqual(Array.from(average.dataSync()), [0, 0, 0, 0, 0]);
    });
  });

  it('reject a disposed tensor', () => {
    const disposed = tf.ones([8]);
    disposed.dispose();
    assert.throws(() => sumOfSquares([disposed]), /has no storage on the wasm backend; was it disposed\?/);
  });

  it('reject tensors of different sizes', () => {
    tf.tidy(() => {
      assert.throws(() => emaUpdate(tf.zeros([4]), tf.zeros([5]), 0.1), /tensors of 4 and 5 values/);
    });
  });
});

describe('fused update kernels with a cpu tensor', () => {
  it('move the tensor to wasm and read it', async () => {
    await useBackend('cpu');
    const values = tf.tensor1d([1, 2, 3]);
    await useBackend('wasm');
    assert.equal(sumOfSquares([values]), 14);
    values.dispose();
  });
});

describe('fused update kernels off wasm', () => {
  it('say which backend they need', async () => {
    await useBackend('cpu');
    assert.equal(fusedUpdateAvailable(), false);
    tf.tidy(() => {
      assert.throws(() => sumOfSquares([tf.ones([3])]), /need the wasm backend, but cpu is active/);
    });
  });
});

forEachBackend((backend) => {
  describe('optimiser update with a clipping scale', () => {
    it('RMSprop and EMA agree with the tensor-op path', () => {
      const random = new RandomStream(7);
      const shapes = [[31, 17], [9]];
      const initial = shapes.map((shape) => gaussian(random, shape[0] * (shape[1] ?? 1)));
      const gradientValues = [0, 1, 2].map(() => shapes.map((shape) => gaussian(random, shape[0] * (shape[1] ?? 1), 3)));
      const run = (implementation: 'auto' | 'tensor-ops'): Float32Array[] => {
        const variables = tf.tidy(() => shapes.map((shape, i) => tf.variable(tf.tensor(initial[i], shape))));
        const optimizer = new RmsProp(variables, { learningRate: 0.01, weightDecay: 0.05, implementation });
        const ema = new ExponentialMovingAverage(variables, 0.999, implementation);
        for (const step of gradientValues) {
          const gradients = step.map((values, i) => tf.tensor(values, shapes[i]));
          const norm = globalNorm(gradients);
          const scale = clipScale(norm.dataSync()[0], 1);
          optimizer.apply(gradients, scale);
          ema.update();
          tf.dispose([...gradients, norm]);
        }
        const result = [...variables.map((v) => v.dataSync() as Float32Array), ...ema.getState().shadows];
        optimizer.dispose();
        ema.dispose();
        variables.forEach((v) => v.dispose());
        return result;
      };
      const fused = run('auto');
      const reference = run('tensor-ops');
      fused.forEach((values, i) => assert.ok(normRelativeError(values, reference[i]) < backend.elementwise.relative, `array ${i}`));
    });

    it('a scale s applies the same update as gradients multiplied by s', () => {
      const values = [0.5, -1.5, 2, 0.25, -0.75];
      const scaled = (useScale: boolean): number[] =>
        tf.tidy(() => {
          const variable = tf.variable(tf.tensor1d([1, 2, 3, 4, 5]));
          const optimizer = new RmsProp([variable], { learningRate: 0.1 });
          const gradient = tf.tensor1d(values);
          if (useScale) optimizer.apply([gradient], 0.4);
          else optimizer.apply([tf.mul(gradient, 0.4)]);
          const result = Array.from(variable.dataSync());
          optimizer.dispose();
          variable.dispose();
          return result;
        });
      const withScale = scaled(true);
      const withProduct = scaled(false);
      withScale.forEach((v, i) => assert.ok(Math.abs(v - withProduct[i]) <= 1e-6, `θ[${i}] ${v} vs ${withProduct[i]}`));
    });

    it('RMSprop applyWithNorm matches globalNorm and apply', () => {
      const random = new RandomStream(8);
      const shapes = [[13, 7], [5]];
      const initial = shapes.map((shape) => gaussian(random, shape[0] * (shape[1] ?? 1)));
      const gradientValues = shapes.map((shape) => gaussian(random, shape[0] * (shape[1] ?? 1), 2));
      const run = (withNorm: boolean, accept: boolean): { values: Float32Array[]; norm: number | null; updates: number } => {
        const variables = tf.tidy(() => shapes.map((shape, i) => tf.variable(tf.tensor(initial[i], shape))));
        const optimizer = new RmsProp(variables, { learningRate: 0.01, weightDecay: 0.05 });
        const gradients = gradientValues.map((values, i) => tf.tensor(values, shapes[i]));
        let norm: number | null;
        if (withNorm) {
          norm = optimizer.applyWithNorm(gradients, () => accept)?.norm ?? null;
        } else {
          const tensor = globalNorm(gradients);
          norm = tensor.dataSync()[0];
          tensor.dispose();
          optimizer.apply(gradients);
        }
        const values = variables.map((v) => v.dataSync() as Float32Array);
        const updates = optimizer.updateCount;
        tf.dispose(gradients);
        optimizer.dispose();
        variables.forEach((v) => v.dispose());
        return { values, norm, updates };
      };
      const reference = run(false, true);
      const accepted = run(true, true);
      if (!backend.name.startsWith('wasm')) {
        // Off wasm the caller computes the norm itself.
        assert.equal(accepted.norm, null);
        return;
      }
      assert.equal(accepted.norm, reference.norm);
      assert.equal(accepted.updates, 1);
      accepted.values.forEach((values, i) => assert.deepEqual(Array.from(values), Array.from(reference.values[i])));
      const rejected = run(true, false);
      assert.equal(rejected.updates, 0);
      rejected.values.forEach((values, i) => assert.deepEqual(Array.from(values), Array.from(initial[i])));
    });

    it('clipScale matches clipByGlobalNorm', () => {
      tf.tidy(() => {
        const gradients = [tf.tensor1d([3, 4]), tf.tensor1d([12])];
        const norm = globalNorm(gradients);
        assert.ok(Math.abs(norm.dataSync()[0] - 13) < 1e-6);
        const clipped = clipByGlobalNorm(gradients, 6.5, norm);
        const scale = clipScale(13, 6.5);
        assert.ok(Math.abs(clipped[0].dataSync()[0] - 3 * scale) < 1e-6);
        assert.equal(clipScale(1, 6.5), 1);
        assert.throws(() => clipScale(1, 0), /maxNorm must be a finite number > 0, received 0/);
      });
    });
  });
});
