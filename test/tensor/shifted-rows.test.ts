import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { useBackend } from '../../src/backend/select.js';
import { combineShiftedGradient, expandShiftedRows } from '../../src/tensor/shifted-rows.js';

/** Returns a [rows, columns] float32 tensor of distinct values. */
function distinct(rows: number, columns: number): tf.Tensor2D {
  return tf.tensor2d(Array.from({ length: rows * columns }, (_, i) => Math.cos(i * 0.91) * (1 + (i % 5))), [rows, columns]);
}

/** Returns the rows [first, end) of a row-major [?, columns] array. */
function rowsOf(values: Float32Array, columns: number, first: number, end: number): number[] {
  return Array.from(values.subarray(first * columns, end * columns));
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`shifted rows on ${backend}`, () => {
    // Block sizes (n·D) that are and are not multiples of the 4-value vectors.
    const shapes: Array<[number, number]> = [
      [1, 1],
      [2, 3],
      [3, 4],
      [5, 7],
      [100, 784],
    ];

    for (const [rows, columns] of shapes) {
      it(`expand and combine of [${rows}, ${columns}] blocks`, async () => {
        await useBackend(backend);
        const both = distinct(2 * rows, columns);
        const expanded = expandShiftedRows(both);
        assert.deepEqual(expanded.shape, [3 * rows, columns]);
        const input = both.dataSync() as Float32Array;
        const centre = rowsOf(input, columns, 0, rows);
        const difference = rowsOf(input, columns, rows, 2 * rows);
        const output = expanded.dataSync() as Float32Array;
        assert.deepEqual(rowsOf(output, columns, 0, rows), centre);
        assert.deepEqual(rowsOf(output, columns, rows, 2 * rows), centre.map((c, i) => Math.fround(c + difference[i]!)));
        assert.deepEqual(rowsOf(output, columns, 2 * rows, 3 * rows), centre.map((c, i) => Math.fround(c - difference[i]!)));

        const gradient = distinct(3 * rows, columns);
        const combined = combineShiftedGradient(gradient);
        assert.deepEqual(combined.shape, [2 * rows, columns]);
        const gradientValues = gradient.dataSync() as Float32Array;
        const [g0, gPlus, gMinus] = [0, 1, 2].map((block) => rowsOf(gradientValues, columns, block * rows, (block + 1) * rows));
        const sums = combined.dataSync() as Float32Array;
        assert.deepEqual(rowsOf(sums, columns, 0, rows), g0!.map((c, i) => Math.fround(Math.fround(c + gPlus![i]!) + gMinus![i]!)));
        assert.deepEqual(rowsOf(sums, columns, rows, 2 * rows), gPlus!.map((p, i) => Math.fround(p - gMinus![i]!)));
        tf.dispose([both, expanded, gradient, combined]);
      });
    }

    it('rejects row counts that are not whole blocks', async () => {
      await useBackend(backend);
      const odd = distinct(3, 2);
      const notThree = distinct(4, 2);
      assert.throws(() => expandShiftedRows(odd), /invalid shape \[3, 2\]; pass a matrix of 2 stacked blocks/);
      assert.throws(() => combineShiftedGradient(notThree), /invalid shape \[4, 2\]; pass a matrix of 3 stacked blocks/);
      tf.dispose([odd, notThree]);
    });
  });
}
