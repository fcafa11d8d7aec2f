/**
 * Command-line arguments of `node dist/src/cli/toys.js`. This module only parses them, and
 * src/cli/toys.ts acts on them. Every option not given takes the authors' value for the chosen
 * data set and objective.
 */
import { OBJECTIVE_NAMES, type ObjectiveName } from '../objectives/objective.js';
import { COUPLING_WEIGHT_INITS, type CouplingWeightInit } from './coupling-network.js';
import { TOY_2D_DATASETS, TOY_DATASET_NAMES, type ToyDatasetName } from './datasets.js';
import { BASE_DISTRIBUTIONS, type BaseDistribution } from './density.js';
import { LINEAR_NET_MASKS, type LinearNetMask } from './linear-net.js';

export const TOYS_USAGE = `Usage: node dist/src/cli/toys.js --dataset <name> [--objective <name>] [options]

Trains one toy EBFlow model and writes a JSON result record (and, for the 2-D data sets, a PNG
heat-map of the model density) to the output folder.

Options:
  --dataset <name>          sine, swirl, checkerboard (2-D coupling flow, paper Table 1) or
                            multimodal10 (10-D linear network, paper Figure A4; ML only)
  --objective <name>        ml, sml, ssm, dsm or fdssm (default: ml)
  --mask <type>             multimodal10 only: full, lower, upper or lu (default: full)
  --iterations <n>          optimiser updates (default: the authors' 50001 for sine and swirl,
                            100001 for checkerboard, 10001 for multimodal10; each 2-D update at
                            batch 2048 takes 0.5 to 10 s on the wasm backend)
  --batch <n>               rows per batch (default: 2048; 10000 for checkerboard)
  --seed <n>                seed of the model initialisation and training draws (default: 0)
  --data-seed <n>           seed of the data and evaluation points (default: 0)
  --learning-rate <x>       Adam step size (default: the authors' value per data set and objective)
  --gradient-clip <x>       maximum global gradient norm, 0 for none (default: the authors' value)
  --evaluate-every <n>      also evaluate after every n updates (default: 0, only after the last;
                            multimodal10: 100)
  --evaluation-points <n>   2-D: points of the evaluation set (default 10000); multimodal10: size
                            of the fixed test batch (default 1024)
  --base <name>             gaussian (default) or laplace: the base distribution of ML training
                            and of the metrics, laplace as in the authors' code
  --blocks <n>              flow blocks (default: 10)
  --hidden <n>              2-D only: width of the coupling MLPs (default: 64)
  --network-init <name>     2-D only: orthogonal (default, as the authors configure) or uniform
                            (PyTorch's default, what the authors' code actually runs) for the
                            coupling MLP weights
  --train-points <n>        training points drawn (default: 10000 for the 2-D data sets, as the
                            authors' code draws them, 50000 for multimodal10)
  --chunk-rows <n>          2-D only: rows per gradient pass (default: 512 for ssm, 2048 otherwise)
  --backend <name>          TensorFlow.js backend: gpu, node, wasm, cpu or auto (default: auto)
  --out <dir>               output folder (default: results/toys)
  --help, -h                show this help

Units: losses and NLL in nats per point, times in ms per iteration.`;

/** Thrown for invalid arguments; the message names the argument, the value and the fix. */
export class ToyArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToyArgumentError';
  }
}

/** The parsed arguments; null where the option was not given. */
export interface ToyArguments {
  help: boolean;
  dataset: ToyDatasetName;
  objective: ObjectiveName;
  mask: LinearNetMask;
  iterations: number | null;
  batch: number | null;
  seed: number;
  dataSeed: number;
  learningRate: number | null;
  gradientClip: number | null;
  evaluateEvery: number | null;
  evaluationPoints: number | null;
  base: BaseDistribution;
  blocks: number | null;
  hidden: number | null;
  networkInit: CouplingWeightInit;
  trainPoints: number | null;
  chunkRows: number | null;
  backend: string | null;
  out: string;
}

type Kind = 'integer' | 'positive-integer' | 'number' | 'text';

