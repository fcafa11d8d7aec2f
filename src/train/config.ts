/**
 * The one place where training options get their defaults and their checks.
 *
 * `resolveTrainingConfig` fills every option the caller leaves out with the value of the EBFlow
 * reference's config file for that data set, architecture and objective. Those files live under
 * real_world/ebflow/configs of github.com/chen-hao-chao/ebflow (commit d59c4e5). Unknown options
 * and impossible combinations are rejected with a message that names the options and the fix.
 */
import { OBJECTIVE_NAMES, type ObjectiveName } from '../objectives/objective.js';
import type { ArchitectureName, DatasetName, OptimizerName, TrainingConfig } from './session.js';

export const DATASET_NAMES: readonly DatasetName[] = ['mnist', 'cifar10', 'synthetic'];
export const ARCHITECTURE_NAMES: readonly ArchitectureName[] = ['fc', 'cnn', 'glow'];
export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['rmsprop', 'adam'];

/** The architectures with a row per data set in the reference's config table. */
type TabledArchitecture = Exclude<ArchitectureName, 'glow'>;

/** A partial config: the three names are required, every other option has a default. */
export type TrainingConfigInput = Partial<TrainingConfig> & Pick<TrainingConfig, 'dataset' | 'architecture' | 'objective'>;

/** The options that differ between rows of the reference's config table. */
export interface PaperSettings {
  learningRate: number;
  batchSize: number;
  decay: number;
  milestones: number;
  weightDecay: number;
  gradientClip: number | null;
  sigma: number;
  epsilon: number;
  energyWeight: number;
  logitScale: number;
  residual: boolean;
  /** Spectral normalisation of the CNN's convolutions; never on for FC models. */
  spectralNorm: boolean;
}

type Row = Pick<PaperSettings, 'decay' | 'milestones' | 'weightDecay' | 'gradientClip'>;

/** Settings shared by every objective of one data set and architecture. */
const FAMILY: Record<'mnist' | 'cifar10', Record<TabledArchitecture, Omit<PaperSettings, keyof Row | 'spectralNorm'>>> = {
  mnist: {
    fc: { learningRate: 1e-4, batchSize: 100, sigma: 1.0, epsilon: 1.0, energyWeight: 0, logitScale: 0.5, residual: false },
    cnn: { learningRate: 1e-4, batchSize: 100, sigma: 0.1, epsilon: 0.1, energyWeight: 0, logitScale: 0.75, residual: true },
  },
  cifar10: {
    fc: { learningRate: 1e-4, batchSize: 100, sigma: 0.1, epsilon: 0.1, energyWeight: 0.001, logitScale: 0.5, residual: true },
    cnn: { learningRate: 1e-4, batchSize: 100, sigma: 0.1, epsilon: 0.1, energyWeight: 0.001, logitScale: 0.75, residual: true },
  },
};

function row(decay: number, milestones: number, weightDecay = 0, gradientClip: number | null = null): Row {
  return { decay, milestones, weightDecay, gradientClip };
}

/** The schedule, weight decay and clipping of each objective (the reference's config table). */
const ROWS: Record<'mnist' | 'cifar10', Record<TabledArchitecture, Record<ObjectiveName, Row>>> = {
  mnist: {
    fc: { ml: row(0.95, 50), sml: row(0.95, 50), ssm: row(0.95, 50), dsm: row(0.95, 50), fdssm: row(0.95, 50, 0, 5.0) },
    cnn: {
      ml: row(0.925, 50, 1e-5),
      sml: row(0.925, 50, 1e-5),
      ssm: row(0.95, 50),
      dsm: row(0.95, 50, 1e-5),
      fdssm: row(0.95, 50, 0, 5.0),
    },
  },
  cifar10: {
    fc: { ml: row(0.7, 20), sml: row(0.7, 20), ssm: row(0.85, 30), dsm: row(0.85, 30), fdssm: row(0.7, 20) },
    cnn: { ml: row(0.8, 20), sml: row(0.8, 20), ssm: row(0.9, 20), dsm: row(0.8, 20), fdssm: row(0.85, 50) },
  },
};

