import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { Conv1x1Layer, householderQ } from '../../src/layers/conv1x1.js';
import { RandomStream } from '../../src/random/stream.js';
import { logAbsDetFloat64 } from '../../src/tensor/linalg.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';
import { registerLayerKit } from '../helpers/bijection-kit.js';

/**
 * Q factors from `numpy.linalg.qr` (numpy 2.4.6, LAPACK dgeqrf and dorgqr, the routines behind
 * `torch.qr` on the CPU), row-major.
 */
const LAPACK_CASES = [
  {
    a: [0.3, -1.2, 0.5, -0.7, 0.4, 2.0, 1.1, 0.9, -0.6],
    q: [
      -0.22423052782558073, -0.8225363917948882, 0.5226418989749173, 0.523204564926355, 0.3508466367132214, 0.7766360928692694,
      -0.8221786020271294, 0.4475941483979286, 0.351684268469103,
    ],
  },
  { a: [-2.0, 1.0, 0.5, 3.0], q: [-0.9701425001453321, 0.24253562503633297, 0.24253562503633297, 0.9701425001453319] },
];

function multiply(a: ArrayLike<number>, b: ArrayLike<number>, n: number, transposeA = false): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let k = 0; k < n; k++) sum += (transposeA ? a[k * n + i] : a[i * n + k]) * b[k * n + j];
      out[i * n + j] = sum;
    }
  }
  return out;
}

test('householderQ matches LAPACK signs', () => {
  for (const { a, q } of LAPACK_CASES) {
    const n = Math.sqrt(a.length);
    const actual = householderQ(Float64Array.from(a), n);
    actual.forEach((value, i) => assert.ok(Math.abs(value - q[i]) < 1e-12, `Q[${i}] = ${value}, LAPACK gives ${q[i]}`));
  }
});

test('householderQ gives an orthogonal Q with upper-triangular R', () => {
  const random = new RandomStream(4);
  for (const n of [1, 2, 5, 8]) {
    const a = Float64Array.from(random.normalArray(n * n));
    const q = householderQ(a, n);
    const gram = multiply(q, q, n, true);
    const r = multiply(q, a, n, true);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        assert.ok(Math.abs(gram[i * n + j] - (i === j ? 1 : 0)) < 1e-12, `QᵀQ[${i}, ${j}] = ${gram[i * n + j]} for n = ${n}`);
        if (i > j) assert.ok(Math.abs(r[i * n + j]) < 1e-12, `R[${i}, ${j}] = ${r[i * n + j]} below the diagonal for n = ${n}`);
      }
    }
  }
});

test('householderQ rejects a non-square input', () => {
  assert.throws(() => householderQ(new Float64Array(6), 2), /expected n×n = 2×2 values, received 6/);
});

