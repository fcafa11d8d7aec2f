import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { Conv2dLayer } from '../../src/layers/conv2d.js';
import { RandomStream } from '../../src/random/stream.js';
import { logAbsDetFloat64 } from '../../src/tensor/linalg.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';
import { registerLayerKit } from '../helpers/bijection-kit.js';
import { gradient } from '../helpers/finite-difference.js';

/**
 * Builds the Toeplitz matrix of EBFlow's reference PyTorch implementation in its own conventions: PyTorch weight layout W[o, c, i, j] and
 * channel-major flattening, flat index of (c, h, w) = c·H·W + h·W + w. For every output position
 * (o, r, q), tap (i, j) and input channel c whose input pixel (r + i − p, q + j − p) lies inside
 * the image, T[o·H·W + r·W + q, c·H·W + (r + i − p)·W + (q + j − p)] = W[o, c, i, j].
 */
function referenceToeplitz(torchWeight: ArrayLike<number>, height: number, width: number, channels: number, kernel: number): Float64Array {
  const dimension = channels * height * width;
  const pad = (kernel - 1) / 2;
  const matrix = new Float64Array(dimension * dimension);
  for (let o = 0; o < channels; o++) {
    for (let r = 0; r < height; r++) {
      for (let q = 0; q < width; q++) {
        const row = o * height * width + r * width + q;
        for (let c = 0; c < channels; c++) {
          for (let i = 0; i < kernel; i++) {
            for (let j = 0; j < kernel; j++) {
              const inputRow = r + i - pad;
              const inputColumn = q + j - pad;
              if (inputRow < 0 || inputRow >= height || inputColumn < 0 || inputColumn >= width) continue;
              const column = c * height * width + inputRow * width + inputColumn;
              matrix[row * dimension + column] = torchWeight[((o * channels + c) * kernel + i) * kernel + j];
            }
          }
        }
      }
    }
  }
  return matrix;
}

/** Converts a tfjs filter [K, K, Cin, Cout] to PyTorch's layout [Cout, Cin, K, K]. */
function toTorchLayout(filter: ArrayLike<number>, channels: number, kernel: number): Float64Array {
  const torch = new Float64Array(filter.length);
  for (let i = 0; i < kernel; i++) {
    for (let j = 0; j < kernel; j++) {
      for (let c = 0; c < channels; c++) {
        for (let o = 0; o < channels; o++) {
          torch[((o * channels + c) * kernel + i) * kernel + j] = filter[((i * kernel + j) * channels + c) * channels + o];
        }
      }
    }
  }
  return torch;
}

/** Creates a layer whose weight is −Dirac plus 0.1·N(0, 1), so its Toeplitz matrix is generic. */
function perturbedLayer(inputShape: [number, number, number], kernel: number, seed: number, spectralNorm = false): Conv2dLayer {
  const random = new RandomStream(seed);
  const layer = new Conv2dLayer({ inputShape, kernel, random, spectralNorm, name: 'conv-under-test' });
  const noise = random.normalArray(layer.weight.size);
  tf.tidy(() => layer.weight.assign(tf.add(layer.weight, tf.mul(tf.tensor4d(noise, layer.weight.shape), 0.1))));
  return layer;
}

