import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { displayValue, imageGrid } from '../../src/sampling/grid.js';

describe('image grid', () => {
  it('places images ten to a row with padding', () => {
    // 12 grey 2×3 images, image n filled with value 10·n + 5.
    const count = 12;
    const pixels = new Uint8Array(count * 6);
    for (let n = 0; n < count; n++) pixels.fill(10 * n + 5, n * 6, (n + 1) * 6);
    const grid = imageGrid({ pixels, count, imageShape: [2, 3, 1] });
    assert.equal(grid.channels, 1);
    assert.equal(grid.width, 10 * (3 + 2) + 2);
    assert.equal(grid.height, 2 * (2 + 2) + 2);
    const at = (row: number, column: number): number => grid.pixels[row * grid.width + column];
    assert.equal(at(0, 0), 0, 'padding is black');
    assert.equal(at(2, 2), displayValue(5), 'image 0 starts at (2, 2)');
    assert.equal(at(3, 4), displayValue(5));
    assert.equal(at(2, 7), displayValue(15), 'image 1 starts at column 7');
    assert.equal(at(6, 2), displayValue(105), 'image 10 opens the second row');
    assert.equal(at(6, 12), 0, 'cells after the last image stay black');
  });

  it('scales pixels as p/256', () => {
    assert.equal(displayValue(0), 0);
    assert.equal(displayValue(128), 128);
    assert.equal(displayValue(255), 254);
    assert.equal(displayValue(1), 1);
  });

  it('keeps colour channels', () => {
    const pixels = Uint8Array.from([255, 0, 128, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    const grid = imageGrid({ pixels, count: 1, imageShape: [2, 2, 3] }, { padding: 0 });
    assert.deepEqual([grid.width, grid.height, grid.channels], [2, 2, 3]);
    assert.deepEqual([...grid.pixels], [...pixels].map(displayValue));
    assert.throws(() => imageGrid({ pixels, count: 2, imageShape: [2, 2, 3] }), /2 images of shape \[2, 2, 3\] need 24 bytes, received 12/);
  });
});