forEachBackend((backend) => {
  registerLayerKit(
    { name: 'Conv1x1Layer 2×3×4', sampleShape: [2, 3, 4], create: (random) => new Conv1x1Layer({ inputShape: [2, 3, 4], random }) },
    backend,
  );
  registerLayerKit(
    { name: 'Conv1x1Layer 3×1×1', sampleShape: [3, 1, 1], create: (random) => new Conv1x1Layer({ inputShape: [3, 1, 1], random }) },
    backend,
  );

  test('conv1x1 starts orthogonal with log-det 0', () => {
    const layer = new Conv1x1Layer({ inputShape: [2, 2, 8], random: new RandomStream(2) });
    const w = layer.weight.dataSync();
    const gram = multiply(w, w, 8, true);
    const identity = Array.from({ length: 64 }, (_, i) => (i % 9 === 0 ? 1 : 0));
    assert.equal(firstMismatch(gram, identity, backend.accumulated, 'WᵀW'), null);
    const logDet = layer.constantLogDet();
    assert.ok(Math.abs(logDet.dataSync()[0]) < 1e-4, `log-det at initialisation is ${logDet.dataSync()[0]}, expected 0`);
    logDet.dispose();
    layer.dispose();
  });

  test('conv1x1 applies W to every pixel', () => {
    const layer = new Conv1x1Layer({ inputShape: [1, 2, 3], random: new RandomStream(3) });
    const weight = [1, 2, 0, -1, 0.5, 3, 0, 1, -2];
    tf.tidy(() => layer.weight.assign(tf.tensor2d(weight, [3, 3])));
    const pixels = [1, -1, 2, 0.5, 4, -3];
    const x = tf.tensor4d(pixels, [1, 1, 2, 3]);
    const { y } = layer.forward(x);
    const expected: number[] = [];
    for (let p = 0; p < 2; p++) {
      for (let o = 0; o < 3; o++) {
        let sum = 0;
        for (let c = 0; c < 3; c++) sum += weight[o * 3 + c] * pixels[p * 3 + c];
        expected.push(sum);
      }
    }
    assert.equal(firstMismatch(y.dataSync(), expected, backend.accumulated, 'W·x'), null);
    tf.dispose([x, y]);
    layer.dispose();
  });

  test('conv1x1 log-det and its gradient', () => {
    const [height, width, channels] = [3, 2, 4];
    const layer = new Conv1x1Layer({ inputShape: [height, width, channels], random: new RandomStream(5) });
    const random = new RandomStream(6);
    const weight = Float64Array.from(random.normalArray(channels * channels));
    tf.tidy(() => layer.weight.assign(tf.tensor2d(Float32Array.from(weight), [channels, channels])));
    const stored = Float64Array.from(layer.weight.dataSync());

    const { value, grads } = tf.variableGrads(() => layer.constantLogDet(), layer.variables);
    const expected = height * width * logAbsDetFloat64(stored, channels);
    assert.equal(firstMismatch(value.dataSync(), [expected], backend.accumulated, 'H·W·log|det W|'), null);

    // ∂/∂W (H·W·log|det W|) = H·W·W⁻ᵀ, checked through W·(gradient)ᵀ = H·W·I.
    const gradient = grads[layer.weight.name].dataSync();
    const product = new Float64Array(channels * channels);
    for (let i = 0; i < channels; i++) {
      for (let j = 0; j < channels; j++) {
        for (let k = 0; k < channels; k++) product[i * channels + j] += stored[i * channels + k] * gradient[j * channels + k];
      }
    }
    const scaledIdentity = Array.from({ length: channels * channels }, (_, i) => (i % (channels + 1) === 0 ? height * width : 0));
    assert.equal(firstMismatch(product, scaledIdentity, { relative: 1e-4, absolute: 1e-4 }, 'W·gradientᵀ'), null);
    tf.dispose([value, ...Object.values(grads)]);
    layer.dispose();
  });

  test('conv1x1 draws its initialisation from the stream', () => {
    const first = new Conv1x1Layer({ inputShape: [1, 1, 4], random: new RandomStream(9) });
    const same = new Conv1x1Layer({ inputShape: [1, 1, 4], random: new RandomStream(9) });
    const other = new Conv1x1Layer({ inputShape: [1, 1, 4], random: new RandomStream(10) });
    assert.deepEqual(Array.from(same.weight.dataSync()), Array.from(first.weight.dataSync()));
    assert.notDeepEqual(Array.from(other.weight.dataSync()), Array.from(first.weight.dataSync()));
    first.dispose();
    same.dispose();
    other.dispose();
  });

  test('conv1x1 rejects a wrong input shape', () => {
    const layer = new Conv1x1Layer({ inputShape: [2, 2, 4], random: new RandomStream(1) });
    const x = tf.zeros([1, 2, 2, 3]);
    assert.throws(() => layer.forward(x), /conv1x1: forward expects NHWC \[B, 2, 2, 4\], received shape \[1, 2, 2, 3\]/);
    x.dispose();
    layer.dispose();
  });
});
