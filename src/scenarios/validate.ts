/**
 * Checks a parsed scenario file against the format of `scenario.ts` and fills its defaults.
 *
 * Every problem is collected before returning, each with its JSON path, the value found, what is
 * allowed and a fix: unknown keys (with the closest known key), wrong types and ranges, empty
 * grids, unknown objectives, data sets or architectures, and impossible combinations such as a
 * CNN whose D is not a square image of the given channels.
 */
import { OBJECTIVE_NAMES } from '../objectives/objective.js';
import {
  readArray,
  readBoolean,
  readChoice,
  readChoiceArray,
  readNumber,
  readNumberArray,
  readObject,
  readString,
  requireKey,
  type JsonObject,
} from './fields.js';
import { ProblemList, quoteList, type ScenarioProblem } from './problems.js';
import { COUPLING_WEIGHT_INITS } from '../toys/coupling-network.js';
import { BASE_DISTRIBUTIONS } from '../toys/density.js';
import {
  CNN_SIDE_MULTIPLE,
  DATASET_IMAGE_SHAPES,
  FAMILY_OVERRIDE_KEYS,
  familyOfArchitecture,
  familyOfDataset,
  OVERRIDE_KEYS,
  SCENARIO_ARCHITECTURES,
  SCENARIO_DATASETS,
  type ConfigOverrides,
  type ScenarioFamily,
  type DivergenceRule,
  type EvaluationSchedule,
  type FinalEvaluation,
  type Measure,
  type Scenario,
  type ScenarioGrid,
  type ScenarioVariant,
  type TrainBudget,
} from './scenario.js';

export const ROOT_KEYS = [
  '$schema',
  'name',
  'description',
  'estimatedMinutes',
  'grid',
  'overrides',
  'variants',
  'measure',
  'divergence',
] as const;
export const GRID_KEYS = [
  'datasets',
  'architectures',
  'objectives',
  'imageSides',
  'channels',
  'dimensions',
  'depths',
  'batchSizes',
  'seeds',
] as const;
export const VARIANT_KEYS = ['name', 'overrides'] as const;
export const RUNTIME_MEASURE_KEYS = ['kind', 'warmupIterations', 'iterations', 'maxSeconds'] as const;
export const TRAIN_MEASURE_KEYS = ['kind', 'budget', 'warmupIterations', 'evaluation', 'final'] as const;
export const BUDGET_KEYS = ['iterations', 'epochs', 'seconds'] as const;
export const EVALUATION_KEYS = ['every', 'split', 'maxImages', 'atStart'] as const;
export const EVERY_KEYS = ['iterations', 'seconds'] as const;
export const FINAL_KEYS = ['split', 'maxImages'] as const;
export const DIVERGENCE_KEYS = ['maxConsecutiveNonFinite'] as const;

/** Defaults of the optional fields. */
export const SCENARIO_DEFAULTS = {
  seeds: [0],
  runtimeWarmupIterations: 3,
  runtimeIterations: 20,
  evaluationSplit: 'validation' as const,
  finalSplit: 'test' as const,
  maxConsecutiveNonFinite: 5,
};

/** Scenario names become folder names under results/, so they are restricted to a safe alphabet. */
export const SCENARIO_NAME_PATTERN = /^[a-z0-9][a-z0-9-]*$/;
/** Variant names become part of cell ids and file names. */
export const VARIANT_NAME_PATTERN = /^[a-z0-9][a-z0-9-]*$/;

const SPLITS = ['validation', 'test'] as const;
const POSITIVE_INTEGER = { integer: true, min: 1 };

export interface ValidationResult {
  /** The scenario with defaults filled; absent when there are problems. */
  scenario?: Scenario;
  problems: ScenarioProblem[];
}

/**
 * Checks a parsed scenario document and fills its defaults.
 *
 * Plan:
 * 1. Read every top-level field, reporting problems and going on.
 * 2. Check the grid's combinations (data set × architecture × shape × depth) and the keys, objectives
 *    and measures the scenario's family allows.
 * 3. Return the scenario only when no problem was found.
 */