/**
 * The MNIST Glow runs (Figure 4 of the EBFlow paper, Chao et al. 2023): Adam with lr 1e-5 and no decay, weight decay 0
 * (the reference's setting has no effect on its optimiser), gradient clipping at 500, λ = 0.1,
 * logit scale 1.0, DSM σ = 0.1. The reference has no FDSSM Glow run, so ε only fills the field.
 */
const GLOW_SETTINGS: PaperSettings = {
  learningRate: 1e-5,
  batchSize: 100,
  decay: 1.0,
  milestones: 1,
  weightDecay: 0,
  gradientClip: 500,
  sigma: 0.1,
  epsilon: 0.1,
  energyWeight: 0.1,
  logitScale: 1.0,
  residual: false,
  spectralNorm: false,
};

/** Objectives a Glow run accepts: SSM and DSM of the Figure 4 runs, and ML, whose log Z costs only L·C³. */
export const GLOW_OBJECTIVES: readonly ObjectiveName[] = ['ml', 'ssm', 'dsm'];

/** Glow squeezes once per block and has 2 blocks, so H and W must be multiples of 4. */
const GLOW_SPATIAL_DIVISOR = 4;

/**
 * Default microbatch sizes of Glow per objective, sized for wasm32's 4 GB address space: with the
 * tfjs 4.22 wasm backend the full-size MNIST Glow fits about 8 rows for DSM and 3 for SSM (third
 * order). The cpu backend and tfjs-node have more memory and may use larger ones.
 * NOTE: ML's 8 is an estimate from DSM's (both differentiate the energy once in θ), not measured.
 */
const GLOW_MICROBATCH_SIZES: Partial<Record<ObjectiveName, number>> = { ml: 8, ssm: 3, dsm: 8 };

/**
 * The objectives whose CIFAR-10 CNN runs use spectral normalisation in the reference's configs.
 * MNIST CNNs and every FC model run without it.
 */
const SPECTRAL_NORM_OBJECTIVES: readonly ObjectiveName[] = ['ml', 'ssm', 'dsm'];

/**
 * Objectives that perturb the model's input with noise (DSM's Gaussian noise, FDSSM's ±ε
 * directions). Without MaP the input is the dequantised pixel value, and a perturbed value
 * below 0 or at 256 and above has no logit, so these objectives need MaP.
 *
 * NOTE: the EBFlow paper's MaP ablation reports DSM and FDSSM NLLs without MaP. Here every such
 * step had a non-finite loss (8 of 8 steps each, MNIST FC with the default σ and ε), because the
 * noise pushes MNIST's many 0-valued pixels out of the logit's range. How the paper's runs avoided this
 * is not known.
 */
const INPUT_PERTURBING_OBJECTIVES: readonly ObjectiveName[] = ['dsm', 'fdssm'];

/** Image shapes of the real data sets; `synthetic` takes any shape. */
const DATASET_SHAPES: Record<'mnist' | 'cifar10', [number, number, number]> = {
  mnist: [28, 28, 1],
  cifar10: [32, 32, 3],
};

/** Training images per real data set, the upper bound of the batch size. */
const TRAIN_SIZES: Record<'mnist' | 'cifar10', number> = { mnist: 50_000, cifar10: 40_000 };

/** The CNN model squeezes after blocks 1 and 2, halving H and W twice. */
const CNN_SPATIAL_DIVISOR = 4;

const KNOWN_KEYS: readonly (keyof TrainingConfig)[] = [
  'dataset',
  'architecture',
  'objective',
  'imageShape',
  'depth',
  'batchSize',
  'seed',
  'learningRate',
  'decay',
  'milestones',
  'weightDecay',
  'gradientClip',
  'emaDecay',
  'sigma',
  'epsilon',
  'slices',
  'energyWeight',
  'logitScale',
  'residual',
  'matchAfterPreprocessing',
  'explicitDerivatives',
  'spectralNorm',
  'workers',
  'optimizer',
  'microbatchSize',
  'glowBlockSize',
  'glowWidth',
  'cifarDirectory',
];

