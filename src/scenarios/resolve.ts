/**
 * Expands a validated scenario into its cells and computes the scenario hash.
 *
 * Each image cell's training configuration comes from `resolveTrainingConfig`, which fills the
 * paper's settings for the data set, architecture and objective; the grid point and the scenario's
 * overrides are laid on top. Toy cells start from the authors' toy settings
 * (`defaultToy2dConfig`, `defaultMultimodalConfig`) in the same way. Cells of an architecture that is not built yet, or that need a
 * setting the training code does not support yet, resolve to no configuration and carry the
 * reason the runner records them as skipped.
 */
import { createHash } from 'node:crypto';

import type { Toy2dDataset } from '../toys/datasets.js';
import type { LinearNetMask } from '../toys/linear-net.js';
import { defaultMultimodalConfig, type MultimodalConfig } from '../toys/multimodal.js';
import { defaultToy2dConfig, type Toy2dConfig } from '../toys/train-2d.js';
import { resolveTrainingConfig, type TrainingConfigInput } from '../train/config.js';
import type { TrainingConfig } from '../train/session.js';
import { ProblemList, type ScenarioProblem } from './problems.js';
import {
  DATASET_IMAGE_SHAPES,
  familyOfDataset,
  MULTIMODAL_DIMENSION,
  SCENARIO_FORMAT_VERSION,
  TOY_DIMENSION,
  UNBUILT_ARCHITECTURES,
  type CellParameters,
  type CellPlan,
  type ConfigOverrides,
  type ResolvedScenario,
  type Scenario,
  type ScenarioDataset,
  type ScenarioVariant,
  type ToyPlan,
} from './scenario.js';

/** The largest grid a scenario may expand to; a typo such as an extra zero should not plan a year of runs. */
export const MAX_CELLS = 10_000;

/** A function with the contract of `resolveTrainingConfig`; tests may pass their own. */
export type ConfigResolver = (input: TrainingConfigInput) => TrainingConfig;

export interface ResolutionResult {
  resolved?: ResolvedScenario;
  problems: ScenarioProblem[];
}

/**
 * Marks errors of `resolveTrainingConfig` that mean "valid, but not implemented yet" rather than
 * "impossible": such a cell is skipped with the error as reason instead of rejecting the file.
 * NOTE: the config module has no error class for this, so the phrase "not supported yet" of its
 * messages is the signal.
 */
export function isNotSupportedYet(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return error.name === 'UnsupportedConfigError' || /not (supported|available) yet/i.test(error.message);
}

/**
 * Expands `scenario` into sorted cells and hashes it. O(cells).
 *
 * Plan:
 * 1. Enumerate every grid point (data set × architecture × shape × depth × batch × seed ×
 *    objective × variant).
 * 2. Resolve each runnable point with `resolveConfig`; collect every failure as a problem.
 * 3. Sort by cell id, reject duplicate ids, and hash.
 */
export function resolveScenario(
  scenario: Scenario,
  file = '',
  resolveConfig: ConfigResolver = resolveTrainingConfig,
): ResolutionResult {
  const problems = new ProblemList();
  const cells: CellPlan[] = [];

  // 1. Grid points.
  const points = enumeratePoints(scenario);
  if (points.length > MAX_CELLS) {
    problems.add('$.grid', `${points.length} cells`, `at most ${MAX_CELLS} cells`, 'shrink the grid or split it into several scenarios');
    return { problems: problems.problems };
  }

  // 2. Configurations.
  for (const point of points) {
    cells.push(resolveCell(point, scenario, resolveConfig, problems));
  }

  // 3. Order, uniqueness, hash.
  cells.sort((a, b) => compareIds(a.cellId, b.cellId));
  for (let i = 1; i < cells.length; i++) {
    if (cells[i].cellId === cells[i - 1].cellId) {
      problems.add('$.grid', cells[i].cellId, 'distinct cells', 'remove the repeated grid value that produces this cell twice');
    }
  }
  if (!problems.empty) return { problems: problems.problems };
  const partial = { scenario, file, cells };
  return { resolved: { ...partial, hash: hashScenario(partial) }, problems: [] };
}