export function validateScenario(document: unknown): ValidationResult {
  const problems = new ProblemList();
  const root = readObject(problems, '$', document, ROOT_KEYS, 'a scenario');
  if (!root) return { problems: problems.problems };

  // 1. Fields.
  const name = requireKey(problems, '$', root, 'name', 'a scenario name')
    ? readString(problems, '$.name', root.name, 'lower-case letters, digits and "-" (it names the results folder)', SCENARIO_NAME_PATTERN)
    : undefined;
  const description = requireKey(problems, '$', root, 'description', 'a description')
    ? readString(problems, '$.description', root.description, 'a non-empty text naming the paper table or figure and the rough duration')
    : undefined;
  const estimatedMinutes =
    root.estimatedMinutes === undefined ? null : readNumber(problems, '$.estimatedMinutes', root.estimatedMinutes, { above: 0 });
  if (root.$schema !== undefined) readString(problems, '$.$schema', root.$schema, 'a path or URL of the JSON Schema');

  const grid = requireKey(problems, '$', root, 'grid', 'the grid object') ? readGrid(problems, root.grid) : undefined;
  const overrides = root.overrides === undefined ? {} : readOverrides(problems, '$.overrides', root.overrides);
  const variants = root.variants === undefined ? [] : readVariants(problems, root.variants);
  const measure = requireKey(problems, '$', root, 'measure', 'the measure object') ? readMeasure(problems, root.measure) : undefined;
  const divergence = root.divergence === undefined ? { maxConsecutiveNonFinite: SCENARIO_DEFAULTS.maxConsecutiveNonFinite } : readDivergence(problems, root.divergence);

  // 2. Combinations, and the rules of the scenario's family (image, 2-D toy or multimodal10).
  if (grid) {
    const family = checkFamilies(problems, grid);
    checkCombinations(problems, grid);
    if (family !== null) checkFamilyRules(problems, family, { grid, root, overrides, variants, measure });
  }

  // 3. Result.
  if (
    !problems.empty ||
    name === undefined ||
    description === undefined ||
    estimatedMinutes === undefined ||
    grid === undefined ||
    overrides === undefined ||
    variants === undefined ||
    measure === undefined ||
    divergence === undefined
  ) {
    return { problems: problems.problems };
  }
  return {
    scenario: { name, description, estimatedMinutes, grid, overrides, variants, measure, divergence },
    problems: [],
  };
}

function readGrid(problems: ProblemList, value: unknown): ScenarioGrid | undefined {
  const object = readObject(problems, '$.grid', value, GRID_KEYS, 'the grid');
  if (!object) return undefined;
  const objectiveNames = OBJECTIVE_NAMES as readonly (typeof OBJECTIVE_NAMES)[number][];

  const datasets = requireKey(problems, '$.grid', object, 'datasets', `an array of ${quoteList(SCENARIO_DATASETS)}`)
    ? readChoiceArray(problems, '$.grid.datasets', object.datasets, SCENARIO_DATASETS, 'data sets')
    : undefined;
  const architectures = requireKey(problems, '$.grid', object, 'architectures', `an array of ${quoteList(SCENARIO_ARCHITECTURES)}`)
    ? readChoiceArray(problems, '$.grid.architectures', object.architectures, SCENARIO_ARCHITECTURES, 'architectures')
    : undefined;
  const objectives = requireKey(problems, '$.grid', object, 'objectives', `an array of ${quoteList(objectiveNames)}`)
    ? readChoiceArray(problems, '$.grid.objectives', object.objectives, objectiveNames, 'objectives')
    : undefined;

  const optional = (key: (typeof GRID_KEYS)[number], rule: Parameters<typeof readNumberArray>[3]): number[] | undefined | null =>
    object[key] === undefined ? null : readNumberArray(problems, `$.grid.${key}`, object[key], rule);
  const imageSides = optional('imageSides', { integer: true, min: 2 });
  const channels = optional('channels', POSITIVE_INTEGER);
  const dimensions = optional('dimensions', { integer: true, min: 2 });
  const depths = optional('depths', POSITIVE_INTEGER);
  const batchSizes = optional('batchSizes', POSITIVE_INTEGER);
  const seeds = optional('seeds', { integer: true, min: 0 });

  if (imageSides && dimensions) {
    problems.add('$.grid.dimensions', object.dimensions, 'either imageSides or dimensions, not both', 'remove one of the two keys');
  }
  if (
    datasets === undefined ||
    architectures === undefined ||
    objectives === undefined ||
    imageSides === undefined ||
    channels === undefined ||
    dimensions === undefined ||
    depths === undefined ||
    batchSizes === undefined ||
    seeds === undefined
  ) {
    return undefined;
  }
  const grid: ScenarioGrid = { datasets, architectures, objectives, seeds: seeds ?? [...SCENARIO_DEFAULTS.seeds] };
  if (imageSides) grid.imageSides = imageSides;
  if (channels) grid.channels = channels;
  if (dimensions) grid.dimensions = dimensions;
  if (depths) grid.depths = depths;
  if (batchSizes) grid.batchSizes = batchSizes;
  return grid;
}

