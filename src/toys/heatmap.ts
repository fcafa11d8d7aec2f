/**
 * Density heat-maps of 2-D toy models, as in the authors' plots: q(x) = exp(ln q(x)) on a
 * 100×100 grid over [−10, 10]², drawn with a perceptual colour map and encoded as PNG.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { EnergyFlow } from '../models/energy-flow.js';
import { flowLogDensity, type BaseDistribution } from './density.js';
import { encodePng } from '../sampling/png.js';

export interface DensityGridOptions {
  /** Grid points per axis; default 100. */
  resolution?: number;
  /** The grid spans [−extent, extent]² with both ends included; default 10. */
  extent?: number;
  /** Base distribution of the density; default 'gaussian'. */
  base?: BaseDistribution;
}

/** ln q on a square grid. */
export interface DensityGrid {
  resolution: number;
  extent: number;
  /**
   * ln q, row-major with `resolution²` values: row r has y = extent − r·step (top row y = +extent),
   * column c has x = −extent + c·step, step = 2·extent/(resolution − 1).
   */
  logDensity: Float64Array;
}

/** Evaluates ln q of a 2-D model on the grid, in one batch of resolution² rows. O(resolution² · forward row). */
export function densityGrid(model: EnergyFlow, options: DensityGridOptions = {}): DensityGrid {
  const resolution = options.resolution ?? 100;
  const extent = options.extent ?? 10;
  if (model.dimension !== 2) {
    throw new RangeError(`densityGrid: the model must be 2-D, received dimension ${model.dimension}`);
  }
  if (!Number.isInteger(resolution) || resolution < 2 || !(extent > 0)) {
    throw new RangeError(`densityGrid: resolution must be an integer ≥ 2 and extent > 0, received ${resolution} and ${extent}`);
  }
  const step = (2 * extent) / (resolution - 1);
  const points = new Float32Array(resolution * resolution * 2);
  for (let row = 0; row < resolution; row++) {
    for (let column = 0; column < resolution; column++) {
      const index = (row * resolution + column) * 2;
      points[index] = -extent + column * step;
      points[index + 1] = extent - row * step;
    }
  }
  const logDensity = tf.tidy(() => {
    const x = tf.tensor2d(points, [resolution * resolution, 2]);
    return flowLogDensity(model, x, options.base ?? 'gaussian').dataSync();
  });
  return { resolution, extent, logDensity: Float64Array.from(logDensity) };
}

/**
 * Control points of the viridis colour map (matplotlib's default, by van der Walt and Smith) at
 * t = 0, 1/8, …, 1: #440154, #472d7b, #3b528b, #2c728e, #21918c, #28ae80, #5ec962, #addc30 and
 * #fde725. Colours in between are interpolated linearly in RGB, which approximates the map.
 */
const VIRIDIS: readonly (readonly [number, number, number])[] = [
  [0x44, 0x01, 0x54],
  [0x47, 0x2d, 0x7b],
  [0x3b, 0x52, 0x8b],
  [0x2c, 0x72, 0x8e],
  [0x21, 0x91, 0x8c],
  [0x28, 0xae, 0x80],
  [0x5e, 0xc9, 0x62],
  [0xad, 0xdc, 0x30],
  [0xfd, 0xe7, 0x25],
];

/** Returns the viridis colour of t ∈ [0, 1] (clamped; NaN maps to 0). */
export function viridis(t: number): [number, number, number] {
  const clamped = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  const position = clamped * (VIRIDIS.length - 1);
  const lower = Math.min(Math.floor(position), VIRIDIS.length - 2);
  const fraction = position - lower;
  const [a, b] = [VIRIDIS[lower], VIRIDIS[lower + 1]];
  return [0, 1, 2].map((k) => Math.round(a[k] + fraction * (b[k] - a[k]))) as [number, number, number];
}

/**
 * Renders exp(ln q) of a grid as a PNG, the density divided by its maximum over the grid and
 * coloured with viridis (non-finite values draw as the lowest colour). Each grid point becomes a
 * `pixelsPerPoint`-wide square (default 1, a resolution×resolution image). O(pixels).
 */
export function renderDensityPng(grid: DensityGrid, pixelsPerPoint = 1): Buffer {
  if (!Number.isInteger(pixelsPerPoint) || pixelsPerPoint < 1) {
    throw new RangeError(`renderDensityPng: pixelsPerPoint must be a positive integer, received ${pixelsPerPoint}`);
  }
  const { resolution, logDensity } = grid;
  let maximum = -Infinity;
  for (const value of logDensity) if (Number.isFinite(value) && value > maximum) maximum = value;
  const side = resolution * pixelsPerPoint;
  const rgb = new Uint8Array(side * side * 3);
  for (let row = 0; row < side; row++) {
    for (let column = 0; column < side; column++) {
      const value = logDensity[Math.floor(row / pixelsPerPoint) * resolution + Math.floor(column / pixelsPerPoint)];
      const colour = viridis(Number.isFinite(maximum) ? Math.exp(value - maximum) : Number.NaN);
      rgb.set(colour, (row * side + column) * 3);
    }
  }
  return encodePng({ width: side, height: side, channels: 3, pixels: rgb });
}
