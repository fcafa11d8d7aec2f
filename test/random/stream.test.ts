import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RandomStream } from '../../src/random/stream.js';

/** Largest |a − b| / max(1, |b|) over two arrays. */
function worstError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
  return worst;
}

describe('RandomStream bulk draws', () => {
  for (const count of [0, 5, 64, 1001]) {
    it(`uniformArray(${count}) equals uniform() rounded to float32`, () => {
      const bulk = new RandomStream(3);
      const single = new RandomStream(3);
      const values = bulk.uniformArray(count);
      const expected = Float32Array.from({ length: count }, () => single.uniform());
      assert.deepEqual(values, expected);
      assert.deepEqual(bulk.getState(), single.getState());
    });
  }

  for (const count of [1, 2, 7, 8, 9, 78400]) {
    it(`normalArray(${count}) follows normal() within float32 error`, () => {
      const bulk = new RandomStream(11);
      const single = new RandomStream(11);
      const values = bulk.normalArray(count);
      const expected = Array.from({ length: count }, () => single.normal());
      assert.ok(worstError(values, expected) < 5e-6, `worst error ${worstError(values, expected)}`);
      assert.deepEqual(bulk.getState().words, single.getState().words);
      assert.equal(bulk.getState().spareNormal === null, single.getState().spareNormal === null);
    });
  }

  it('normalArray uses and leaves the Box–Muller spare', () => {
    const bulk = new RandomStream(5);
    const single = new RandomStream(5);
    const first = bulk.normal();
    const middle = bulk.normalArray(4);
    const last = bulk.normal();
    const expected = Array.from({ length: 6 }, () => single.normal());
    assert.equal(first, expected[0]);
    assert.ok(worstError([...middle, last], expected.slice(1)) < 5e-6);
    assert.deepEqual(bulk.getState(), { ...single.getState(), spareNormal: bulk.getState().spareNormal });
    assert.deepEqual(bulk.normalArray(0), new Float32Array(0));
  });

  it('fill methods write the array draws into views', () => {
    const arrays = new RandomStream(17);
    const fills = new RandomStream(17);
    const expected = [arrays.uniformArray(100), arrays.normalArray(33), arrays.uniformArray(3), arrays.normalArray(64)];
    // Views into one buffer with a guard value at each end, so a write outside the view shows.
    const buffer = new Float32Array(2 + 100 + 33 + 3 + 64).fill(-7);
    let start = 1;
    const views = expected.map((values) => {
      const view = buffer.subarray(start, start + values.length);
      start += values.length;
      return view;
    });
    fills.fillUniform(views[0]!);
    fills.fillNormal(views[1]!);
    fills.fillUniform(views[2]!);
    fills.fillNormal(views[3]!);
    views.forEach((view, i) => assert.deepEqual(view, expected[i]));
    assert.equal(buffer[0], -7);
    assert.equal(buffer[buffer.length - 1], -7);
    assert.deepEqual(fills.getState(), arrays.getState());
  });

  it('normalArray draws standard normals', () => {
    const values = new RandomStream(8).normalArray(200_000);
    const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
    const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length;
    const beyondTwo = values.filter((v) => Math.abs(v) > 2).length / values.length;
    assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.02, `variance ${variance}`);
    // P(|z| > 2) = 0.0455 for a standard normal.
    assert.ok(Math.abs(beyondTwo - 0.0455) < 0.003, `P(|z| > 2) ${beyondTwo}`);
  });
});
