/**
 * One training run of EBFlow's 2-D experiments (Chao et al., NeurIPS 2023, Table 1): data, model,
 * objective, loop, metrics against the Gaussian-KDE oracle and the density grid of the final EMA
 * weights.
 *
 * `defaultToy2dConfig` returns the authors' settings for a data set and objective, from their
 * config files for sine, swirl and checkerboard. Tests and quick runs shorten `iterations`, the
 * batch and the model.
 */
import type { ObjectiveName } from '../objectives/objective.js';
import { OBJECTIVE_NAMES } from '../objectives/objective.js';
import { RandomStream } from '../random/stream.js';
import { COUPLING_WEIGHT_INITS, type CouplingActivation, type CouplingWeightInit } from './coupling-network.js';
import { COUPLING_FLOW_DEFAULTS, createCouplingFlow2d } from './coupling-flow.js';
import { BatchSampler, generateSplits, TOY_2D_DATASETS, type Toy2dDataset } from './datasets.js';
import { BASE_DISTRIBUTIONS, type BaseDistribution } from './density.js';
import { densityGrid, type DensityGrid } from './heatmap.js';
import { createKdeEvaluationSet, toyMetrics, type ToyMetrics } from './metrics.js';
import { getToyObjective } from './objectives.js';
import { runToyLoop, type ToyStepProgress } from './training-loop.js';

export interface Toy2dConfig {
  dataset: Toy2dDataset;
  objective: ObjectiveName;
  /** Optimiser updates; the authors run 50,001 (sine, swirl) or 100,001 (checkerboard). */
  iterations: number;
  /** Rows per batch; 2048 (sine, swirl) or 10,000 (checkerboard). */
  batchSize: number;
  learningRate: number;
  /** Maximum global gradient norm; 0 turns clipping off. */
  gradientClip: number;
  /** 'adam' or 'adamw'; identical here because the weight decay is 0 in every configuration. */
  optimizer: 'adam' | 'adamw';
  /** Activation of the couplings' t_net. */
  shiftActivation: CouplingActivation;
  /** Weight normalisation of the 2×2 linear layers (the authors' checkerboard FDSSM only). */
  weightNorm: boolean;
  /** The coupling MLPs' weights: 'orthogonal' (as configured) or 'uniform' (as the authors' code runs). */
  networkInit: CouplingWeightInit;
  /** Seed of the model initialisation and every training draw. */
  seed: number;
  /** Seed of the train and test points and of the evaluation noise, shared by runs with different seeds. */
  dataSeed: number;
  /** std of the data perturbation and bandwidth of the oracle; 0.375. */
  noiseStd: number;
  /** FDSSM's ε; 0.1. */
  epsilon: number;
  /** EMA decay (0.999), or null for no EMA. */
  emaDecay: number | null;
  /**
   * Base distribution of ML training, the metrics and the heat-map. 'gaussian' uses one base
   * everywhere. 'laplace' reproduces the authors' ML objective and evaluation, while their
   * score-matching and SML objectives always train the Gaussian-base energy (and their heat-maps
   * always show the Gaussian-base density).
   */
  base: BaseDistribution;
  /** Points of the evaluation set (at most the test split); 10,000. */
  evaluationPoints: number;
  /** Evaluate after every this many updates, and after the last; 0 for the last only. */
  evaluateEvery: number;
  /** Largest number of rows per gradient pass; bounds the memory of SSM's third-order tape. */
  chunkRows: number;
  blocks: number;
  hidden: number;
  /**
   * Train and test split sizes, 10,000 each as the authors' code draws them. Their generator
   * draws 50,000 training points only for the split tag 'train', which their train split does
   * not use. Set `trainPoints` to 50,000 for the size it was meant to have.
   */
  trainPoints: number;
  testPoints: number;
}

interface ConfigRow {
  learningRate: number;
  gradientClip: number;
  shiftActivation: CouplingActivation;
  optimizer: 'adam' | 'adamw';
  weightNorm?: boolean;
}