/** Reads a set of `TrainingConfig` overrides; every key has its own type and range. */
function readOverrides(problems: ProblemList, path: string, value: unknown): ConfigOverrides | undefined {
  const object = readObject(problems, path, value, OVERRIDE_KEYS, 'the overrides');
  if (!object) return undefined;
  const before = problems.problems.length;
  const result: ConfigOverrides = {};
  const positive = { above: 0 };
  const at = (key: string): string => `${path}.${key}`;
  for (const key of Object.keys(object)) {
    const item = object[key];
    switch (key) {
      case 'learningRate':
      case 'sigma':
      case 'epsilon':
      case 'logitScale': {
        const read = readNumber(problems, at(key), item, positive);
        if (read !== undefined) result[key] = read;
        break;
      }
      case 'decay': {
        const read = readNumber(problems, at(key), item, { above: 0, max: 1 });
        if (read !== undefined) result.decay = read;
        break;
      }
      case 'milestones':
      case 'slices': {
        const read = readNumber(problems, at(key), item, POSITIVE_INTEGER);
        if (read !== undefined) result[key] = read;
        break;
      }
      case 'weightDecay':
      case 'energyWeight': {
        const read = readNumber(problems, at(key), item, { min: 0 });
        if (read !== undefined) result[key] = read;
        break;
      }
      case 'gradientClip': {
        if (item === null) result.gradientClip = null;
        else {
          const read = readNumber(problems, at(key), item, positive);
          if (read !== undefined) result.gradientClip = read;
        }
        break;
      }
      case 'emaDecay': {
        if (item === null) result.emaDecay = null;
        else {
          const read = readNumber(problems, at(key), item, { min: 0, below: 1 });
          if (read !== undefined) result.emaDecay = read;
        }
        break;
      }
      case 'residual':
      case 'matchAfterPreprocessing':
      case 'explicitDerivatives':
      case 'spectralNorm': {
        const read = readBoolean(problems, at(key), item);
        if (read !== undefined) result[key] = read;
        break;
      }
      case 'workers': {
        const read = readNumber(problems, at(key), item, { integer: true, min: 1, max: 2 });
        if (read !== undefined) result.workers = read as 1 | 2;
        break;
      }
      case 'optimizer': {
        const read = readChoice(problems, at(key), item, ['rmsprop', 'adam'] as const, 'optimizers');
        if (read !== undefined) result.optimizer = read;
        break;
      }
      case 'microbatchSize': {
        const read = readNumber(problems, at(key), item, POSITIVE_INTEGER);
        if (read !== undefined) result.microbatchSize = read;
        break;
      }
      case 'cifarDirectory': {
        const read = readString(problems, at(key), item, 'a folder path');
        if (read !== undefined) result.cifarDirectory = read;
        break;
      }
      case 'base': {
        const read = readChoice(problems, at(key), item, BASE_DISTRIBUTIONS, 'base distributions');
        if (read !== undefined) result.base = read;
        break;
      }
      case 'networkInit': {
        const read = readChoice(problems, at(key), item, COUPLING_WEIGHT_INITS, 'initialisations');
        if (read !== undefined) result.networkInit = read;
        break;
      }
      case 'noiseStd': {
        const read = readNumber(problems, at(key), item, positive);
        if (read !== undefined) result.noiseStd = read;
        break;
      }
      case 'blocks':
      case 'hidden':
      case 'chunkRows':
      case 'evaluationPoints':
      case 'trainPoints':
      case 'testPoints': {
        const read = readNumber(problems, at(key), item, POSITIVE_INTEGER);
        if (read !== undefined) result[key] = read;
        break;
      }
      case 'dataSeed': {
        const read = readNumber(problems, at(key), item, { integer: true, min: 0 });
        if (read !== undefined) result.dataSeed = read;
        break;
      }
      default:
        // Unknown keys were reported by readObject.
        break;
    }
  }
  return problems.problems.length === before ? result : undefined;
}

