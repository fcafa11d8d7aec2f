/**
 * The scenario format: one JSON file in benchmarks/ describes a grid of training runs ("cells")
 * and what to measure on each. "The paper" below is EBFlow (Chao et al., "Training Energy-Based
 * Normalizing Flow with Score-Matching Objectives", NeurIPS 2023).
 *
 * A file is checked by `validateScenario` (every problem reported at once, each with its JSON
 * path) and turned into a list of cells by `resolveScenario`, which fills the paper's settings for
 * everything the file leaves out. benchmarks/scenario.schema.json publishes the same format as a
 * JSON Schema.
 */
import type { ObjectiveName } from '../objectives/objective.js';
import type { CouplingWeightInit } from '../toys/coupling-network.js';
import type { BaseDistribution } from '../toys/density.js';
import type { MultimodalConfig } from '../toys/multimodal.js';
import type { Toy2dConfig } from '../toys/train-2d.js';
import type { TrainingConfig } from '../train/session.js';

/** Version of the scenario format; part of every scenario hash. */
export const SCENARIO_FORMAT_VERSION = 1;

/**
 * Data sets a scenario may name: the image sets of `TrainingConfig`, the 2-D toy sets of the
 * paper's Table 1 and the 10-D multimodal set of its appendix A5 (Figure A4).
 */
export const SCENARIO_DATASETS = ['mnist', 'cifar10', 'synthetic', 'sine', 'swirl', 'checkerboard', 'multimodal10'] as const;
export type ScenarioDataset = (typeof SCENARIO_DATASETS)[number];

/** The 2-D toy data sets of the paper's Table 1; only the `coupling2d` architecture takes them. */
export const TOY_DATASETS: readonly ScenarioDataset[] = ['sine', 'swirl', 'checkerboard'];

/** The 10-D multimodal data set of the paper's appendix A5; only the `linear-*` architectures take it. */
export const MULTIMODAL_DATASETS: readonly ScenarioDataset[] = ['multimodal10'];

/**
 * Architectures a scenario may name. `coupling2d` is the 2-D toy flow (src/toys/coupling-flow.ts);
 * `linear-<mask>` is the 10-D linear network (src/toys/linear-net.ts) with full, lower-triangular,
 * upper-triangular or LU-parameterised linear layers (the authors' mask types full, tril, triu and
 * trilu). Cells of an architecture that is not built yet are skipped.
 */
export const SCENARIO_ARCHITECTURES = ['fc', 'cnn', 'glow', 'coupling2d', 'linear-full', 'linear-lower', 'linear-upper', 'linear-lu'] as const;
export type ScenarioArchitecture = (typeof SCENARIO_ARCHITECTURES)[number];

/** The architectures of the multimodal10 experiment, one per linear-layer mask type. */
export const LINEAR_ARCHITECTURES: readonly ScenarioArchitecture[] = ['linear-full', 'linear-lower', 'linear-upper', 'linear-lu'];

/**
 * Architectures with no model in this code base yet, and why. Their cells resolve to no training
 * configuration and the runner records them as skipped with this reason.
 */
export const UNBUILT_ARCHITECTURES: Readonly<Partial<Record<ScenarioArchitecture, string>>> = {
};

/**
 * The three kinds of scenario, decided by the data sets: image cells train through
 * `TrainingSession`, toy cells through the loops of src/toys. One scenario contains one kind.
 */
export type ScenarioFamily = 'image' | 'toy2d' | 'multimodal10';

/** Returns the family of a data set. */
export function familyOfDataset(dataset: ScenarioDataset): ScenarioFamily {
  if (TOY_DATASETS.includes(dataset)) return 'toy2d';
  if (MULTIMODAL_DATASETS.includes(dataset)) return 'multimodal10';
  return 'image';
}

/** Returns the family an architecture belongs to. */
export function familyOfArchitecture(architecture: ScenarioArchitecture): ScenarioFamily {
  if (architecture === 'coupling2d') return 'toy2d';
  if (LINEAR_ARCHITECTURES.includes(architecture)) return 'multimodal10';
  return 'image';
}