/**
 * Returns the reference's settings for one data set, architecture and objective. Synthetic data
 * has no row of its own, so it takes MNIST's row for one channel and CIFAR-10's otherwise.
 */
export function paperSettings(
  dataset: DatasetName,
  architecture: ArchitectureName,
  objective: ObjectiveName,
  channels: number,
): PaperSettings {
  if (architecture === 'glow') return { ...GLOW_SETTINGS };
  let family: 'mnist' | 'cifar10';
  if (dataset === 'synthetic') {
    family = channels === 1 ? 'mnist' : 'cifar10';
  } else {
    family = dataset;
  }
  const spectralNorm = family === 'cifar10' && architecture === 'cnn' && SPECTRAL_NORM_OBJECTIVES.includes(objective);
  return { ...FAMILY[family][architecture], ...ROWS[family][architecture][objective], spectralNorm };
}

/**
 * Returns a complete, checked config: every option of `input` that is undefined gets the
 * reference's default. Throws a RangeError naming the option, the value and the fix for an
 * unknown option, an invalid value or an impossible combination. O(1).
 */
export function resolveTrainingConfig(input: TrainingConfigInput): TrainingConfig {
  if (input === null || typeof input !== 'object') {
    throw new RangeError(`training config: expected an object, received ${JSON.stringify(input)}`);
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN_KEYS.includes(key as keyof TrainingConfig)) {
      throw new RangeError(`training config: unknown option "${key}"; known options are ${KNOWN_KEYS.join(', ')}`);
    }
  }
  const dataset = checkName('dataset', input.dataset, DATASET_NAMES);
  const architecture = checkName('architecture', input.architecture, ARCHITECTURE_NAMES);
  const objective = checkName('objective', input.objective, OBJECTIVE_NAMES);
  const imageShape = resolveImageShape(dataset, architecture, input.imageShape);
  const defaults = paperSettings(dataset, architecture, objective, imageShape[2]);

  const config: TrainingConfig = {
    dataset,
    architecture,
    objective,
    imageShape,
    depth: input.depth ?? 2,
    batchSize: input.batchSize ?? defaults.batchSize,
    seed: input.seed ?? 0,
    learningRate: input.learningRate ?? defaults.learningRate,
    decay: input.decay ?? defaults.decay,
    milestones: input.milestones ?? defaults.milestones,
    weightDecay: input.weightDecay ?? defaults.weightDecay,
    gradientClip: input.gradientClip === undefined ? defaults.gradientClip : input.gradientClip,
    emaDecay: input.emaDecay === undefined ? 0.999 : input.emaDecay,
    sigma: input.sigma ?? defaults.sigma,
    epsilon: input.epsilon ?? defaults.epsilon,
    slices: input.slices ?? 1,
    energyWeight: input.energyWeight ?? defaults.energyWeight,
    logitScale: input.logitScale ?? defaults.logitScale,
    residual: input.residual ?? defaults.residual,
    matchAfterPreprocessing: input.matchAfterPreprocessing ?? true,
    explicitDerivatives: input.explicitDerivatives ?? true,
    spectralNorm: input.spectralNorm ?? defaults.spectralNorm,
    workers: input.workers ?? 1,
    optimizer: input.optimizer ?? (architecture === 'glow' ? 'adam' : 'rmsprop'),
    microbatchSize: 0,
  };
  const batchSize = config.batchSize;
  if (input.microbatchSize !== undefined) {
    config.microbatchSize = input.microbatchSize;
  } else {
    const glowDefault = architecture === 'glow' ? GLOW_MICROBATCH_SIZES[objective] : undefined;
    config.microbatchSize = Number.isInteger(batchSize) && glowDefault !== undefined ? Math.min(glowDefault, batchSize) : batchSize;
  }
  if (architecture === 'glow') {
    config.glowBlockSize = input.glowBlockSize ?? 16;
    config.glowWidth = input.glowWidth ?? 512;
  } else {
    for (const option of ['glowBlockSize', 'glowWidth'] as const) {
      if (input[option] !== undefined) {
        throw new RangeError(
          `training config: ${option} configures the Glow model, but architecture is "${architecture}"; remove ${option} or use architecture "glow"`,
        );
      }
    }
  }
  if (dataset === 'cifar10' || input.cifarDirectory !== undefined) {
    config.cifarDirectory = input.cifarDirectory ?? 'datasets/cifar-10-batches-bin';
  }

  checkValues(config);
  return config;
}