function readVariants(problems: ProblemList, value: unknown): ScenarioVariant[] | undefined {
  const before = problems.problems.length;
  const variants = readArray(problems, '$.variants', value, 'variant objects', (path, item) => {
    const object = readObject(problems, path, item, VARIANT_KEYS, 'a variant');
    if (!object) return undefined;
    const name = requireKey(problems, path, object, 'name', 'a variant name')
      ? readString(problems, `${path}.name`, object.name, 'lower-case letters, digits and "-" (it is part of cell ids)', VARIANT_NAME_PATTERN)
      : undefined;
    const overrides = requireKey(problems, path, object, 'overrides', 'an overrides object')
      ? readOverrides(problems, `${path}.overrides`, object.overrides)
      : undefined;
    return name === undefined || overrides === undefined ? undefined : { name, overrides };
  });
  if (variants) {
    const names = new Set<string>();
    variants.forEach((variant, index) => {
      if (names.has(variant.name)) {
        problems.add(`$.variants[${index}].name`, variant.name, 'distinct variant names', `rename the second "${variant.name}"`);
      }
      names.add(variant.name);
    });
  }
  return problems.problems.length === before ? variants : undefined;
}

function readMeasure(problems: ProblemList, value: unknown): Measure | undefined {
  const probe = readObject(problems, '$.measure', value, [...new Set([...RUNTIME_MEASURE_KEYS, ...TRAIN_MEASURE_KEYS])], 'the measure');
  if (!probe) return undefined;
  if (!requireKey(problems, '$.measure', probe, 'kind', '"runtime" or "train"')) return undefined;
  const kind = readChoice(problems, '$.measure.kind', probe.kind, ['runtime', 'train'] as const, 'measure kinds');
  if (kind === undefined) return undefined;
  if (kind === 'runtime') return readRuntimeMeasure(problems, probe);
  return readTrainMeasure(problems, probe);
}

function rejectKeysOfOtherKind(problems: ProblemList, object: JsonObject, keys: readonly string[], kind: string): void {
  for (const key of Object.keys(object)) {
    if (!keys.includes(key) && [...RUNTIME_MEASURE_KEYS, ...TRAIN_MEASURE_KEYS].includes(key as never)) {
      problems.add(`$.measure.${key}`, object[key], `for kind "${kind}" the keys ${quoteList(keys)}`, `remove "${key}" or change measure.kind`);
    }
  }
}

function readRuntimeMeasure(problems: ProblemList, object: JsonObject): Measure | undefined {
  rejectKeysOfOtherKind(problems, object, RUNTIME_MEASURE_KEYS, 'runtime');
  const warmupIterations =
    object.warmupIterations === undefined
      ? SCENARIO_DEFAULTS.runtimeWarmupIterations
      : readNumber(problems, '$.measure.warmupIterations', object.warmupIterations, { integer: true, min: 0 });
  const iterations =
    object.iterations === undefined
      ? SCENARIO_DEFAULTS.runtimeIterations
      : readNumber(problems, '$.measure.iterations', object.iterations, POSITIVE_INTEGER);
  const maxSeconds =
    object.maxSeconds === undefined || object.maxSeconds === null
      ? null
      : readNumber(problems, '$.measure.maxSeconds', object.maxSeconds, { above: 0 });
  if (warmupIterations === undefined || iterations === undefined || maxSeconds === undefined) return undefined;
  return { kind: 'runtime', warmupIterations, iterations, maxSeconds };
}

