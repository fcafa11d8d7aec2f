/**
 * Command-line options of `npm run bench:peer`: parsing, defaults, checks and help text.
 */
import { parseArgs } from 'node:util';

import { OBJECTIVE_NAMES, type ObjectiveName } from '../objectives/objective.js';
import { OMP_WAIT_POLICIES, type OmpWaitPolicy } from './bench.js';
import { PEER_ARCHITECTURES, type ImageShape, type PeerArchitecture } from './protocol.js';
import type { PeerCell, SweepTiming } from './sweep.js';

export interface BenchPeerOptions {
  help: boolean;
  cells: PeerCell[];
  timing: SweepTiming;
  peerThreads: number[];
  /** Our tfjs backend request; undefined means automatic selection. */
  backend: string | undefined;
  peerCommand: string | undefined;
  ompWaitPolicy: OmpWaitPolicy;
  runTimeoutMs: number;
  outDir: string;
}

export const BENCH_PEER_HELP = `Usage: npm run bench:peer -- [options]

Times the same EBFlow training steps in ebflow-bench and in a peer engine (PyTorch by default),
interleaved: for each cell and round, our step runs once, then the peer once per thread count.
Each figure is the median of the pooled per-step wall-clock times of all rounds, warm-up excluded.
The ratio compares our median with the peer's better thread count.

Options:
  --arch LIST          architectures: fc, cnn                           (default fc,cnn)
  --objectives LIST    objectives: ml, sml, ssm, dsm, fdssm             (default all five)
  --dims LIST          FC input sizes D; D = s² becomes an s×s×1 image, D = 3s² an s×s×3
                       image, other D a 1×D×1 image; HxWxC shapes are accepted too
                                                                        (default 784,3072)
  --shapes LIST        CNN image shapes HxWxC, H and W multiples of 4   (default 28x28x1)
  --depth N            FC dense layer count L; the CNN always has 6 convolutions (default 2)
  --batch N            batch size B, images per step                    (default 100)
  --warmup N           untimed steps at the start of every run          (default 3)
  --iterations N       timed steps per run                              (default 10)
  --rounds N           interleaved runs per side and cell               (default 3)
  --sweep-warmup N     untimed runs of the first cell on every side before the sweep, so
                       JIT-compiled code and thread pools are warm       (default 1)
  --peer-threads LIST  peer intra-op thread counts, each run every round (default 1,2)
  --backend NAME       our tfjs backend: auto, gpu, node, wasm, cpu     (default auto)
  --seed N             seed of both sides' random draws                 (default 0)
  --run-timeout S      seconds allowed for one peer run before it is stopped (default 1800)
  --peer-command CMD   shell command that starts another peer speaking
                       benchmarks/peers/PROTOCOL.md (default: the PyTorch peer)
  --omp-wait-policy P  how the peer's idle OpenMP threads wait: short-spin (our engine's
                       setting: GOMP_SPINCOUNT=1000 unless OMP_WAIT_POLICY or GOMP_SPINCOUNT
                       is set), passive, active, or inherit (the environment as it is)
                                                                         (default short-spin)
  --out DIR            folder for peer-comparison.{csv,json,vl.json,svg} and, when cells of one
                       architecture, objective and channel count span three sizes D or more,
                       peer-scaling.csv: each side's fitted exponent of time in D
                                                                        (default reports/peer)
  --help               print this text

The PyTorch peer runs with the first interpreter that imports torch: EBFLOW_PYTHON if set (and
then only it), else /usr/bin/python3, else python3. Without torch, only our side runs. A run
without timings of the peer (no torch, or every peer run failed) writes its files to the
subfolder without-peer/ when --out already has a comparison with them.
`;

/** Returns the image shape an FC cell of input size D uses (see --dims in the help). */
export function fcShapeForDimension(dimension: number): ImageShape {
  const side = Math.round(Math.sqrt(dimension));
  if (side * side === dimension) return [side, side, 1];
  const colourSide = Math.round(Math.sqrt(dimension / 3));
  if (3 * colourSide * colourSide === dimension) return [colourSide, colourSide, 3];
  return [1, dimension, 1];
}

function fail(option: string, value: string, allowed: string): never {
  throw new RangeError(`bench:peer: --${option} ${JSON.stringify(value)} is invalid; ${allowed}`);
}

function parseList(value: string): string[] {
  return value.split(',').map((item) => item.trim()).filter((item) => item !== '');
}

function parseInteger(option: string, value: string, minimum: number): number {
  const number = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(number) || number < minimum) {
    fail(option, value, `use an integer ≥ ${minimum}`);
  }
  return number;
}