/** The authors' per-data-set, per-objective settings (their toy config files). */
const CONFIG_TABLE: Readonly<Record<Toy2dDataset, Readonly<Record<ObjectiveName, ConfigRow>>>> = {
  sine: {
    ml: { learningRate: 5e-4, gradientClip: 1, shiftActivation: 'swish', optimizer: 'adam' },
    sml: { learningRate: 5e-4, gradientClip: 0, shiftActivation: 'swish', optimizer: 'adamw' },
    ssm: { learningRate: 1e-4, gradientClip: 1, shiftActivation: 'swish', optimizer: 'adam' },
    dsm: { learningRate: 1e-4, gradientClip: 1, shiftActivation: 'elu', optimizer: 'adam' },
    fdssm: { learningRate: 1e-4, gradientClip: 1, shiftActivation: 'swish', optimizer: 'adam' },
  },
  swirl: {
    ml: { learningRate: 5e-3, gradientClip: 1, shiftActivation: 'elu', optimizer: 'adam' },
    sml: { learningRate: 1e-4, gradientClip: 10, shiftActivation: 'elu', optimizer: 'adam' },
    ssm: { learningRate: 1e-4, gradientClip: 10, shiftActivation: 'swish', optimizer: 'adam' },
    dsm: { learningRate: 1e-4, gradientClip: 10, shiftActivation: 'elu', optimizer: 'adam' },
    fdssm: { learningRate: 1e-4, gradientClip: 2.5, shiftActivation: 'elu', optimizer: 'adam' },
  },
  checkerboard: {
    ml: { learningRate: 1e-4, gradientClip: 10, shiftActivation: 'elu', optimizer: 'adamw' },
    sml: { learningRate: 1e-4, gradientClip: 10, shiftActivation: 'elu', optimizer: 'adamw' },
    ssm: { learningRate: 1e-4, gradientClip: 10, shiftActivation: 'swish', optimizer: 'adamw' },
    dsm: { learningRate: 1e-4, gradientClip: 10, shiftActivation: 'elu', optimizer: 'adamw' },
    fdssm: { learningRate: 1e-4, gradientClip: 10, shiftActivation: 'elu', optimizer: 'adam', weightNorm: true },
  },
};

/** Returns the authors' configuration for `dataset` and `objective`, with this project's Gaussian base. */
export function defaultToy2dConfig(dataset: Toy2dDataset, objective: ObjectiveName): Toy2dConfig {
  if (!TOY_2D_DATASETS.includes(dataset)) {
    throw new RangeError(`defaultToy2dConfig: dataset must be one of ${TOY_2D_DATASETS.join(', ')}, received "${dataset}"`);
  }
  if (!OBJECTIVE_NAMES.includes(objective)) {
    throw new RangeError(`defaultToy2dConfig: objective must be one of ${OBJECTIVE_NAMES.join(', ')}, received "${objective}"`);
  }
  const row = CONFIG_TABLE[dataset][objective];
  const checkerboard = dataset === 'checkerboard';
  return {
    dataset,
    objective,
    iterations: checkerboard ? 100_001 : 50_001,
    batchSize: checkerboard ? 10_000 : 2048,
    learningRate: row.learningRate,
    gradientClip: row.gradientClip,
    optimizer: row.optimizer,
    shiftActivation: row.shiftActivation,
    weightNorm: row.weightNorm ?? false,
    networkInit: 'orthogonal',
    seed: 0,
    dataSeed: 0,
    noiseStd: 0.375,
    epsilon: 0.1,
    emaDecay: 0.999,
    base: 'gaussian',
    evaluationPoints: 10_000,
    evaluateEvery: 0,
    chunkRows: objective === 'ssm' ? 512 : 2048,
    blocks: COUPLING_FLOW_DEFAULTS.blocks,
    hidden: COUPLING_FLOW_DEFAULTS.hidden,
    trainPoints: 10_000,
    testPoints: 10_000,
  };
}

/** The outcome of one 2-D run. */
export interface Toy2dResult {
  config: Toy2dConfig;
  losses: number[];
  skippedSteps: number;
  iterationMs: number[];
  /** Metrics after the given number of updates, with the EMA weights; the last is the final model. */
  evaluations: { step: number; metrics: ToyMetrics }[];
  /** ln q of the final EMA model on the 100×100 grid over [−10, 10]². */
  grid: DensityGrid;
  /** Wall-clock seconds to build the evaluation set (the oracle's 10⁸ kernel terms at 10,000 points). */
  oracleSeconds: number;
}