forEachBackend((backend) => {
  registerLayerKit(
    { name: 'Conv2dLayer 4×4×2, K=3', sampleShape: [4, 4, 2], create: (random) => new Conv2dLayer({ inputShape: [4, 4, 2], kernel: 3, random }) },
    backend,
  );
  registerLayerKit(
    {
      name: 'Conv2dLayer 3×3×1, kernel larger than image',
      sampleShape: [3, 3, 1],
      create: (random) => new Conv2dLayer({ inputShape: [3, 3, 1], kernel: 7, random }),
    },
    backend,
  );
  registerLayerKit(
    {
      name: 'Conv2dLayer 2×2×4 with spectral norm',
      sampleShape: [2, 2, 4],
      create: (random) => {
        // In training mode every forward moves u and v, so the map is fixed only in evaluation
        // mode. Power iterations first bring σ̂ = uᵀ·W_mat·v close to the top singular value.
        const layer = new Conv2dLayer({ inputShape: [2, 2, 4], kernel: 3, random, spectralNorm: true });
        for (let step = 0; step < 10; step++) layer.powerIteration();
        layer.training = false;
        return layer;
      },
    },
    backend,
  );

  for (const [inputShape, kernel] of [
    [[4, 3, 2], 3],
    [[3, 3, 1], 5],
    [[2, 2, 4], 3],
  ] as Array<[[number, number, number], number]>) {
    const [height, width, channels] = inputShape;
    const label = `${height}×${width}×${channels}, K=${kernel}`;

    test(`Toeplitz log-det matches a float64 dense build, ${label}`, () => {
      const layer = perturbedLayer(inputShape, kernel, 11);
      const torchWeight = toTorchLayout(layer.weight.dataSync(), channels, kernel);
      const dimension = height * width * channels;
      const expected = logAbsDetFloat64(referenceToeplitz(torchWeight, height, width, channels, kernel), dimension);
      const logDet = layer.constantLogDet();
      assert.equal(firstMismatch(logDet.dataSync(), [expected], backend.accumulated, 'log|det T|'), null);
      logDet.dispose();
      layer.dispose();
    });

    test(`Toeplitz matrix is the reference's up to the NHWC order, ${label}`, () => {
      const layer = perturbedLayer(inputShape, kernel, 12);
      const torchWeight = toTorchLayout(layer.weight.dataSync(), channels, kernel);
      const reference = referenceToeplitz(torchWeight, height, width, channels, kernel);
      const toeplitz = layer.toeplitz();
      const actual = toeplitz.dataSync();
      toeplitz.dispose();
      layer.dispose();
      // NHWC flat index (h·W + w)·C + c corresponds to channel-major index c·H·W + h·W + w.
      const dimension = height * width * channels;
      const channelMajor = (index: number): number => {
        const c = index % channels;
        const pixel = (index - c) / channels;
        return c * height * width + pixel;
      };
      const permuted = new Float64Array(dimension * dimension);
      for (let row = 0; row < dimension; row++) {
        for (let column = 0; column < dimension; column++) {
          permuted[row * dimension + column] = reference[channelMajor(row) * dimension + channelMajor(column)];
        }
      }
      assert.equal(firstMismatch(actual, permuted, backend.elementwise, 'T'), null);
    });

    test(`Toeplitz log-det gradient matches finite differences, ${label}`, () => {
      const layer = perturbedLayer(inputShape, kernel, 13);
      const dimension = height * width * channels;
      const referenceLogDet = (filter: Float64Array): number =>
        logAbsDetFloat64(referenceToeplitz(toTorchLayout(filter, channels, kernel), height, width, channels, kernel), dimension);
      const expected = gradient(referenceLogDet, Float64Array.from(layer.weight.dataSync()));
      const { value, grads } = tf.variableGrads(() => layer.constantLogDet(), [layer.weight]);
      const actual = grads[layer.weight.name].dataSync();
      tf.dispose([value, ...Object.values(grads)]);
      layer.dispose();
      assert.equal(firstMismatch(actual, expected, backend.accumulated, '∂ log|det T|/∂W'), null);
    });
  }

  test('initialisation is −Dirac with a small bias', () => {
    const channels = 3;
    const kernel = 7;
    const layer = new Conv2dLayer({ inputShape: [5, 5, channels], kernel, random: new RandomStream(5) });
    const weight = layer.weight.dataSync();
    const centre = (kernel - 1) / 2;
    for (let i = 0; i < kernel; i++) {
      for (let j = 0; j < kernel; j++) {
        for (let c = 0; c < channels; c++) {
          for (let o = 0; o < channels; o++) {
            const expected = i === centre && j === centre && c === o ? -1 : 0;
            assert.equal(weight[((i * kernel + j) * channels + c) * channels + o], expected, `W[${i}, ${j}, ${c}, ${o}]`);
          }
        }
      }
    }
    // s ≈ 0.01/(K·√C) = 8.2e-4 for K = 7, C = 3; six standard deviations bound every draw here.
    const scale = 0.01 / (kernel * Math.sqrt(channels));
    const bias = Array.from(layer.bias.dataSync());
    assert.ok(bias.every((b) => Math.abs(b) < 6 * scale), `bias ${bias} should be of order ${scale}`);
    assert.ok(bias.some((b) => b !== 0), 'the bias is drawn, not zero');

    // At initialisation the layer maps x to −x + b.
    const x = tf.randomNormal([2, 5, 5, channels], 0, 1, 'float32', 3);
    const { y } = layer.forward(x);
    const expected = tf.tidy(() => tf.add(tf.neg(x), layer.bias).dataSync());
    assert.equal(firstMismatch(y.dataSync(), expected, backend.accumulated, 'y at initialisation'), null);
    tf.dispose([x, y]);
    layer.dispose();
  });

  test('equal seeds give equal biases', () => {
    const first = new Conv2dLayer({ inputShape: [4, 4, 2], kernel: 3, random: new RandomStream(21) });
    const second = new Conv2dLayer({ inputShape: [4, 4, 2], kernel: 3, random: new RandomStream(21) });
    assert.deepEqual(Array.from(first.bias.dataSync()), Array.from(second.bias.dataSync()));
    first.dispose();
    second.dispose();
  });

  test('spectral norm divides by σ̂ and iterates only in training', () => {
    const channels = 2;
    const kernel = 3;
    const layer = perturbedLayer([3, 3, channels], kernel, 17, true);
    const state = layer.spectralState;
    assert.ok(state !== null);
    const x = tf.randomNormal([1, 3, 3, channels], 0, 1, 'float32', 4);

    // Many training forwards converge u, v to the top singular pair of W_mat = W as [C_out, C_in·K²].
    for (let step = 0; step < 60; step++) tf.dispose(layer.forward(x).y);
    const torchWeight = toTorchLayout(layer.weight.dataSync(), channels, kernel);
    const columns = channels * kernel * kernel;
    // σ_max² is the largest eigenvalue of the 2×2 matrix W_mat·W_matᵀ.
    const gram = [0, 0, 0, 0];
    for (let a = 0; a < channels; a++) {
      for (let b = 0; b < channels; b++) {
        for (let k = 0; k < columns; k++) gram[a * 2 + b] += torchWeight[a * columns + k] * torchWeight[b * columns + k];
      }
    }
    const trace = gram[0] + gram[3];
    const determinant = gram[0] * gram[3] - gram[1] * gram[2];
    const sigmaMax = Math.sqrt(trace / 2 + Math.sqrt((trace * trace) / 4 - determinant));

    const used = layer.effectiveWeight();
    const ratios = Array.from(layer.weight.dataSync(), (w, k) => w / used.dataSync()[k]);
    used.dispose();
    assert.ok(ratios.every((r) => Math.abs(r - sigmaMax) < 1e-4 * sigmaMax), `W/W_used should be σ_max = ${sigmaMax}, received ${ratios[0]}`);

    // Evaluation mode keeps u and v.
    const u = Array.from(state.u.dataSync());
    const v = Array.from(state.v.dataSync());
    tf.tidy(() => layer.weight.assign(tf.mul(layer.weight, 1.5)));
    layer.training = false;
    tf.dispose(layer.forward(x).y);
    assert.deepEqual(Array.from(state.u.dataSync()), u);
    assert.deepEqual(Array.from(state.v.dataSync()), v);
    layer.training = true;
    tf.dispose(layer.forward(x).y);
    assert.notDeepEqual(Array.from(state.v.dataSync()), v);
    x.dispose();
    layer.dispose();
  });

  test('spectral-norm vectors stay out of the trainable variables', () => {
    const layer = new Conv2dLayer({ inputShape: [2, 2, 1], kernel: 3, random: new RandomStream(2), spectralNorm: true });
    assert.deepEqual(layer.variables, [layer.weight, layer.bias]);
    assert.ok(layer.spectralState !== null);
    assert.equal(layer.spectralState.u.trainable, false);
    assert.deepEqual(layer.spectralState.v.shape, [9]);
    assert.deepEqual(layer.buffers, [layer.spectralState.u, layer.spectralState.v]);
    layer.dispose();
  });

  test('Conv2dLayer rejects bad options and inputs', () => {
    const random = new RandomStream(1);
    assert.throws(() => new Conv2dLayer({ inputShape: [4, 4, 1], kernel: 4, random }), /kernel must be a positive odd integer.*received 4/);
    assert.throws(() => new Conv2dLayer({ inputShape: [4, 4] as unknown as [number, number, number], random }), /inputShape must be \[H, W, C\]/);
    const layer = new Conv2dLayer({ inputShape: [4, 4, 1], kernel: 3, random });
    const wrong = tf.zeros([2, 4, 4, 2]);
    assert.throws(() => layer.forward(wrong), /expects NHWC \[B, 4, 4, 1\], received shape \[2,4,4,2\]/);
    wrong.dispose();
    layer.dispose();
  });
});
