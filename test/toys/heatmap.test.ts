import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inflateSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';

import { RandomStream } from '../../src/random/stream.js';
import { createCouplingFlow2d } from '../../src/toys/coupling-flow.js';
import { densityGrid, renderDensityPng, viridis } from '../../src/toys/heatmap.js';
import { ToyLinearLayer } from '../../src/toys/layers.js';
import { crc32 } from '../../src/sampling/png.js';
import { forEachBackend } from '../helpers/backends.js';

interface DecodedPng {
  width: number;
  height: number;
  /** RGB bytes, rows top to bottom. */
  rgb: Uint8Array;
}

/** Decodes 8-bit RGB PNGs with filter type 0, as the heat-maps are written, checking every chunk CRC. */
function decodePng(file: Buffer): DecodedPng {
  assert.deepEqual([...file.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  let offset = 8;
  let width = 0;
  let height = 0;
  const data: Buffer[] = [];
  const types: string[] = [];
  while (offset < file.length) {
    const length = file.readUInt32BE(offset);
    const type = file.toString('latin1', offset + 4, offset + 8);
    const body = file.subarray(offset + 8, offset + 8 + length);
    assert.equal(file.readUInt32BE(offset + 8 + length), crc32(file.subarray(offset + 4, offset + 8 + length)), `CRC of ${type}`);
    types.push(type);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      assert.deepEqual([...body.subarray(8)], [8, 2, 0, 0, 0], 'bit depth 8, RGB, no interlace');
    }
    if (type === 'IDAT') data.push(body);
    offset += 12 + length;
  }
  assert.deepEqual(types, ['IHDR', 'IDAT', 'IEND']);
  const scanlines = inflateSync(Buffer.concat(data));
  assert.equal(scanlines.length, height * (3 * width + 1));
  const rgb = new Uint8Array(width * height * 3);
  for (let row = 0; row < height; row++) {
    assert.equal(scanlines[row * (3 * width + 1)], 0, `filter byte of row ${row}`);
    rgb.set(scanlines.subarray(row * (3 * width + 1) + 1, (row + 1) * (3 * width + 1)), row * width * 3);
  }
  return { width, height, rgb };
}

describe('viridis colour map', () => {
  it('runs from dark purple to yellow', () => {
    assert.deepEqual(viridis(0), [68, 1, 84]);
    assert.deepEqual(viridis(0.5), [0x21, 0x91, 0x8c]);
    assert.deepEqual(viridis(1), [253, 231, 37]);
    assert.deepEqual(viridis(Number.NaN), [68, 1, 84]);
  });
});

forEachBackend(() => {
  describe('density heat-map', () => {
    it('puts the mode of N((5, 5), I) in the top-right quadrant', () => {
      const model = createCouplingFlow2d({ random: new RandomStream(0), blocks: 0 });
      const layer = model.layers[0] as ToyLinearLayer;
      tf.tidy(() => {
        layer.weight.assign(tf.tensor2d([1, 0, 0, 1], [2, 2]));
        layer.bias.assign(tf.tensor1d([-5, -5]));
      });
      const grid = densityGrid(model);
      assert.equal(grid.logDensity.length, 100 * 100);
      let best = 0;
      grid.logDensity.forEach((value, index) => {
        if (value > grid.logDensity[best]) best = index;
      });
      // Row r has y = 10 − r·20/99 and column c has x = −10 + c·20/99: y = 5 at r ≈ 24.75, x = 5 at c ≈ 74.25.
      assert.deepEqual([Math.floor(best / 100), best % 100], [25, 74]);
      const step = 20 / 99;
      const [x, y] = [-10 + 74 * step, 10 - 25 * step];
      assert.ok(Math.abs(grid.logDensity[best] - (-0.5 * ((x - 5) ** 2 + (y - 5) ** 2) - Math.log(2 * Math.PI))) < 1e-5);

      const image = decodePng(renderDensityPng(grid));
      assert.equal(image.width, 100);
      assert.equal(image.height, 100);
      assert.deepEqual([...image.rgb.subarray(best * 3, best * 3 + 3)], [253, 231, 37], 'the densest point has the top colour');
      assert.deepEqual([...image.rgb.subarray(99 * 100 * 3, 99 * 100 * 3 + 3)], [68, 1, 84], 'the bottom-left corner is empty');

      const enlarged = decodePng(renderDensityPng(grid, 3));
      assert.equal(enlarged.width, 300);
      model.dispose();
    });
  });
});