function readTrainMeasure(problems: ProblemList, object: JsonObject): Measure | undefined {
  rejectKeysOfOtherKind(problems, object, TRAIN_MEASURE_KEYS, 'train');
  const budget = requireKey(problems, '$.measure', object, 'budget', 'a budget: {"iterations": n}, {"epochs": e} or {"seconds": s}')
    ? readBudget(problems, '$.measure.budget', object.budget, BUDGET_KEYS, 'budget')
    : undefined;
  const warmupIterations =
    object.warmupIterations === undefined ? 0 : readNumber(problems, '$.measure.warmupIterations', object.warmupIterations, { integer: true, min: 0 });
  if (budget !== undefined && warmupIterations !== undefined && 'iterations' in budget && warmupIterations >= budget.iterations) {
    problems.add(
      '$.measure.warmupIterations',
      warmupIterations,
      `fewer than the budget's ${budget.iterations} iterations (warm-up iterations count toward the budget)`,
      `use at most ${budget.iterations - 1}, or raise measure.budget.iterations`,
    );
  }
  const evaluation = object.evaluation === undefined || object.evaluation === null ? null : readEvaluation(problems, object.evaluation);
  let final: FinalEvaluation | null | undefined = { split: SCENARIO_DEFAULTS.finalSplit, maxImages: null };
  if (object.final === false || object.final === null) final = null;
  else if (object.final !== undefined) final = readFinal(problems, object.final);
  if (budget === undefined || warmupIterations === undefined || evaluation === undefined || final === undefined) return undefined;
  return { kind: 'train', budget: budget as TrainBudget, warmupIterations, evaluation, final };
}

/** Reads an object with exactly one of `keys`, a positive number (an integer for "iterations"). */
function readBudget(
  problems: ProblemList,
  path: string,
  value: unknown,
  keys: readonly string[],
  what: string,
): Record<string, number> | undefined {
  const object = readObject(problems, path, value, keys, `the ${what}`);
  if (!object) return undefined;
  const present = keys.filter((key) => object[key] !== undefined);
  if (present.length !== 1) {
    problems.add(path, value, `exactly one of ${quoteList(keys)}`, present.length === 0 ? `add one of ${quoteList(keys)}` : `keep only one of ${quoteList(present)}`);
    return undefined;
  }
  const key = present[0];
  const rule = key === 'iterations' ? POSITIVE_INTEGER : { above: 0 };
  const amount = readNumber(problems, `${path}.${key}`, object[key], rule);
  return amount === undefined ? undefined : { [key]: amount };
}

function readEvaluation(problems: ProblemList, value: unknown): EvaluationSchedule | undefined {
  const object = readObject(problems, '$.measure.evaluation', value, EVALUATION_KEYS, 'the evaluation schedule');
  if (!object) return undefined;
  const every = requireKey(problems, '$.measure.evaluation', object, 'every', '{"iterations": k} or {"seconds": s}')
    ? readBudget(problems, '$.measure.evaluation.every', object.every, EVERY_KEYS, 'evaluation interval')
    : undefined;
  const split =
    object.split === undefined ? SCENARIO_DEFAULTS.evaluationSplit : readChoice(problems, '$.measure.evaluation.split', object.split, SPLITS, 'splits');
  const maxImages =
    object.maxImages === undefined || object.maxImages === null
      ? null
      : readNumber(problems, '$.measure.evaluation.maxImages', object.maxImages, POSITIVE_INTEGER);
  const atStart = object.atStart === undefined ? false : readBoolean(problems, '$.measure.evaluation.atStart', object.atStart);
  if (every === undefined || split === undefined || maxImages === undefined || atStart === undefined) return undefined;
  return { every: every as EvaluationSchedule['every'], split, maxImages, atStart };
}

function readFinal(problems: ProblemList, value: unknown): FinalEvaluation | undefined {
  const object = readObject(problems, '$.measure.final', value, FINAL_KEYS, 'the final evaluation (or false)');
  if (!object) return undefined;
  const split = object.split === undefined ? SCENARIO_DEFAULTS.finalSplit : readChoice(problems, '$.measure.final.split', object.split, SPLITS, 'splits');
  const maxImages =
    object.maxImages === undefined || object.maxImages === null
      ? null
      : readNumber(problems, '$.measure.final.maxImages', object.maxImages, POSITIVE_INTEGER);
  if (split === undefined || maxImages === undefined) return undefined;
  return { split, maxImages };
}

function readDivergence(problems: ProblemList, value: unknown): DivergenceRule | undefined {
  const object = readObject(problems, '$.divergence', value, DIVERGENCE_KEYS, 'the divergence rule');
  if (!object) return undefined;
  const count =
    object.maxConsecutiveNonFinite === undefined
      ? SCENARIO_DEFAULTS.maxConsecutiveNonFinite
      : readNumber(problems, '$.divergence.maxConsecutiveNonFinite', object.maxConsecutiveNonFinite, { integer: true, min: 0 });
  return count === undefined ? undefined : { maxConsecutiveNonFinite: count };
}

