/**
 * Measures the dense linear algebra of the ML objective on the selected backend.
 *
 * Usage: node dist/src/cli/bench-linalg.js [--backend <name>] [--sizes 256,784,1536,3072]
 *                                          [--repeats 3] [--no-reference]
 *
 * For each size D it times, on a Gaussian matrix with entries of variance 1/D:
 *   - matMul: tf.matMul of [D×D]·[D×D] and of [100×D]·[D×D] (2·m·D² operations);
 *   - logAbsDet + gradient: tf.grad of logAbsDet, i.e. log|det W| and W⁻ᵀ, counted as 8D³/3
 *     operations (LU 2D³/3, inverse 2D³ after the LU);
 *   - inverse: `inverse(W)`, counted as 8D³/3 as well;
 *   - logAbsDet alone, counted as 2D³/3;
 * and prints the median time of `--repeats` runs after one warm-up run, with the rate in
 * GFLOP/s. Unless --no-reference is given, it also prints the relative error of log|det W|
 * against the float64 LU (`logAbsDetFloat64`, about 10 s at D = 3072).
 */
import * as tf from '@tensorflow/tfjs-core';

import { backendRequestFromEnv, selectBackend } from '../backend/select.js';
import { RandomStream } from '../random/stream.js';
import { inverse, logAbsDet, logAbsDetFloat64 } from '../tensor/linalg.js';

interface BenchOptions {
  backend: string | undefined;
  sizes: number[];
  repeats: number;
  reference: boolean;
}

const USAGE =
  'Usage: node dist/src/cli/bench-linalg.js [--backend gpu|node|wasm|cpu|auto] [--sizes 256,784,1536,3072] [--repeats 3] [--no-reference]';

function parseArguments(argv: string[]): BenchOptions {
  const options: BenchOptions = { backend: backendRequestFromEnv(), sizes: [256, 784, 1536, 3072], repeats: 3, reference: true };
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`bench-linalg: ${argument} needs a value. ${USAGE}`);
      return next;
    };
    if (argument === '--backend') {
      options.backend = value();
    } else if (argument === '--sizes') {
      const text = value();
      options.sizes = text.split(',').map((part) => Number(part));
      if (options.sizes.some((size) => !Number.isInteger(size) || size < 1)) {
        throw new Error(`bench-linalg: --sizes must be a comma-separated list of positive integers, received '${text}'.`);
      }
    } else if (argument === '--repeats') {
      const text = value();
      options.repeats = Number(text);
      if (!Number.isInteger(options.repeats) || options.repeats < 1) {
        throw new Error(`bench-linalg: --repeats must be a positive integer, received '${text}'.`);
      }
    } else if (argument === '--no-reference') {
      options.reference = false;
    } else if (argument === '--help' || argument === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      throw new Error(`bench-linalg: unknown argument '${argument}'. ${USAGE}`);
    }
  }
  return options;
}

/** Median wall-clock and process CPU time of one run, in ms. */
interface Timing {
  wallMs: number;
  cpuMs: number;
}

function cpuMilliseconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * Runs `action` once to warm up, then `repeats` times; returns the median wall-clock time and
 * the median CPU time of the process (user + system, all threads). On a shared machine the
 * CPU time is the steadier of the two; garbage-collector threads can push it above wall time.
 */
function measure(repeats: number, action: () => void): Timing {
  action();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const startCpu = cpuMilliseconds();
    const start = performance.now();
    action();
    wall.push(performance.now() - start);
    cpu.push(cpuMilliseconds() - startCpu);
  }
  return { wallMs: median(wall), cpuMs: median(cpu) };
}

/** Times a tfjs computation including the download of its result, which waits for the backend. */
function timeTensor(repeats: number, compute: () => tf.Tensor): Timing {
  return measure(repeats, () => {
    const result = tf.tidy(compute);
    result.dataSync();
    result.dispose();
  });
}

function formatRow(cells: (string | number)[]): string {
  return cells.map((cell, index) => String(cell).padStart(index === 0 ? 6 : 17)).join(' ');
}

async function main(): Promise<void> {
  const options = parseArguments(process.argv.slice(2));
  const selection = await selectBackend(options.backend);
  console.log(`backend: ${selection.name} (${selection.packageName})`);
  for (const attempt of selection.attempts) {
    if (attempt.error !== undefined) console.log(`  skipped ${attempt.name}: ${attempt.error}`);
  }
  console.log(`median of ${options.repeats} runs after one warm-up; rates in GFLOP/s from wall-clock / CPU time`);
  console.log(formatRow(['D', 'matMul D×D', 'matMul 100×D', 'logdet+grad', 'inverse', 'logdet only', 'rel. error']));

  const random = new RandomStream(20231);
  for (const size of options.sizes) {
    const values = random.normalArray(size * size).map((value) => value / Math.sqrt(size));
    const w = tf.tensor2d(values, [size, size]);
    const batch = tf.tensor2d(random.normalArray(100 * size), [100, size]);

    const square = timeTensor(options.repeats, () => tf.matMul(w, w));
    const batched = timeTensor(options.repeats, () => tf.matMul(batch, w));
    const gradient = timeTensor(options.repeats, () => tf.grad((matrix: tf.Tensor) => logAbsDet(matrix as tf.Tensor2D))(w));
    const inverted = timeTensor(options.repeats, () => inverse(w));
    const logDet = timeTensor(options.repeats, () => logAbsDet(w));

    let error = 'skipped';
    if (options.reference) {
      const valueTensor = logAbsDet(w);
      const value = valueTensor.dataSync()[0];
      valueTensor.dispose();
      const reference = logAbsDetFloat64(values, size);
      error = (Math.abs(value - reference) / Math.abs(reference)).toExponential(1);
    }
    tf.dispose([w, batch]);

    const rate = (operations: number, timing: Timing): string =>
      `${(operations / timing.wallMs / 1e6).toFixed(1)} / ${(operations / timing.cpuMs / 1e6).toFixed(1)}`;
    const cube = size ** 3;
    console.log(
      formatRow([
        size,
        rate(2 * cube, square),
        rate(2 * 100 * size * size, batched),
        rate((8 * cube) / 3, gradient),
        rate((8 * cube) / 3, inverted),
        rate((2 * cube) / 3, logDet),
        error,
      ]),
    );
    console.log(
      formatRow(['', ...[square, batched, gradient, inverted, logDet].map((t) => `${t.wallMs.toFixed(0)} / ${t.cpuMs.toFixed(0)} ms`), '']),
    );
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
