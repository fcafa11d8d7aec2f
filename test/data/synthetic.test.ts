import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { createSyntheticDataset } from '../../src/data/synthetic.js';
import { RandomStream } from '../../src/random/stream.js';

describe('synthetic data set', () => {
  it('has the requested shape and sizes', () => {
    const data = createSyntheticDataset({ imageShape: [5, 3, 2], random: new RandomStream(1), sizes: { train: 7 } });
    assert.deepEqual(data.imageShape, [5, 3, 2]);
    assert.equal(data.dimension, 30);
    assert.deepEqual(data.sizes, { train: 7, validation: 200, test: 200 });
    assert.equal(data.batch('train', [0, 6, 3]).length, 90);
  });

  it('repeats with the seed', () => {
    const first = createSyntheticDataset({ imageShape: [4, 4, 3], random: new RandomStream(9) });
    const second = createSyntheticDataset({ imageShape: [4, 4, 3], random: new RandomStream(9) });
    const other = createSyntheticDataset({ imageShape: [4, 4, 3], random: new RandomStream(10) });
    const indices = [0, 1, 999];
    assert.deepEqual(first.batch('train', indices), second.batch('train', indices));
    assert.deepEqual(first.batch('test', [199]), second.batch('test', [199]));
    assert.notDeepEqual(first.batch('train', indices), other.batch('train', indices));
  });

  it('spreads pixels over 0–255', () => {
    const data = createSyntheticDataset({ imageShape: [8, 8, 1], random: new RandomStream(2) });
    const pixels = data.batch('train', Array.from({ length: 1000 }, (_, i) => i));
    const mean = pixels.reduce((sum, p) => sum + p, 0) / pixels.length;
    // Uniform bytes: mean 127.5, standard error 73.9/√64000 ≈ 0.29.
    assert.ok(Math.abs(mean - 127.5) < 1.5, `mean ${mean}`);
    assert.equal(Math.min(...pixels), 0);
    assert.equal(Math.max(...pixels), 255);
  });

  it('keeps splits distinct', () => {
    const data = createSyntheticDataset({ imageShape: [4, 4, 1], random: new RandomStream(3) });
    assert.notDeepEqual(data.batch('train', [0]), data.batch('validation', [0]));
  });

  it('rejects invalid shapes and sizes', () => {
    assert.throws(
      () => createSyntheticDataset({ imageShape: [4, 0, 1], random: new RandomStream(1) }),
      /imageShape \[4,0,1\] has W = 0/,
    );
    assert.throws(
      () => createSyntheticDataset({ imageShape: [4, 4, 1], random: new RandomStream(1), sizes: { test: 0 } }),
      /sizes\.test must be a positive integer, received 0/,
    );
  });
});