/** Words for the data sets and architectures of each family, for problem messages. */
const FAMILY_LABELS: Readonly<Record<ScenarioFamily, string>> = {
  image: 'image',
  toy2d: '2-D toy',
  multimodal10: 'multimodal10',
};

function datasetsOf(family: ScenarioFamily): string {
  return quoteList(SCENARIO_DATASETS.filter((dataset) => familyOfDataset(dataset) === family));
}

function architecturesOf(family: ScenarioFamily): string {
  return quoteList(SCENARIO_ARCHITECTURES.filter((architecture) => familyOfArchitecture(architecture) === family));
}

/**
 * Returns the family of the grid's data sets, or null when they mix families. Reports data sets
 * of several families, and architectures that do not take the grid's data.
 */
function checkFamilies(problems: ProblemList, grid: ScenarioGrid): ScenarioFamily | null {
  const families = [...new Set(grid.datasets.map(familyOfDataset))];
  if (families.length > 1) {
    problems.add(
      '$.grid.datasets',
      grid.datasets,
      `data sets of one kind: the image sets ${datasetsOf('image')}, the 2-D toy sets ${datasetsOf('toy2d')} or ${datasetsOf('multimodal10')}`,
      'put each kind of data set in its own scenario',
    );
    return null;
  }
  const family = families[0];
  const foreign = grid.architectures.filter((architecture) => familyOfArchitecture(architecture) !== family);
  if (foreign.length === 0) return family;
  if (family === 'image') {
    const other = familyOfArchitecture(foreign[0]);
    problems.add(
      '$.grid.datasets',
      grid.datasets,
      `only the ${FAMILY_LABELS[other]} data sets ${datasetsOf(other)} with architecture "${foreign[0]}"`,
      `put ${quoteList(foreign)} and the image data sets in separate scenarios`,
    );
  } else {
    problems.add(
      '$.grid.architectures',
      grid.architectures,
      `only ${architecturesOf(family)} with the ${FAMILY_LABELS[family]} data sets ${datasetsOf(family)}`,
      `put the ${FAMILY_LABELS[family]} data sets and ${quoteList(foreign)} in separate scenarios`,
    );
  }
  return family;
}

/**
 * Reports grid combinations no cell can have: shapes for the toy data, and shapes that contradict
 * a fixed-shape data set. It also reports CNN or Glow sizes that are not square images with a side
 * divisible by 4, explicit D not divisible by C, and depths for non-fc architectures.
 */
