import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { useBackend } from '../../src/backend/select.js';
import { installInPlaceSliceKernels, uninstallInPlaceSliceKernels } from '../../src/tensor/wasm-slice.js';

/** Runs `compute` with the original copying kernels and then with the in-place ones. */
function bothKernels<T>(compute: () => T): { original: T; inPlace: T } {
  uninstallInPlaceSliceKernels();
  const original = compute();
  installInPlaceSliceKernels();
  const inPlace = compute();
  return { original, inPlace };
}

/** Returns a tensor of `shape` whose values are all distinct, so a misplaced element shows. */
function numbered(shape: number[], dtype: 'float32' | 'int32' = 'float32'): tf.Tensor {
  const size = shape.reduce((p, d) => p * d, 1);
  if (dtype === 'int32') return tf.tensor(Array.from({ length: size }, (_, i) => i - 3), shape, 'int32');
  return tf.tensor(Array.from({ length: size }, (_, i) => i * 0.5 - 3), shape, 'float32');
}

describe('in-place Slice and SplitV kernels on wasm', () => {
  before(async () => {
    await useBackend('wasm');
    installInPlaceSliceKernels();
  });

  after(() => {
    // The backend selection installs these kernels, so other tests keep them.
    installInPlaceSliceKernels();
  });

  const slices: Array<{ shape: number[]; begin: number[]; size: number[] }> = [
    { shape: [7], begin: [2], size: [4] },
    { shape: [5, 6], begin: [1, 0], size: [3, 6] },
    { shape: [5, 6], begin: [1, 2], size: [3, 3] },
    { shape: [5, 6], begin: [0, 5], size: [5, 1] },
    { shape: [4, 3, 5], begin: [1, 1, 0], size: [2, 2, 5] },
    { shape: [4, 3, 5], begin: [0, 0, 1], size: [4, 3, 3] },
    { shape: [3, 4, 2, 5], begin: [1, 1, 0, 2], size: [2, 3, 2, 2] },
    { shape: [2, 3, 2, 2, 3], begin: [1, 0, 1, 0, 1], size: [1, 3, 1, 2, 2] },
    { shape: [1, 4, 1], begin: [0, 1, 0], size: [1, 2, 1] },
    { shape: [5, 6], begin: [2, 3], size: [0, 2] },
  ];

  for (const { shape, begin, size } of slices) {
    it(`slice of [${shape}] at [${begin}] size [${size}] equals the copying kernel`, () => {
      const x = numbered(shape);
      const { original, inPlace } = bothKernels(() => tf.tidy(() => tf.slice(x, begin, size).arraySync()));
      assert.deepEqual(inPlace, original);
      x.dispose();
    });
  }

  it('slices int32 tensors and accepts -1 sizes', () => {
    const x = numbered([4, 5], 'int32');
    const { original, inPlace } = bothKernels(() => tf.tidy(() => {
      const part = tf.slice(x, [1, 2], [-1, 2]);
      return { dtype: part.dtype, values: part.arraySync() };
    }));
    assert.equal(inPlace.dtype, 'int32');
    assert.deepEqual(inPlace, original);
    x.dispose();
  });

  for (const { shape, sizes, axis } of [
    { shape: [6, 4], sizes: [2, 4], axis: 0 },
    { shape: [6, 4], sizes: [1, 3], axis: 1 },
    { shape: [3, 4, 5], sizes: [2, 1, 2], axis: 2 },
    { shape: [3, 4, 5], sizes: [1, 3], axis: -2 },
    { shape: [2, 3, 4, 6], sizes: [3, 3], axis: 3 },
  ]) {
    it(`split of [${shape}] into [${sizes}] on axis ${axis} equals the copying kernel`, () => {
      const x = numbered(shape);
      const { original, inPlace } = bothKernels(() => tf.tidy(() => tf.split(x, sizes, axis).map((part) => part.arraySync())));
      assert.deepEqual(inPlace, original);
      x.dispose();
    });
  }

  it('splits into equal parts given their count', () => {
    const x = numbered([4, 6]);
    const { original, inPlace } = bothKernels(() => tf.tidy(() => tf.split(x, 3, 1).map((part) => part.arraySync())));
    assert.deepEqual(inPlace, original);
    x.dispose();
  });

  it('gradients through split and slice are unchanged', () => {
    const x = numbered([4, 6]);
    const loss = (input: tf.Tensor) => {
      const [left, right] = tf.split(input, [2, 4], 1);
      return tf.sum(tf.mul(tf.square(left!), tf.sum(tf.slice(right!, [1, 1], [2, 2]))));
    };
    const { original, inPlace } = bothKernels(() => tf.tidy(() => tf.grad(loss)(x).arraySync()));
    assert.deepEqual(inPlace, original);
    x.dispose();
  });

  it('leaves no tensors behind and keeps the input intact', () => {
    const x = numbered([5, 8]);
    const before = Array.from(x.dataSync());
    const count = tf.memory().numTensors;
    const parts = tf.split(x, 2, 1);
    tf.dispose(parts);
    assert.equal(tf.memory().numTensors, count);
    assert.deepEqual(Array.from(x.dataSync()), before);
    x.dispose();
  });

  it('slices a large tensor moved from another backend', async () => {
    // 80 MB arriving from the cpu backend makes the wasm heap grow while the kernel runs.
    await useBackend('cpu');
    const x = tf.tidy(() => tf.add(tf.zeros([5000, 4000]), tf.reshape(tf.range(0, 4000), [1, 4000])));
    await useBackend('wasm');
    const part = tf.slice(x, [7, 3996], [2, 4]);
    assert.deepEqual(part.arraySync(), [[3996, 3997, 3998, 3999], [3996, 3997, 3998, 3999]]);
    tf.dispose([x, part]);
  });

  it('slices a tensor from another backend', async () => {
    await useBackend('cpu');
    const x = numbered([3, 4]);
    await useBackend('wasm');
    const part = tf.slice(x, [1, 1], [2, 2]);
    assert.deepEqual(part.arraySync(), [[-0.5, 0], [1.5, 2]]);
    tf.dispose([x, part]);
  });
});