function checkName<T extends string>(option: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new RangeError(
      `training config: unknown ${option} ${JSON.stringify(value)}; use one of ${allowed.map((a) => `"${a}"`).join(', ')}`,
    );
  }
  return value as T;
}

function resolveImageShape(
  dataset: DatasetName,
  architecture: ArchitectureName,
  shape: [number, number, number] | undefined,
): [number, number, number] {
  if (shape !== undefined) {
    const valid = Array.isArray(shape) && shape.length === 3 && shape.every((n) => Number.isInteger(n) && n >= 1);
    if (!valid) {
      throw new RangeError(
        `training config: imageShape must be [H, W, C] with three positive integers, received ${JSON.stringify(shape)}`,
      );
    }
  }
  let resolved: [number, number, number];
  if (dataset === 'synthetic') {
    if (shape === undefined) {
      throw new RangeError('training config: dataset "synthetic" needs imageShape [H, W, C], for example [28, 28, 1]; add it');
    }
    resolved = [shape[0], shape[1], shape[2]];
  } else {
    const fixed = DATASET_SHAPES[dataset];
    if (shape !== undefined && !shape.every((n, i) => n === fixed[i])) {
      throw new RangeError(
        `training config: dataset "${dataset}" has images of shape [${fixed.join(', ')}], but imageShape is [${shape.join(', ')}]; ` +
          'remove imageShape, or use dataset "synthetic" for other shapes',
      );
    }
    resolved = [fixed[0], fixed[1], fixed[2]];
  }
  if (architecture === 'cnn' && (resolved[0] % CNN_SPATIAL_DIVISOR !== 0 || resolved[1] % CNN_SPATIAL_DIVISOR !== 0)) {
    throw new RangeError(
      `training config: architecture "cnn" squeezes twice, so H and W must be multiples of ${CNN_SPATIAL_DIVISOR}, ` +
        `but imageShape is [${resolved.join(', ')}]; choose such a shape or architecture "fc"`,
    );
  }
  if (architecture === 'glow' && (resolved[0] % GLOW_SPATIAL_DIVISOR !== 0 || resolved[1] % GLOW_SPATIAL_DIVISOR !== 0)) {
    throw new RangeError(
      `training config: architecture "glow" squeezes once in each of its 2 blocks, so H and W must be multiples of ${GLOW_SPATIAL_DIVISOR}, ` +
        `but imageShape is [${resolved.join(', ')}]; choose such a shape`,
    );
  }
  return resolved;
}

/**
 * Largest memory, in bytes, that the dense weights of an FC model with their optimiser and EMA
 * copies may need (4 float32 D×D matrices per layer). A bound on input size, not a promise that
 * smaller models fit: 16 GiB allows D ≈ 32,768 at depth 2.
 */
const FC_WEIGHT_BYTES_LIMIT = 16 * 2 ** 30;