const VALUE_OPTIONS: Readonly<Record<string, { key: keyof ToyArguments; kind: Kind }>> = {
  '--dataset': { key: 'dataset', kind: 'text' },
  '--objective': { key: 'objective', kind: 'text' },
  '--mask': { key: 'mask', kind: 'text' },
  '--iterations': { key: 'iterations', kind: 'positive-integer' },
  '--batch': { key: 'batch', kind: 'positive-integer' },
  '--seed': { key: 'seed', kind: 'integer' },
  '--data-seed': { key: 'dataSeed', kind: 'integer' },
  '--learning-rate': { key: 'learningRate', kind: 'number' },
  '--gradient-clip': { key: 'gradientClip', kind: 'number' },
  '--evaluate-every': { key: 'evaluateEvery', kind: 'integer' },
  '--evaluation-points': { key: 'evaluationPoints', kind: 'positive-integer' },
  '--base': { key: 'base', kind: 'text' },
  '--blocks': { key: 'blocks', kind: 'positive-integer' },
  '--hidden': { key: 'hidden', kind: 'positive-integer' },
  '--network-init': { key: 'networkInit', kind: 'text' },
  '--train-points': { key: 'trainPoints', kind: 'positive-integer' },
  '--chunk-rows': { key: 'chunkRows', kind: 'positive-integer' },
  '--backend': { key: 'backend', kind: 'text' },
  '--out': { key: 'out', kind: 'text' },
};

/** Parses the arguments after the script name; accepts "--option value" and "--option=value". */
export function parseToyArguments(argv: readonly string[]): ToyArguments {
  const parsed: Record<string, unknown> = {
    help: false,
    objective: 'ml',
    mask: 'full',
    iterations: null,
    batch: null,
    seed: 0,
    dataSeed: 0,
    learningRate: null,
    gradientClip: null,
    evaluateEvery: null,
    evaluationPoints: null,
    base: 'gaussian',
    blocks: null,
    hidden: null,
    networkInit: 'orthogonal',
    trainPoints: null,
    chunkRows: null,
    backend: null,
    out: 'results/toys',
  };
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    if (argument === '--help' || argument === '-h') {
      parsed.help = true;
      continue;
    }
    const equals = argument.indexOf('=');
    const option = equals >= 0 ? argument.slice(0, equals) : argument;
    const spec = VALUE_OPTIONS[option];
    if (spec === undefined) {
      throw new ToyArgumentError(`unknown argument "${argument}"; run with --help to see every option`);
    }
    if (seen.has(option)) throw new ToyArgumentError(`option ${option} was given twice; give it once`);
    seen.add(option);
    const text = equals >= 0 ? argument.slice(equals + 1) : argv[++i];
    if (text === undefined || text === '') throw new ToyArgumentError(`option ${option} needs a value; see --help`);
    parsed[spec.key] = convert(option, text, spec.kind);
  }
  if (parsed.help) return parsed as unknown as ToyArguments;

  if (parsed.dataset === undefined) {
    throw new ToyArgumentError(`--dataset is required: one of ${TOY_DATASET_NAMES.join(', ')}`);
  }
  requireChoice('--dataset', parsed.dataset as string, TOY_DATASET_NAMES);
  requireChoice('--objective', parsed.objective as string, OBJECTIVE_NAMES);
  requireChoice('--mask', parsed.mask as string, LINEAR_NET_MASKS);
  requireChoice('--base', parsed.base as string, BASE_DISTRIBUTIONS);
  requireChoice('--network-init', parsed.networkInit as string, COUPLING_WEIGHT_INITS);
  const twoDimensional = (TOY_2D_DATASETS as readonly string[]).includes(parsed.dataset as string);
  if (!twoDimensional && parsed.objective !== 'ml') {
    throw new ToyArgumentError(`--objective ${String(parsed.objective)} is not available for multimodal10, which the authors train by ML only; use --objective ml`);
  }
  if (twoDimensional && seen.has('--mask')) {
    throw new ToyArgumentError(`--mask applies to multimodal10 only, but --dataset is ${String(parsed.dataset)}; leave --mask out`);
  }
  for (const option of ['--hidden', '--chunk-rows', '--network-init'] as const) {
    if (!twoDimensional && seen.has(option)) {
      throw new ToyArgumentError(`${option} applies to the 2-D data sets only, but --dataset is multimodal10; leave ${option} out`);
    }
  }
  return parsed as unknown as ToyArguments;
}

function convert(option: string, text: string, kind: Kind): string | number {
  if (kind === 'text') return text;
  const value = Number(text);
  const rules: Record<Exclude<Kind, 'text'>, { valid: boolean; expected: string }> = {
    number: { valid: Number.isFinite(value) && value >= 0, expected: 'a finite number ≥ 0' },
    integer: { valid: Number.isInteger(value) && value >= 0, expected: 'an integer ≥ 0' },
    'positive-integer': { valid: Number.isInteger(value) && value >= 1, expected: 'an integer ≥ 1' },
  };
  const rule = rules[kind];
  if (!rule.valid) throw new ToyArgumentError(`option ${option} must be ${rule.expected}, received "${text}"`);
  return value;
}

function requireChoice(option: string, value: string, choices: readonly string[]): void {
  if (!choices.includes(value)) {
    throw new ToyArgumentError(`option ${option} must be one of ${choices.join(', ')}, received "${value}"`);
  }
}