/** Orders cell ids by UTF-16 code units, the same on every machine and locale. */
export function compareIds(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

interface GridPoint {
  parameters: CellParameters;
  variant: ScenarioVariant | null;
}

function enumeratePoints(scenario: Scenario): GridPoint[] {
  const { grid } = scenario;
  const variants: (ScenarioVariant | null)[] = scenario.variants.length > 0 ? scenario.variants : [null];
  const points: GridPoint[] = [];
  for (const dataset of grid.datasets) {
    for (const architecture of grid.architectures) {
      for (const shape of shapesFor(dataset, scenario)) {
        const depths: (number | null)[] = architecture === 'fc' ? (grid.depths ?? [null]) : [null];
        for (const depth of depths) {
          for (const batchSize of grid.batchSizes ?? [null]) {
            for (const seed of grid.seeds ?? [0]) {
              for (const objective of grid.objectives) {
                for (const variant of variants) {
                  points.push({
                    parameters: {
                      dataset,
                      architecture,
                      objective,
                      dimension: shape.dimension,
                      imageShape: shape.imageShape,
                      depth,
                      batchSize,
                      seed,
                      variant: variant?.name ?? null,
                    },
                    variant,
                  });
                }
              }
            }
          }
        }
      }
    }
  }
  return points;
}

interface CellShape {
  dimension: number;
  imageShape: [number, number, number] | null;
}

/**
 * Lists the sample shapes of one data set and architecture. An explicit D becomes a square image
 * [n, n, C] when D = C·n², and a one-row image [1, D/C, C] otherwise (fc only; validation
 * rejects the rest).
 */
function shapesFor(dataset: ScenarioDataset, scenario: Scenario): CellShape[] {
  const { grid } = scenario;
  const family = familyOfDataset(dataset);
  if (family === 'toy2d') return [{ dimension: TOY_DIMENSION, imageShape: null }];
  if (family === 'multimodal10') return [{ dimension: MULTIMODAL_DIMENSION, imageShape: null }];
  const fixed = DATASET_IMAGE_SHAPES[dataset];
  const channelCounts = grid.channels ?? [fixed ? fixed[2] : 1];
  const shapes: CellShape[] = [];
  if (grid.imageSides) {
    for (const side of grid.imageSides) {
      for (const channels of channelCounts) {
        shapes.push({ dimension: side * side * channels, imageShape: [side, side, channels] });
      }
    }
  } else if (grid.dimensions) {
    for (const dimension of grid.dimensions) {
      for (const channels of channelCounts) {
        const perChannel = dimension / channels;
        const side = Math.round(Math.sqrt(perChannel));
        const imageShape: [number, number, number] =
          side * side === perChannel ? [side, side, channels] : [1, perChannel, channels];
        shapes.push({ dimension, imageShape });
      }
    }
  } else if (fixed) {
    shapes.push({ dimension: fixed[0] * fixed[1] * fixed[2], imageShape: [...fixed] });
  }
  // The validator rejects synthetic data without a size, so `shapes` is never empty for a valid scenario.
  return shapes;
}

function resolveCell(point: GridPoint, scenario: Scenario, resolveConfig: ConfigResolver, problems: ProblemList): CellPlan {
  const { parameters } = point;
  if (familyOfDataset(parameters.dataset) !== 'image') return resolveToyCell(point, scenario, problems);
  const unbuilt = UNBUILT_ARCHITECTURES[parameters.architecture];
  if (unbuilt !== undefined || parameters.imageShape === null) {
    const reason = unbuilt ?? `data set "${parameters.dataset}" has no training pipeline yet`;
    return { cellId: cellIdOf(parameters), parameters, config: null, skipReason: reason };
  }

  const input: TrainingConfigInput = {
    dataset: parameters.dataset as TrainingConfig['dataset'],
    architecture: parameters.architecture as TrainingConfig['architecture'],
    objective: parameters.objective,
    imageShape: parameters.imageShape,
    seed: parameters.seed,
    ...scenario.overrides,
    ...(point.variant?.overrides ?? {}),
  };
  if (parameters.depth !== null) input.depth = parameters.depth;
  if (parameters.batchSize !== null) input.batchSize = parameters.batchSize;

  try {
    const config = resolveConfig(input);
    const resolvedParameters: CellParameters = {
      ...parameters,
      depth: parameters.architecture === 'fc' ? config.depth : null,
      batchSize: config.batchSize,
    };
    return { cellId: cellIdOf(resolvedParameters), parameters: resolvedParameters, config, skipReason: null };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (isNotSupportedYet(error)) {
      return { cellId: cellIdOf(parameters), parameters, config: null, skipReason: message };
    }
    problems.add(
      point.variant ? `$.variants[${scenario.variants.indexOf(point.variant)}]` : '$.grid',
      cellIdOf(parameters),
      'a combination the training configuration accepts',
      `change the grid or overrides so that this cell is valid: ${message}`,
    );
    return { cellId: cellIdOf(parameters), parameters, config: null, skipReason: message };
  }
}

/**
 * Resolves a toy cell: the authors' settings for its data set and objective (or mask), the grid
 * point, the budget and evaluation interval of the measure, then the overrides. Reports overrides
 * that contradict each other, with the path of the override that set them.
 */
function resolveToyCell(point: GridPoint, scenario: Scenario, problems: ProblemList): CellPlan {
  const { parameters, variant } = point;
  const { measure } = scenario;
  if (measure.kind !== 'train' || !('iterations' in measure.budget)) {
    // validateScenario rejects this; a scenario built in code may still hold it.
    problems.add('$.measure', measure, 'a train measure with an iterations budget for toy cells', 'set measure to {"kind": "train", "budget": {"iterations": n}}');
    return { cellId: cellIdOf(parameters), parameters, config: null, skipReason: 'toy cells need a train measure with an iterations budget' };
  }
  const overrides: ConfigOverrides = { ...scenario.overrides, ...(variant?.overrides ?? {}) };
  const pathOf = (key: keyof ConfigOverrides): string =>
    variant && variant.overrides[key] !== undefined ? `$.variants[${scenario.variants.indexOf(variant)}].overrides.${key}` : `$.overrides.${key}`;
  const iterations = measure.budget.iterations;
  const evaluateEvery = measure.evaluation && 'iterations' in measure.evaluation.every ? measure.evaluation.every.iterations : 0;

  let toy: ToyPlan;
  if (familyOfDataset(parameters.dataset) === 'toy2d') {
    const defaults = defaultToy2dConfig(parameters.dataset as Toy2dDataset, parameters.objective);
    const config: Toy2dConfig = {
      ...defaults,
      iterations,
      batchSize: parameters.batchSize ?? defaults.batchSize,
      seed: parameters.seed,
      evaluateEvery,
      learningRate: overrides.learningRate ?? defaults.learningRate,
      // The toy loop turns clipping off with 0 where scenarios write null.
      gradientClip: overrides.gradientClip === undefined ? defaults.gradientClip : (overrides.gradientClip ?? 0),
      emaDecay: overrides.emaDecay === undefined ? defaults.emaDecay : overrides.emaDecay,
      epsilon: overrides.epsilon ?? defaults.epsilon,
      base: overrides.base ?? defaults.base,
      blocks: overrides.blocks ?? defaults.blocks,
      hidden: overrides.hidden ?? defaults.hidden,
      noiseStd: overrides.noiseStd ?? defaults.noiseStd,
      networkInit: overrides.networkInit ?? defaults.networkInit,
      chunkRows: overrides.chunkRows ?? defaults.chunkRows,
      evaluationPoints: overrides.evaluationPoints ?? defaults.evaluationPoints,
      trainPoints: overrides.trainPoints ?? defaults.trainPoints,
      testPoints: overrides.testPoints ?? defaults.testPoints,
      dataSeed: overrides.dataSeed ?? defaults.dataSeed,
    };
    toy = { kind: 'toy2d', config };
  } else {
    const mask = parameters.architecture.replace(/^linear-/, '') as LinearNetMask;
    const defaults = defaultMultimodalConfig(mask);
    const config: MultimodalConfig = {
      ...defaults,
      iterations,
      batchSize: parameters.batchSize ?? defaults.batchSize,
      seed: parameters.seed,
      evaluateEvery,
      learningRate: overrides.learningRate ?? defaults.learningRate,
      gradientClip: overrides.gradientClip === undefined ? defaults.gradientClip : (overrides.gradientClip ?? 0),
      base: overrides.base ?? defaults.base,
      blocks: overrides.blocks ?? defaults.blocks,
      evaluationPoints: overrides.evaluationPoints ?? defaults.evaluationPoints,
      trainPoints: overrides.trainPoints ?? defaults.trainPoints,
      testPoints: overrides.testPoints ?? defaults.testPoints,
      dataSeed: overrides.dataSeed ?? defaults.dataSeed,
    };
    toy = { kind: 'multimodal10', config };
  }

  const { evaluationPoints, testPoints } = toy.config;
  if (evaluationPoints > testPoints) {
    const key = overrides.evaluationPoints !== undefined ? 'evaluationPoints' : 'testPoints';
    problems.add(
      pathOf(key),
      overrides[key],
      `evaluationPoints ≤ testPoints (here ${evaluationPoints} > ${testPoints}): the evaluation points are drawn from the test split`,
      `lower evaluationPoints to ${testPoints} or raise testPoints to ${evaluationPoints}`,
    );
  }
  const resolvedParameters: CellParameters = { ...parameters, batchSize: toy.config.batchSize };
  return { cellId: cellIdOf(resolvedParameters), parameters: resolvedParameters, config: null, toy, skipReason: null };
}

/**
 * Builds a cell id from its grid point: data set, architecture, objective, then D (with "c<C>"
 * for more than one channel, and "-<H>x<W>" when the image is not square), "L<depth>" for fc,
 * "B<batch>", "seed<seed>" and the variant name, joined by "/".
 */
export function cellIdOf(parameters: CellParameters): string {
  const parts: string[] = [parameters.dataset, parameters.architecture, parameters.objective];
  let size = `D${parameters.dimension}`;
  const shape = parameters.imageShape;
  if (shape && shape[2] !== 1) size += `c${shape[2]}`;
  if (shape && shape[0] !== shape[1]) size += `-${shape[0]}x${shape[1]}`;
  parts.push(size);
  if (parameters.depth !== null) parts.push(`L${parameters.depth}`);
  if (parameters.batchSize !== null) parts.push(`B${parameters.batchSize}`);
  parts.push(`seed${parameters.seed}`);
  if (parameters.variant !== null) parts.push(parameters.variant);
  return parts.join('/');
}

/**
 * Returns what the scenario hash covers: the format version, the name, the measure, the
 * divergence rule and every cell (id, configuration, toy configuration, skip reason). The
 * description and the duration estimate are left out, so editing them keeps old results
 * comparable. A train measure's `warmupIterations` of 0 and the missing `toy` of an image cell
 * are left out, so scenarios written before these fields existed keep their hash.
 */
export function hashInput(resolved: Pick<ResolvedScenario, 'scenario' | 'cells'>): unknown {
  const { scenario, cells } = resolved;
  const measure =
    scenario.measure.kind === 'train' && scenario.measure.warmupIterations === 0
      ? { ...scenario.measure, warmupIterations: undefined }
      : scenario.measure;
  return {
    formatVersion: SCENARIO_FORMAT_VERSION,
    name: scenario.name,
    measure,
    divergence: scenario.divergence,
    cells: cells.map((cell) => ({ cellId: cell.cellId, config: cell.config, toy: cell.toy, skipReason: cell.skipReason })),
  };
}

/** sha256 (hex) of the canonical JSON of `hashInput`. O(cells). */
export function hashScenario(resolved: Pick<ResolvedScenario, 'scenario' | 'cells'>): string {
  return createHash('sha256').update(canonicalJson(hashInput(resolved))).digest('hex');
}

/** JSON with object keys sorted at every level and no whitespace, so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item === undefined ? null : item)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => compareIds(a, b));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}
