/**
 * Seeded generators of the toy data sets of EBFlow's 2-D and 10-D experiments (Chao et al.,
 * NeurIPS 2023, Table 1 and Figure A4).
 *
 * The authors' code draws each data set once with an unseeded NumPy/Torch generator. Here every
 * point comes from a `RandomStream`, so a data seed fixes the data set exactly. Points are stored
 * row-major in a Float32Array of `count × dimension` values.
 *
 * Split sizes follow the authors' code. Their train split of sine, swirl and checkerboard
 * contains 10,000 points, because the generator draws 50,000 only for the tag 'train' and the
 * train split is built with the tag 'all'. The test split contains 10,000 points; multimodal10 has
 * 50,000 train and 10,000 test points.
 */
import type { RandomStream } from '../random/stream.js';

/** The 2-D data sets of the EBFlow paper's Table 1 (Chao et al., NeurIPS 2023). */
export const TOY_2D_DATASETS = ['sine', 'swirl', 'checkerboard'] as const;
export type Toy2dDataset = (typeof TOY_2D_DATASETS)[number];

/** Every toy data set: the three 2-D ones and the 10-D multimodal one. */
export const TOY_DATASET_NAMES = [...TOY_2D_DATASETS, 'multimodal10'] as const;
export type ToyDatasetName = (typeof TOY_DATASET_NAMES)[number];

/** A set of points, row-major. */
export interface PointSet {
  /** `count × dimension` values; point i occupies [i·D, (i+1)·D). */
  values: Float32Array;
  count: number;
  dimension: number;
}

/** The training and test points of one data set. */
export interface ToySplits {
  dataset: ToyDatasetName;
  train: PointSet;
  test: PointSet;
}

/** Sizes of the train and test splits as in the authors' code. */
export const SPLIT_SIZES: Readonly<Record<ToyDatasetName, { train: number; test: number }>> = {
  sine: { train: 10_000, test: 10_000 },
  swirl: { train: 10_000, test: 10_000 },
  checkerboard: { train: 10_000, test: 10_000 },
  multimodal10: { train: 50_000, test: 10_000 },
};

/** Dimension D of each data set's points. */
export const DATASET_DIMENSIONS: Readonly<Record<ToyDatasetName, number>> = {
  sine: 2,
  swirl: 2,
  checkerboard: 2,
  multimodal10: 10,
};

/** Returns true when `name` is one of `TOY_DATASET_NAMES`. */
export function isToyDataset(name: string): name is ToyDatasetName {
  return (TOY_DATASET_NAMES as readonly string[]).includes(name);
}

/**
 * Draws `count` points of `dataset` from `random`. O(count·D). Each generator consumes the
 * stream point by point, in the order of the formulas below.
 */
export function generatePoints(dataset: ToyDatasetName, count: number, random: RandomStream): PointSet {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`generatePoints: count must be a non-negative integer, received ${count}`);
  }
  const dimension = DATASET_DIMENSIONS[dataset];
  if (dimension === undefined) {
    throw new Error(`generatePoints: unknown data set "${String(dataset)}"; expected one of ${TOY_DATASET_NAMES.join(', ')}`);
  }
  const values = new Float32Array(count * dimension);
  const draw = POINT_GENERATORS[dataset];
  const point = new Float64Array(dimension);
  for (let i = 0; i < count; i++) {
    draw(random, point);
    values.set(point, i * dimension);
  }
  return { values, count, dimension };
}

/**
 * Draws the train split and then the test split of `dataset` from `random`, with the sizes of
 * `SPLIT_SIZES` unless `sizes` overrides them. O((train + test)·D).
 */
export function generateSplits(dataset: ToyDatasetName, random: RandomStream, sizes?: Partial<{ train: number; test: number }>): ToySplits {
  if (!isToyDataset(dataset)) {
    throw new Error(`generateSplits: unknown data set "${String(dataset)}"; expected one of ${TOY_DATASET_NAMES.join(', ')}`);
  }
  const trainCount = sizes?.train ?? SPLIT_SIZES[dataset].train;
  const testCount = sizes?.test ?? SPLIT_SIZES[dataset].test;
  const train = generatePoints(dataset, trainCount, random);
  const test = generatePoints(dataset, testCount, random);
  return { dataset, train, test };
}