/** Image shape [H, W, C] of the fixed-shape data sets. */
export const DATASET_IMAGE_SHAPES: Readonly<Partial<Record<ScenarioDataset, [number, number, number]>>> = {
  mnist: [28, 28, 1],
  cifar10: [32, 32, 3],
};

/** Dimension D of each 2-D toy data set's samples. */
export const TOY_DIMENSION = 2;

/** Dimension D of the multimodal10 samples. */
export const MULTIMODAL_DIMENSION = 10;

/**
 * The CNN squeezes twice (space-to-depth by 2 each time), so its image side must be a multiple
 * of 4.
 */
export const CNN_SIDE_MULTIPLE = 4;

/**
 * Settings a scenario may override: keys of `TrainingConfig` for image cells and of the toy
 * configurations for toy cells. The grid axes (shape, depth, batch, seed) are not among them.
 */
export const OVERRIDE_KEYS = [
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
  'cifarDirectory',
  'spectralNorm',
  'workers',
  'optimizer',
  'microbatchSize',
  'base',
  'blocks',
  'hidden',
  'noiseStd',
  'networkInit',
  'chunkRows',
  'evaluationPoints',
  'trainPoints',
  'testPoints',
  'dataSeed',
] as const;
export type OverrideKey = (typeof OVERRIDE_KEYS)[number];

/** The override keys each family accepts; validation rejects the others with the family named. */
export const FAMILY_OVERRIDE_KEYS: Readonly<Record<ScenarioFamily, readonly OverrideKey[]>> = {
  image: [
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
    'cifarDirectory',
    'spectralNorm',
    'workers',
    'optimizer',
    'microbatchSize',
  ],
  toy2d: [
    'learningRate',
    'gradientClip',
    'emaDecay',
    'epsilon',
    'base',
    'blocks',
    'hidden',
    'noiseStd',
    'networkInit',
    'chunkRows',
    'evaluationPoints',
    'trainPoints',
    'testPoints',
    'dataSeed',
  ],
  multimodal10: ['learningRate', 'gradientClip', 'base', 'blocks', 'evaluationPoints', 'trainPoints', 'testPoints', 'dataSeed'],
};

/** Settings of the toy cells (src/toys) a scenario may override; see `Toy2dConfig` and `MultimodalConfig`. */
export interface ToyOverrides {
  /** Base distribution of ML training, the metrics and the heat-map: 'gaussian' (this project) or 'laplace' (the authors' evaluation). */
  base?: BaseDistribution;
  /** Flow blocks (coupling blocks in 2-D, linear stages in 10-D). */
  blocks?: number;
  /** Hidden width of the couplings' networks (2-D only). */
  hidden?: number;
  /** std of the data perturbation and bandwidth of the KDE oracle (2-D only). */
  noiseStd?: number;
  /** Initialisation of the couplings' networks (2-D only). */
  networkInit?: CouplingWeightInit;
  /** Largest number of rows per gradient pass (2-D only). */
  chunkRows?: number;
  /** Points of the evaluation set (2-D) or of the fixed test batch (10-D). */
  evaluationPoints?: number;
  trainPoints?: number;
  testPoints?: number;
  /** Seed of the train and test points, shared by cells with different seeds. */
  dataSeed?: number;
}

export type ConfigOverrides = Partial<Pick<TrainingConfig, Exclude<OverrideKey, keyof ToyOverrides>>> & ToyOverrides;

/** The axes of the grid; every combination of their values is one cell. */
export interface ScenarioGrid {
  datasets: ScenarioDataset[];
  architectures: ScenarioArchitecture[];
  objectives: ObjectiveName[];
  /** Image side n (images n × n × C); excludes `dimensions`. */
  imageSides?: number[];
  /** Channel counts C for `imageSides` or `dimensions`; default: the data set's channels, or 1. */
  channels?: number[];
  /** Explicit D (fc only unless D = C·n² with n a multiple of 4); excludes `imageSides`. */
  dimensions?: number[];
  /** Dense-layer counts L of the fc architecture. */
  depths?: number[];
  batchSizes?: number[];
  seeds?: number[];
}

/** A named set of overrides; each variant is one more grid axis value. */
export interface ScenarioVariant {
  name: string;
  overrides: ConfigOverrides;
}