/** Rejects an FC model whose D×D weights could not be allocated, before anything is allocated. */
function checkFcSize(config: TrainingConfig): void {
  if (config.architecture !== 'fc') return;
  const dimension = config.imageShape[0] * config.imageShape[1] * config.imageShape[2];
  const bytes = 4 * 4 * config.depth * dimension * dimension;
  if (bytes > FC_WEIGHT_BYTES_LIMIT) {
    throw new RangeError(
      `training config: an FC model with D = ${dimension} and depth ${config.depth} needs about ${(bytes / 2 ** 30).toFixed(0)} GiB ` +
        `for its D×D weights with their optimiser and EMA copies, above the ${FC_WEIGHT_BYTES_LIMIT / 2 ** 30} GiB limit; ` +
        'use a smaller imageShape or depth',
    );
  }
}

function checkValues(config: TrainingConfig): void {
  const integerAtLeast = (option: keyof TrainingConfig, minimum: number): void => {
    const value = config[option] as number;
    if (!Number.isInteger(value) || value < minimum) {
      throw new RangeError(`training config: ${option} must be an integer ≥ ${minimum}, received ${JSON.stringify(value)}`);
    }
  };
  const positive = (option: keyof TrainingConfig): void => {
    const value = config[option] as number;
    if (typeof value !== 'number' || !(Number.isFinite(value) && value > 0)) {
      throw new RangeError(`training config: ${option} must be a finite number > 0, received ${JSON.stringify(value)}`);
    }
  };
  const nonNegative = (option: keyof TrainingConfig): void => {
    const value = config[option] as number;
    if (typeof value !== 'number' || !(Number.isFinite(value) && value >= 0)) {
      throw new RangeError(`training config: ${option} must be a finite number ≥ 0, received ${JSON.stringify(value)}`);
    }
  };
  const boolean = (option: keyof TrainingConfig): void => {
    if (typeof config[option] !== 'boolean') {
      throw new RangeError(`training config: ${option} must be true or false, received ${JSON.stringify(config[option])}`);
    }
  };

  integerAtLeast('depth', 1);
  integerAtLeast('batchSize', 1);
  integerAtLeast('milestones', 1);
  integerAtLeast('slices', 1);
  if (!Number.isSafeInteger(config.seed) || config.seed < 0) {
    throw new RangeError(`training config: seed must be a non-negative safe integer, received ${JSON.stringify(config.seed)}`);
  }
  positive('learningRate');
  positive('sigma');
  positive('epsilon');
  positive('logitScale');
  nonNegative('weightDecay');
  nonNegative('energyWeight');
  if (typeof config.decay !== 'number' || !(config.decay > 0 && config.decay <= 1)) {
    throw new RangeError(`training config: decay (γ per epoch) must lie in (0, 1], received ${JSON.stringify(config.decay)}; use 1 for a constant rate`);
  }
  if (config.gradientClip !== null && (typeof config.gradientClip !== 'number' || !(Number.isFinite(config.gradientClip) && config.gradientClip > 0))) {
    throw new RangeError(
      `training config: gradientClip must be a finite number > 0 or null, received ${JSON.stringify(config.gradientClip)}; use null to turn clipping off`,
    );
  }
  if (config.emaDecay !== null && (typeof config.emaDecay !== 'number' || !(config.emaDecay >= 0 && config.emaDecay < 1))) {
    throw new RangeError(
      `training config: emaDecay must lie in [0, 1) or be null, received ${JSON.stringify(config.emaDecay)}; use null to evaluate the raw weights`,
    );
  }
  boolean('residual');
  boolean('matchAfterPreprocessing');
  boolean('explicitDerivatives');
  boolean('spectralNorm');

  if (config.dataset !== 'synthetic') {
    const trainSize = TRAIN_SIZES[config.dataset];
    if (config.batchSize > trainSize) {
      throw new RangeError(
        `training config: batchSize ${config.batchSize} exceeds the ${trainSize} training images of "${config.dataset}"; use at most ${trainSize}`,
      );
    }
  }
  if (config.cifarDirectory !== undefined && (typeof config.cifarDirectory !== 'string' || config.cifarDirectory === '')) {
    throw new RangeError(`training config: cifarDirectory must be a non-empty folder path, received ${JSON.stringify(config.cifarDirectory)}`);
  }
  if (config.workers !== 1 && config.workers !== 2) {
    throw new RangeError(
      `training config: workers must be 1 (gradient on the calling thread) or 2 (batch split over two worker threads), ` +
        `received ${JSON.stringify(config.workers)}`,
    );
  }
  if (!OPTIMIZER_NAMES.includes(config.optimizer)) {
    throw new RangeError(`training config: unknown optimizer ${JSON.stringify(config.optimizer)}; use "rmsprop" or "adam"`);
  }
  integerAtLeast('microbatchSize', 1);
  checkFcSize(config);
  if (config.microbatchSize > config.batchSize) {
    throw new RangeError(
      `training config: microbatchSize ${config.microbatchSize} exceeds batchSize ${config.batchSize}; use at most ${config.batchSize}, or leave it out for the whole batch`,
    );
  }
  if (config.workers === 2 && config.microbatchSize < config.batchSize) {
    throw new RangeError(
      `training config: workers 2 cannot be combined with microbatchSize ${config.microbatchSize} < batchSize ${config.batchSize}; ` +
        'set workers to 1, or microbatchSize to the batch size',
    );
  }
  if (config.architecture === 'glow') checkGlow(config);
  if (config.workers === 2 && config.spectralNorm) {
    throw new RangeError(
      'training config: workers 2 cannot be combined with spectralNorm true, because every worker would advance its own ' +
        'power-iteration vectors during the step; set workers to 1 or spectralNorm to false',
    );
  }
  if (config.spectralNorm && config.architecture !== 'cnn') {
    throw new RangeError(
      `training config: spectralNorm normalises convolutions, but architecture "${config.architecture}" has none; ` +
        'set spectralNorm to false or leave it out, or use architecture "cnn"',
    );
  }
  if (!config.matchAfterPreprocessing && INPUT_PERTURBING_OBJECTIVES.includes(config.objective)) {
    throw new RangeError(
      `training config: objective "${config.objective}" perturbs the model input with noise, and with matchAfterPreprocessing false ` +
        'that input is the dequantised pixel value in [0, 256), where a perturbed value outside the range has no logit; ' +
        'set matchAfterPreprocessing to true, or use objective "ml", "sml" or "ssm"',
    );
  }
}