type PointGenerator = (random: RandomStream, out: Float64Array) => void;

/** Uniform on [low, high). */
function uniformBetween(random: RandomStream, low: number, high: number): number {
  return low + (high - low) * random.uniform();
}

/** sine: a ~ U[−2, 2), e ~ N(0, 0.25²), point 4·(a, sin(3a) + e). */
function drawSine(random: RandomStream, out: Float64Array): void {
  const a = uniformBetween(random, -2, 2);
  const e = 0.25 * random.normal();
  out[0] = 4 * a;
  out[1] = 4 * (Math.sin(3 * a) + e);
}

/** The swirl's radius scale 2.5/3. */
const SWIRL_SCALE = 2.5 / 3;

/**
 * swirl: n = √u·3π, d₁ = −cos(n)·n + 0.5·u₁ − 1, d₂ = sin(n)·n + 0.5·u₂ − 2, point
 * (−d₁·r, −d₂·r) with r = 2.5/3, drawing u, u₁, u₂ ~ U[0, 1) in that order.
 */
function drawSwirl(random: RandomStream, out: Float64Array): void {
  const n = Math.sqrt(random.uniform()) * 3 * Math.PI;
  const d1 = -Math.cos(n) * n + 0.5 * random.uniform() - 1;
  const d2 = Math.sin(n) * n + 0.5 * random.uniform() - 2;
  out[0] = -d1 * SWIRL_SCALE;
  out[1] = -d2 * SWIRL_SCALE;
}

/**
 * checkerboard: x₁ ~ U[−2, 2), x₂ = U[0, 1) − 2·Bernoulli(½) + (⌊x₁⌋ mod 2) with a non-negative
 * modulo, point 3·(x₁, x₂): a 4×4 board on [−6, 6)², eight filled squares.
 */
function drawCheckerboard(random: RandomStream, out: Float64Array): void {
  const x1 = uniformBetween(random, -2, 2);
  const offset = random.uniform() - 2 * (random.uniform() < 0.5 ? 1 : 0);
  const parity = ((Math.floor(x1) % 2) + 2) % 2;
  out[0] = 3 * x1;
  out[1] = 3 * (offset + parity);
}

/** multimodal10: z ~ N(0, I₁₀), y₀ = z₀, y_i = tanh(5·z_i)·(y_{i−1} + 2·2^i) for i = 1 … 9. */
function drawMultimodal10(random: RandomStream, out: Float64Array): void {
  out[0] = random.normal();
  for (let i = 1; i < 10; i++) {
    out[i] = Math.tanh(5 * random.normal()) * (out[i - 1] + 2 * 2 ** i);
  }
}

const POINT_GENERATORS: Readonly<Record<ToyDatasetName, PointGenerator>> = {
  sine: drawSine,
  swirl: drawSwirl,
  checkerboard: drawCheckerboard,
  multimodal10: drawMultimodal10,
};

/**
 * Batches drawn without replacement from a point set, reshuffled at every pass and continuing
 * across passes (a batch may hold the end of one pass and the start of the next), like the
 * authors' repeat–shuffle–batch pipeline. The permutations come from `random`. O(B·D) per batch.
 */
export class BatchSampler {
  private order: Int32Array;
  private position = 0;

  constructor(
    private readonly points: PointSet,
    readonly batchSize: number,
    private readonly random: RandomStream,
  ) {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`BatchSampler: batchSize must be a positive integer, received ${batchSize}`);
    }
    if (points.count < 1) {
      throw new RangeError('BatchSampler: the point set is empty; generate at least one point');
    }
    this.order = random.permutation(points.count);
  }

  /** Returns the next batch as `batchSize × D` values. */
  next(): Float32Array {
    const { dimension, values } = this.points;
    const batch = new Float32Array(this.batchSize * dimension);
    for (let b = 0; b < this.batchSize; b++) {
      if (this.position === this.order.length) {
        this.order = this.random.permutation(this.points.count);
        this.position = 0;
      }
      const index = this.order[this.position++];
      batch.set(values.subarray(index * dimension, (index + 1) * dimension), b * dimension);
    }
    return batch;
  }
}