function checkCombinations(problems: ProblemList, grid: ScenarioGrid): void {
  const hasToyData = grid.datasets.some((dataset) => familyOfDataset(dataset) !== 'image');
  if (hasToyData && (grid.imageSides || grid.dimensions || grid.channels)) {
    let shapeKey = '$.grid.channels';
    if (grid.dimensions) shapeKey = '$.grid.dimensions';
    if (grid.imageSides) shapeKey = '$.grid.imageSides';
    problems.add(
      shapeKey,
      grid.imageSides ?? grid.dimensions ?? grid.channels,
      'no shape keys for the toy data sets (D = 2 for the 2-D sets, 10 for multimodal10)',
      'remove imageSides, dimensions and channels',
    );
  }

  if (grid.depths && grid.architectures.some((architecture) => architecture !== 'fc')) {
    problems.add(
      '$.grid.depths',
      grid.depths,
      'depths only when every architecture is "fc" (the dense-layer count L; other architectures have a fixed layout)',
      'remove "depths" or move the non-fc architectures to another scenario',
    );
  }

  for (const dataset of grid.datasets) {
    const fixedShape = DATASET_IMAGE_SHAPES[dataset];
    if (dataset === 'synthetic' && !grid.imageSides && !grid.dimensions) {
      problems.add(
        '$.grid.imageSides',
        undefined,
        'an image size for the synthetic data set: imageSides (with channels) or dimensions',
        'add "imageSides": [n, …] or "dimensions": [D, …]',
      );
    }
    if (!fixedShape) continue;
    const [side, , datasetChannels] = fixedShape;
    const shapeText = `${fixedShape.join('×')}`;
    grid.imageSides?.forEach((value, i) => {
      if (value !== side) {
        problems.add(`$.grid.imageSides[${i}]`, value, `${side} for ${dataset} (its images are ${shapeText})`, `use "synthetic" for other sizes, or remove imageSides`);
      }
    });
    grid.channels?.forEach((value, i) => {
      if (value !== datasetChannels) {
        problems.add(`$.grid.channels[${i}]`, value, `${datasetChannels} for ${dataset} (its images are ${shapeText})`, `use "synthetic" for other channel counts, or remove channels`);
      }
    });
    grid.dimensions?.forEach((value, i) => {
      if (value !== side * side * datasetChannels) {
        problems.add(`$.grid.dimensions[${i}]`, value, `${side * side * datasetChannels} for ${dataset} (its images are ${shapeText})`, `use "synthetic" for other sizes, or remove dimensions`);
      }
    });
  }

  const convolutional = grid.architectures.filter((architecture) => architecture === 'cnn' || architecture === 'glow');
  for (const architecture of convolutional) {
    grid.imageSides?.forEach((side, i) => {
      if (side % CNN_SIDE_MULTIPLE !== 0) {
        problems.add(
          `$.grid.imageSides[${i}]`,
          side,
          `a side divisible by ${CNN_SIDE_MULTIPLE} for "${architecture}" (it squeezes the image twice)`,
          `use ${Math.max(CNN_SIDE_MULTIPLE, Math.round(side / CNN_SIDE_MULTIPLE) * CNN_SIDE_MULTIPLE)}`,
        );
      }
    });
    grid.dimensions?.forEach((dimension, i) => {
      for (const channels of grid.channels ?? [1]) {
        const side = Math.round(Math.sqrt(dimension / channels));
        if (side * side * channels !== dimension || side % CNN_SIDE_MULTIPLE !== 0) {
          problems.add(
            `$.grid.dimensions[${i}]`,
            dimension,
            `for "${architecture}" with ${channels} channel(s), D = ${channels}·n² with n divisible by ${CNN_SIDE_MULTIPLE} (a square image)`,
            `use imageSides, or a D such as ${channels * (Math.max(1, Math.round(side / CNN_SIDE_MULTIPLE)) * CNN_SIDE_MULTIPLE) ** 2}`,
          );
        }
      }
    });
  }

  if (grid.dimensions && grid.channels) {
    grid.dimensions.forEach((dimension, i) => {
      for (const channels of grid.channels ?? []) {
        if (dimension % channels !== 0) {
          problems.add(`$.grid.dimensions[${i}]`, dimension, `a multiple of every channel count (${channels} here)`, `use ${Math.ceil(dimension / channels) * channels} or drop channel ${channels}`);
        }
      }
    });
  }
}

/** The fields of a scenario that `checkFamilyRules` checks; undefined where reading failed. */
interface FamilyRuleInput {
  grid: ScenarioGrid;
  /** The raw document, to tell keys the file sets from filled defaults. */
  root: JsonObject;
  overrides: ConfigOverrides | undefined;
  variants: ScenarioVariant[] | undefined;
  measure: Measure | undefined;
}

/**
 * Reports what the scenario's family does not allow: override keys of another family, objectives
 * other than ML for multimodal10, and batches of one row for the toys. It also reports measures
 * the toy loops cannot run (runtime measures, seconds or epoch budgets, image evaluation
 * settings), and a train warm-up for image cells.
 */