export interface RuntimeMeasure {
  kind: 'runtime';
  /** Iterations run before timing starts (excluded from the samples). */
  warmupIterations: number;
  /** Timed iterations. */
  iterations: number;
  /** Stop timing once the timed iterations add up to this many seconds (at least one is timed); null for no cap. */
  maxSeconds: number | null;
}

/** How long a train cell trains: exactly one of the three. */
export type TrainBudget = { iterations: number } | { epochs: number } | { seconds: number };

/** When periodic evaluations run: every k optimiser updates or every s seconds of training time. */
export type EvaluationEvery = { iterations: number } | { seconds: number };

export interface EvaluationSchedule {
  every: EvaluationEvery;
  split: 'validation' | 'test';
  /** Evaluate on at most this many images; null for the whole split. */
  maxImages: number | null;
  /** Also evaluate before the first iteration (step 0). */
  atStart: boolean;
}

export interface FinalEvaluation {
  split: 'validation' | 'test';
  maxImages: number | null;
}

export interface TrainMeasure {
  kind: 'train';
  budget: TrainBudget;
  /**
   * Iterations at the start of each cell that train and count toward the budget but are left out
   * of the timing samples. Toy cells only; image train cells time every iteration (0).
   */
  warmupIterations: number;
  /** Periodic evaluations, or null for none. */
  evaluation: EvaluationSchedule | null;
  /** The evaluation after the last iteration, or null to skip it. */
  final: FinalEvaluation | null;
}

export type Measure = RuntimeMeasure | TrainMeasure;

export interface DivergenceRule {
  /** A cell diverges when the loss is non-finite for more than this many consecutive steps. */
  maxConsecutiveNonFinite: number;
}

/** A validated scenario file with every optional field filled with its default. */
export interface Scenario {
  name: string;
  description: string;
  /** Rough wall-clock minutes on a 2-core machine, for `--list`; null when the file gives none. */
  estimatedMinutes: number | null;
  grid: ScenarioGrid;
  overrides: ConfigOverrides;
  /** Empty when the file has no variants (one implicit variant with no name). */
  variants: ScenarioVariant[];
  measure: Measure;
  divergence: DivergenceRule;
}

/** The grid point of one cell, as the scenario names it (also for cells that cannot run). */
export interface CellParameters {
  dataset: ScenarioDataset;
  architecture: ScenarioArchitecture;
  objective: ObjectiveName;
  /** D, the number of elements of one sample. */
  dimension: number;
  /** [H, W, C] of one image, or null for the toy data (2-D and multimodal10). */
  imageShape: [number, number, number] | null;
  /** Dense-layer count L for fc; null for other architectures. */
  depth: number | null;
  /** Batch size, or null when the cell cannot run and the file names none. */
  batchSize: number | null;
  seed: number;
  /** The variant's name, or null for a scenario without variants. */
  variant: string | null;
}

/** The full configuration of a toy cell, for the loops of src/toys. */
export type ToyPlan = { kind: 'toy2d'; config: Toy2dConfig } | { kind: 'multimodal10'; config: MultimodalConfig };

/** One cell of a resolved scenario. */
export interface CellPlan {
  /** Stable id, such as "mnist/fc/ssm/D784/L2/B100/seed0"; cells are sorted by it. */
  cellId: string;
  parameters: CellParameters;
  /** The full training configuration of an image cell, or null for a toy cell and a cell that cannot run (see `skipReason`). */
  config: TrainingConfig | null;
  /** The configuration of a toy cell (2-D or multimodal10); absent for image cells. */
  toy?: ToyPlan;
  /** The reason the runner records this cell as skipped without running it; null for a runnable cell. */
  skipReason: string | null;
}

/** A scenario expanded into cells, with the hash that identifies it. */
export interface ResolvedScenario {
  scenario: Scenario;
  /** The file it was read from, as given (empty for a scenario built in code). */
  file: string;
  /** sha256 (hex) of the canonical JSON of `hashInput(...)`: name, measure, divergence and every cell. */
  hash: string;
  /** Every cell, sorted by cellId. */
  cells: CellPlan[];
}
