import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { betterPeerFigure, median, ratioOursOverPeer } from '../../src/peer/comparison.js';

describe('median', () => {
  it('takes the middle of odd and even counts', () => {
    assert.equal(median([5, 1, 3]), 3);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([7]), 7);
  });

  it('does not reorder its input', () => {
    const values = [3, 1, 2];
    median(values);
    assert.deepEqual(values, [3, 1, 2]);
  });

  it('rejects empty and non-finite input', () => {
    assert.throws(() => median([]), /empty array/);
    assert.throws(() => median([1, Number.NaN]), /must be finite, received NaN/);
  });
});

describe('betterPeerFigure', () => {
  it('keeps the lowest median', () => {
    assert.deepEqual(betterPeerFigure([{ threads: 1, medianMs: 80 }, { threads: 2, medianMs: 55 }]), { threads: 2, medianMs: 55 });
    assert.deepEqual(betterPeerFigure([{ threads: 1, medianMs: 80 }, { threads: 2, medianMs: 120 }]), { threads: 1, medianMs: 80 });
  });

  it('skips failed thread counts', () => {
    assert.deepEqual(betterPeerFigure([{ threads: 1, medianMs: null }, { threads: 2, medianMs: 90 }]), { threads: 2, medianMs: 90 });
    assert.equal(betterPeerFigure([{ threads: 1, medianMs: null }]), null);
    assert.equal(betterPeerFigure([]), null);
  });

  it('breaks ties toward fewer threads', () => {
    assert.deepEqual(betterPeerFigure([{ threads: 2, medianMs: 50 }, { threads: 1, medianMs: 50 }]), { threads: 1, medianMs: 50 });
  });
});

describe('ratioOursOverPeer', () => {
  it('divides ours by the peer', () => {
    assert.equal(ratioOursOverPeer(150, 50), 3);
    assert.equal(ratioOursOverPeer(25, 100), 0.25);
  });

  it('returns null without both figures', () => {
    assert.equal(ratioOursOverPeer(null, 50), null);
    assert.equal(ratioOursOverPeer(50, null), null);
    assert.equal(ratioOursOverPeer(50, 0), null);
  });
});