/** Rejects the options a Glow run does not support, naming the fix. */
function checkGlow(config: TrainingConfig): void {
  if (config.dataset === 'cifar10') {
    throw new RangeError(
      'training config: architecture "glow" has the settings of the MNIST Glow runs only; use dataset "mnist" or "synthetic", or architecture "fc" or "cnn" for CIFAR-10',
    );
  }
  if (!GLOW_OBJECTIVES.includes(config.objective)) {
    throw new RangeError(
      `training config: architecture "glow" trains with objective ${GLOW_OBJECTIVES.map((o) => `"${o}"`).join(', ')}, received "${config.objective}"; ` +
        'Glow has no tested sml or fdssm setting, so choose one of those',
    );
  }
  if (!config.matchAfterPreprocessing) {
    throw new RangeError(
      'training config: architecture "glow" initialises its ActNorm layers on preprocessed images, so matchAfterPreprocessing must be true; remove the option',
    );
  }
  if (config.workers !== 1) {
    throw new RangeError(
      `training config: architecture "glow" computes its gradient on the calling thread only, received workers ${JSON.stringify(config.workers)}; ` +
        'set workers to 1 and use microbatchSize to bound memory',
    );
  }
  for (const option of ['glowBlockSize', 'glowWidth'] as const) {
    const value = config[option];
    if (!Number.isInteger(value) || (value as number) < 1) {
      throw new RangeError(`training config: ${option} must be an integer ≥ 1, received ${JSON.stringify(value)}`);
    }
  }
}
