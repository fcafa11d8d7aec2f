import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { useBackend } from '../../src/backend/select.js';
import { installSharedIdentityKernel, uninstallSharedIdentityKernel } from '../../src/tensor/wasm-identity.js';

describe('shared Identity kernel on wasm', () => {
  before(async () => {
    await useBackend('wasm');
    installSharedIdentityKernel();
  });

  after(() => {
    uninstallSharedIdentityKernel();
  });

  it('clone keeps its values after the original is disposed', () => {
    const original = tf.tensor1d([1, 2, 3]);
    const copy = tf.clone(original);
    original.dispose();
    assert.deepEqual(Array.from(copy.dataSync()), [1, 2, 3]);
    copy.dispose();
  });

  it('clone shares storage instead of allocating', () => {
    const original = tf.zeros([256, 256]);
    const buffersBefore = tf.backend().numDataIds();
    const copies = [tf.clone(original), tf.clone(original)];
    assert.equal(tf.backend().numDataIds() - buffersBefore, 0);
    tf.dispose([original, ...copies]);
  });

  it('cast to the same dtype shares storage', () => {
    const original = tf.tensor2d([[1.5, -2], [3, 4]]);
    const buffersBefore = tf.backend().numDataIds();
    const cast = tf.cast(original, 'float32');
    assert.equal(tf.backend().numDataIds() - buffersBefore, 0);
    original.dispose();
    assert.deepEqual(Array.from(cast.dataSync()), [1.5, -2, 3, 4]);
    cast.dispose();
  });

  it('cast to another dtype still converts', () => {
    const original = tf.tensor1d([1.7, -2.2, 0]);
    const integers = tf.cast(original, 'int32');
    assert.equal(integers.dtype, 'int32');
    assert.deepEqual(Array.from(integers.dataSync()), [1, -2, 0]);
    tf.dispose([original, integers]);
  });

  it('a clone of a variable keeps the old value after assign', () => {
    const variable = tf.variable(tf.tensor1d([4, 5]));
    const copy = tf.clone(variable);
    const next = tf.tensor1d([6, 7]);
    variable.assign(next);
    assert.deepEqual(Array.from(copy.dataSync()), [4, 5]);
    assert.deepEqual(Array.from(variable.dataSync()), [6, 7]);
    tf.dispose([variable, copy, next]);
  });

  it('gradients through clones are unchanged', () => {
    const x = tf.tensor1d([0.5, -1, 2]);
    const gradient = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.clone(input), tf.clone(input))))(x);
    assert.deepEqual(Array.from(gradient.dataSync()), [1, -2, 4]);
    tf.dispose([x, gradient]);
  });
});