function checkFamilyRules(problems: ProblemList, family: ScenarioFamily, input: FamilyRuleInput): void {
  const { grid, root, overrides, variants, measure } = input;

  // Overrides.
  const checkOverrideKeys = (path: string, set: ConfigOverrides): void => {
    for (const key of Object.keys(set) as (keyof ConfigOverrides)[]) {
      if (FAMILY_OVERRIDE_KEYS[family].includes(key)) continue;
      const owners = (Object.keys(FAMILY_OVERRIDE_KEYS) as ScenarioFamily[]).filter((other) => FAMILY_OVERRIDE_KEYS[other].includes(key));
      const hint = key === 'sigma' && family === 'toy2d' ? '; the toy noise std is "noiseStd"' : '';
      problems.add(
        `${path}.${key}`,
        key,
        `for ${FAMILY_LABELS[family]} cells the keys ${quoteList(FAMILY_OVERRIDE_KEYS[family])}`,
        `remove "${key}" (it sets ${owners.map((owner) => FAMILY_LABELS[owner]).join(' and ')} cells only${hint})`,
      );
    }
  };
  if (overrides) checkOverrideKeys('$.overrides', overrides);
  variants?.forEach((variant, index) => checkOverrideKeys(`$.variants[${index}].overrides`, variant.overrides));

  // Grid values.
  if (family === 'multimodal10') {
    grid.objectives.forEach((objective, index) => {
      if (objective !== 'ml') {
        problems.add(`$.grid.objectives[${index}]`, objective, '"ml" only for multimodal10 (the experiment trains by maximum likelihood)', `remove "${objective}"`);
      }
    });
  }
  if (family !== 'image') {
    grid.batchSizes?.forEach((batchSize, index) => {
      if (batchSize < 2) {
        problems.add(`$.grid.batchSizes[${index}]`, batchSize, 'at least 2 for toy cells (ActNorm initialises from the batch mean and std)', 'use 2 or more');
      }
    });
  }

  // Measure.
  if (measure === undefined) return;
  if (family === 'image') {
    if (measure.kind === 'train' && measure.warmupIterations > 0) {
      problems.add(
        '$.measure.warmupIterations',
        measure.warmupIterations,
        '0 for image train cells (they time every iteration; the key is for toy cells)',
        'remove it, or use a runtime measure for warm-up',
      );
    }
    return;
  }
  checkToyMeasure(problems, family, measure, root);
}

/** Reports measure settings the toy loops cannot honour. */
function checkToyMeasure(problems: ProblemList, family: ScenarioFamily, measure: Measure, root: JsonObject): void {
  const label = FAMILY_LABELS[family];
  if (measure.kind === 'runtime') {
    problems.add(
      '$.measure.kind',
      'runtime',
      `"train" for ${label} cells (the toy loop trains a fixed number of iterations and ends with the metrics)`,
      'use {"kind": "train", "budget": {"iterations": n}, "warmupIterations": k}: toy records keep every iteration time',
    );
    return;
  }

  if (!('iterations' in measure.budget)) {
    problems.add(
      '$.measure.budget',
      measure.budget,
      `{"iterations": n} for ${label} cells (the toy loop runs a fixed number of updates)`,
      'give the budget in iterations',
    );
  }

  // Evaluation settings the file wrote itself, read from the raw document.
  const raw = root.measure as JsonObject;
  const rawEvaluation = typeof raw.evaluation === 'object' && raw.evaluation !== null ? (raw.evaluation as JsonObject) : null;
  if (measure.evaluation && !('iterations' in measure.evaluation.every)) {
    problems.add('$.measure.evaluation.every', measure.evaluation.every, `{"iterations": k} for ${label} cells`, 'give the interval in iterations');
  }
  if (rawEvaluation?.maxImages !== undefined) {
    problems.add('$.measure.evaluation.maxImages', rawEvaluation.maxImages, `no maxImages for ${label} cells`, 'remove it and set "evaluationPoints" in overrides');
  }
  if (rawEvaluation?.split !== undefined && rawEvaluation.split !== 'test') {
    problems.add('$.measure.evaluation.split', rawEvaluation.split, `"test" for ${label} cells (their evaluation points come from the test split)`, 'remove "split" or write "test"');
  }
  if (rawEvaluation?.atStart === false) {
    problems.add(
      '$.measure.evaluation.atStart',
      false,
      `true or absent for ${label} cells (the toy loop also evaluates at step 0 when evaluations are periodic)`,
      'remove "atStart"',
    );
  }

  if (measure.final === null) {
    problems.add('$.measure.final', raw.final, `a final evaluation for ${label} cells (their metrics are what they measure)`, 'remove "final" or write {"split": "test"}');
    return;
  }
  const rawFinal = typeof raw.final === 'object' && raw.final !== null ? (raw.final as JsonObject) : null;
  if (rawFinal?.maxImages !== undefined) {
    problems.add('$.measure.final.maxImages', rawFinal.maxImages, `no maxImages for ${label} cells`, 'remove it and set "evaluationPoints" in overrides');
  }
  if (rawFinal?.split !== undefined && rawFinal.split !== 'test') {
    problems.add('$.measure.final.split', rawFinal.split, `"test" for ${label} cells (their evaluation points come from the test split)`, 'remove "split" or write "test"');
  }
}