function parseShape(option: string, text: string): ImageShape {
  const parts = text.toLowerCase().split('x');
  if (parts.length !== 3 || !parts.every((part) => /^\d+$/.test(part) && Number(part) >= 1)) {
    fail(option, text, 'use shapes HxWxC with positive integers, such as 28x28x1');
  }
  return parts.map(Number) as ImageShape;
}

function parseNames<T extends string>(option: string, value: string, allowed: readonly T[]): T[] {
  const names = parseList(value);
  if (names.length === 0) fail(option, value, `use a comma-separated list of ${allowed.join(', ')}`);
  for (const name of names) {
    if (!(allowed as readonly string[]).includes(name)) fail(option, value, `use names from ${allowed.join(', ')}`);
  }
  return [...new Set(names)] as T[];
}

function parseOmpWaitPolicy(value: string): OmpWaitPolicy {
  const names = parseNames<OmpWaitPolicy>('omp-wait-policy', value, OMP_WAIT_POLICIES);
  if (names.length !== 1) fail('omp-wait-policy', value, `use one of ${OMP_WAIT_POLICIES.join(', ')}`);
  return names[0]!;
}

/**
 * Parses the command-line arguments (without `node` and the script) into options, with the
 * defaults of the help text. Throws RangeError naming the option, the value and what is allowed.
 */
export function parseBenchPeerArgs(argv: string[]): BenchPeerOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      arch: { type: 'string', default: 'fc,cnn' },
      objectives: { type: 'string', default: OBJECTIVE_NAMES.join(',') },
      dims: { type: 'string', default: '784,3072' },
      shapes: { type: 'string', default: '28x28x1' },
      depth: { type: 'string', default: '2' },
      batch: { type: 'string', default: '100' },
      warmup: { type: 'string', default: '3' },
      iterations: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '3' },
      'sweep-warmup': { type: 'string', default: '1' },
      'peer-threads': { type: 'string', default: '1,2' },
      backend: { type: 'string' },
      seed: { type: 'string', default: '0' },
      'run-timeout': { type: 'string', default: '1800' },
      'peer-command': { type: 'string' },
      'omp-wait-policy': { type: 'string', default: 'short-spin' },
      out: { type: 'string', default: 'reports/peer' },
      help: { type: 'boolean', default: false },
    },
  });

  const architectures = parseNames<PeerArchitecture>('arch', values.arch!, PEER_ARCHITECTURES);
  const objectives = parseNames<ObjectiveName>('objectives', values.objectives!, OBJECTIVE_NAMES);
  const depth = parseInteger('depth', values.depth!, 1);
  const batch = parseInteger('batch', values.batch!, 1);

  const fcShapes = parseList(values.dims!).map((item) =>
    (item.includes('x') ? parseShape('dims', item) : fcShapeForDimension(parseInteger('dims', item, 1))));
  const cnnShapes = parseList(values.shapes!).map((item) => parseShape('shapes', item));
  for (const shape of cnnShapes) {
    if (shape[0] % 4 !== 0 || shape[1] % 4 !== 0) {
      fail('shapes', shape.join('x'), 'the CNN squeezes twice, so H and W must be multiples of 4');
    }
  }
  if (architectures.includes('fc') && fcShapes.length === 0) fail('dims', values.dims!, 'give at least one D for arch fc');
  if (architectures.includes('cnn') && cnnShapes.length === 0) fail('shapes', values.shapes!, 'give at least one shape for arch cnn');

  const cells: PeerCell[] = [];
  for (const arch of architectures) {
    const shapes = arch === 'fc' ? fcShapes : cnnShapes;
    for (const imageShape of shapes) {
      for (const objective of objectives) {
        cells.push({ arch, objective, imageShape, depth: arch === 'fc' ? depth : 6, batch });
      }
    }
  }

  const peerThreads = [...new Set(parseList(values['peer-threads']!).map((item) => parseInteger('peer-threads', item, 1)))];
  if (peerThreads.length === 0) fail('peer-threads', values['peer-threads']!, 'give at least one thread count, such as 1,2');

  return {
    help: values.help!,
    cells,
    timing: {
      warmup: parseInteger('warmup', values.warmup!, 0),
      iterations: parseInteger('iterations', values.iterations!, 1),
      rounds: parseInteger('rounds', values.rounds!, 1),
      seed: parseInteger('seed', values.seed!, 0),
      sweepWarmup: parseInteger('sweep-warmup', values['sweep-warmup']!, 0),
    },
    peerThreads,
    backend: values.backend,
    peerCommand: values['peer-command'],
    ompWaitPolicy: parseOmpWaitPolicy(values['omp-wait-policy']!),
    runTimeoutMs: parseInteger('run-timeout', values['run-timeout']!, 1) * 1000,
    outDir: values.out!,
  };
}