/**
 * Trains one model and evaluates it.
 *
 * 1. Data: train and test splits, then the evaluation noise, from a stream seeded with `dataSeed`.
 * 2. Oracle: ln p* and s* at the evaluation points (O(N²) in float64).
 * 3. Model and training draws from a stream seeded with `seed`; the loop of training-loop.ts.
 * 4. Metrics at the evaluation steps and the density grid, both with the EMA weights.
 */
export async function trainToy2d(config: Toy2dConfig, onStep?: (progress: ToyStepProgress) => void): Promise<Toy2dResult> {
  checkConfig(config);

  // 1. and 2.
  const dataRandom = new RandomStream(config.dataSeed);
  const splits = generateSplits(config.dataset, dataRandom, { train: config.trainPoints, test: config.testPoints });
  const oracleStarted = performance.now();
  const evaluationSet = createKdeEvaluationSet(splits.test, config.noiseStd, dataRandom, config.evaluationPoints);
  const oracleSeconds = (performance.now() - oracleStarted) / 1000;

  // 3.
  const random = new RandomStream(config.seed);
  const model = createCouplingFlow2d({
    random,
    blocks: config.blocks,
    hidden: config.hidden,
    shiftActivation: config.shiftActivation,
    weightNorm: config.weightNorm,
    networkInit: config.networkInit,
  });
  // Set by the final evaluation, while the EMA weights are in place.
  const final: { grid: DensityGrid | null } = { grid: null };
  try {
    const loop = await runToyLoop({
      model,
      objective: getToyObjective(config.objective),
      settings: { noiseStd: config.noiseStd, epsilon: config.epsilon, mlBase: config.base },
      sampler: new BatchSampler(splits.train, config.batchSize, random),
      random,
      iterations: config.iterations,
      learningRate: config.learningRate,
      gradientClip: config.gradientClip,
      emaDecay: config.emaDecay,
      decoupledWeightDecay: config.optimizer === 'adamw',
      chunkRows: config.chunkRows,
      evaluateEvery: config.evaluateEvery,
      // 4. The final evaluation also renders the grid, while the EMA weights are in place.
      evaluate: (_step, iteration) => {
        const metrics = toyMetrics(model, evaluationSet, config.base);
        if (iteration === config.iterations) final.grid = densityGrid(model, { base: config.base });
        return metrics;
      },
      onStep,
    });
    const { grid } = final;
    if (grid === null) throw new Error('trainToy2d: the final evaluation did not run, so there is no density grid');
    return {
      config,
      losses: loop.losses,
      skippedSteps: loop.skippedSteps,
      iterationMs: loop.iterationMs,
      evaluations: loop.evaluations.map(({ step, value }) => ({ step, metrics: value })),
      grid,
      oracleSeconds,
    };
  } finally {
    model.dispose();
  }
}

function checkConfig(config: Toy2dConfig): void {
  const problems: string[] = [];
  const positiveIntegers: (keyof Toy2dConfig)[] = [
    'iterations',
    'batchSize',
    'chunkRows',
    'hidden',
    'trainPoints',
    'testPoints',
    'evaluationPoints',
  ];
  for (const key of positiveIntegers) {
    const value = config[key];
    if (!(Number.isInteger(value) && (value as number) >= 1)) problems.push(`${key} must be a positive integer, received ${String(value)}`);
  }
  if (config.batchSize < 2) problems.push(`batchSize must be at least 2 for ActNorm's initialisation, received ${config.batchSize}`);
  if (config.evaluationPoints > config.testPoints) {
    problems.push(`evaluationPoints (${config.evaluationPoints}) must not exceed testPoints (${config.testPoints})`);
  }
  if (!(config.noiseStd > 0)) problems.push(`noiseStd must be > 0, received ${config.noiseStd}`);
  if (!COUPLING_WEIGHT_INITS.includes(config.networkInit)) {
    problems.push(`networkInit must be one of ${COUPLING_WEIGHT_INITS.join(', ')}, received "${config.networkInit}"`);
  }
  if (!BASE_DISTRIBUTIONS.includes(config.base)) {
    problems.push(`base must be one of ${BASE_DISTRIBUTIONS.join(', ')}, received "${config.base}"`);
  }
  if (config.emaDecay !== null && !(config.emaDecay >= 0 && config.emaDecay < 1)) {
    problems.push(`emaDecay must lie in [0, 1) or be null, received ${config.emaDecay}`);
  }
  if (problems.length > 0) throw new RangeError(`trainToy2d: invalid configuration: ${problems.join('; ')}`);
}
