/**
 * Measures the dense linear algebra of the ML objective on the selected backend.
 *
 * Usage: node dist/src/cli/bench-linalg.js [--backend <name>] [--sizes 256,784,1536,3072]
 *                                          [--repeats 3] [--no-reference]
 *
 * For each size D it times, on a Gaussian matrix with entries of variance 1/D:
 *   - matMul: tf.matMul of [D×D]·[D×D] and of [100×D]·[D×D] (2·m·D² operations);
 *   - logAbsDet + gradient: tf.grad of logAbsDet, i.e. log|det W| and W⁻ᵀ, counted as 2D³
 *     operations (LU 2D³/3, then the inverse from the LU 4D³/3, as LAPACK's sgetrf and sgetri);
 *   - inverse: `inverse(W)`, counted as 2D³ as well;
 *   - logAbsDet alone, counted as 2D³/3;
 *   - sumLogAbsDet of two D×D matrices with both gradients, as an ML step with two dense layers
 *     computes them, counted as 4D³: with the LAPACK worker thread (`threads/lapack-threads.ts`)
 *     and, as 'worker off', on this thread alone. Without a running worker only the first row
 *     is printed;
 *   - with OpenBLAS and the recursive LU (`recursive-lu.ts`), LAPACK's own sgetrf with sgetri,
 *     and sgetrf alone, on a column-major copy, counted the same way;
 *   - with the recursive LU, `factorLu` (sgetrf below D = 512) with `invertLu` against sgetrf
 *     with sgetri, on one OpenBLAS thread, the setting of each thread in 'sumLogAbsDet ×2';
 * and prints the rate in GFLOP/s of the median and of the fastest of `--repeats` runs after one
 * warm-up run, and the rate from the smallest CPU time of the process. The operations of one
 * size run interleaved, one run of each per round, so their rates share the machine's state. A line per size gives the
 * median rate of log|det W| with W⁻ᵀ, for one matrix and for two in one call, as a fraction of
 * the two matMul rates. On a machine shared with
 * other work the wall-clock times vary by 2× or more. The best runs and the CPU times show the
 * cost of the code itself. Unless --no-reference is given, it also prints log|det W| against the
 * float64 LU (`logAbsDetFloat64`, about 10 s at D = 3072).
 */
import * as tf from '@tensorflow/tfjs-core';

import { BackendRequestError, backendRequestFromEnv, selectBackend } from '../backend/select.js';
import { RandomStream } from '../random/stream.js';
import { inverse, logAbsDet, logAbsDetFloat64, sumLogAbsDet } from '../tensor/linalg.js';
import { describeBlas, nativeBlas } from '../tensor/native-blas.js';
import { lapackThreadsStatus, pauseLapackThreads } from '../tensor/threads/lapack-threads.js';

/** A command-line option this tool cannot use; its message names the value and the fix. */
class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

interface BenchOptions {
  backend: string | undefined;
  sizes: number[];
  repeats: number;
  reference: boolean;
}

const USAGE =
  'Usage: node dist/src/cli/bench-linalg.js [--backend gpu|node|wasm|cpu|auto] [--sizes 256,784,1536,3072] [--repeats 3] [--no-reference]';

/**
 * Largest D whose D×D float32 matrix fits into 4 GiB, the most memory a 32-bit wasm module can
 * address. NOTE: a run allocates several such matrices, so sizes well below it can still run out
 * of memory.
 */
const MAX_SIZE = 32767;

function parseArguments(argv: string[]): BenchOptions {
  const options: BenchOptions = { backend: backendRequestFromEnv(), sizes: [256, 784, 1536, 3072], repeats: 3, reference: true };
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`bench-linalg: ${argument} needs a value. ${USAGE}`);
      return next;
    };
    if (argument === '--backend') {
      options.backend = value();
    } else if (argument === '--sizes') {
      const text = value();
      options.sizes = text.split(',').map((part) => Number(part));
      if (options.sizes.some((size) => !Number.isInteger(size) || size < 1)) {
        throw new UsageError(`bench-linalg: --sizes must be a comma-separated list of positive integers, received '${text}'.`);
      }
      const tooLarge = options.sizes.find((size) => size > MAX_SIZE);
      if (tooLarge !== undefined) {
        throw new UsageError(
          `bench-linalg: --sizes contains ${tooLarge}, whose D×D float32 matrix alone needs more than the 4 GiB ` +
            `that the wasm backend can address. Use sizes up to ${MAX_SIZE}.`,
        );
      }
    } else if (argument === '--repeats') {
      const text = value();
      options.repeats = Number(text);
      if (!Number.isInteger(options.repeats) || options.repeats < 1) {
        throw new UsageError(`bench-linalg: --repeats must be a positive integer, received '${text}'.`);
      }
    } else if (argument === '--no-reference') {
      options.reference = false;
    } else if (argument === '--help' || argument === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      throw new UsageError(`bench-linalg: unknown argument '${argument}'. ${USAGE}`);
    }
  }
  return options;
}

/** Wall-clock and process CPU times of the timed runs, in ms. */
interface Timing {
  wallMs: number[];
  cpuMs: number[];
}

function cpuMilliseconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

/** One operation to time: its row name, its counted floating-point operations and the action that runs it once. */
interface Benchmark {
  name: string;
  operations: number;
  action: () => void;
}

/**
 * Runs each action once to warm up, then `repeats` rounds in which every action runs once, the
 * first one moving by one place each round. It records the wall-clock time and the CPU time of the
 * process (user + system, all threads) of each run. Interleaved, the rows share the machine's
 * slow and fast spells, so the rates of one size can be compared with each other.
 */
function measureInterleaved(repeats: number, benchmarks: readonly Benchmark[]): Timing[] {
  for (const { action } of benchmarks) action();
  const timings = benchmarks.map((): Timing => ({ wallMs: [], cpuMs: [] }));
  for (let round = 0; round < repeats; round++) {
    for (let offset = 0; offset < benchmarks.length; offset++) {
      const index = (round + offset) % benchmarks.length;
      const startCpu = cpuMilliseconds();
      const start = performance.now();
      benchmarks[index].action();
      timings[index].wallMs.push(performance.now() - start);
      timings[index].cpuMs.push(cpuMilliseconds() - startCpu);
    }
  }
  return timings;
}

/** Returns an action that runs a tfjs computation and downloads its result, which waits for the backend. */
function tensorAction(compute: () => tf.Tensor): () => void {
  return () => {
    const result = tf.tidy(compute);
    result.dataSync();
    result.dispose();
  };
}

const COLUMNS = ['D', 'operation', 'GFLOP/s median', 'GFLOP/s best', 'GFLOP/s best CPU', 'median ms', 'best ms'];
const WIDTHS = [6, 28, 15, 13, 17, 10, 8];

function formatRow(cells: (string | number)[]): string {
  return cells.map((cell, index) => (index === 1 ? String(cell).padEnd(WIDTHS[index]) : String(cell).padStart(WIDTHS[index]))).join(' ');
}

function formatTiming(size: number, operation: string, operations: number, timing: Timing): string {
  const rate = (ms: number): string => (operations / ms / 1e6).toFixed(1);
  const medianWall = median(timing.wallMs);
  const bestWall = Math.min(...timing.wallMs);
  const bestCpu = Math.min(...timing.cpuMs);
  return formatRow([size, operation, rate(medianWall), rate(bestWall), rate(bestCpu), medianWall.toFixed(1), bestWall.toFixed(1)]);
}

/** Returns an action that computes the gradients of `sumLogAbsDet` over `matrices` and downloads them. */
function sumLogAbsDetAction(matrices: tf.Tensor2D[]): () => void {
  const gradients = tf.grads((...inputs: tf.Tensor[]) => sumLogAbsDet(inputs as tf.Tensor2D[]));
  return () => {
    const results = gradients(matrices);
    for (const result of results) result.dataSync();
    tf.dispose(results);
  };
}

/**
 * Returns lines with the median rate of log|det W| with W⁻ᵀ, for one matrix and for two in one call,
 * as a fraction of the two median matMul rates: the measure of whether the ML baseline runs its
 * D³ work as fast as the backend multiplies. The first three entries of `rows` are the rows of
 * `main`, in their order. `pair` is the row of two matrices in one `sumLogAbsDet` call, when it
 * ran, and `pairThreads` the number of threads that call used.
 */
function describeBaselineRate(
  size: number,
  rows: readonly [string, number, Timing][],
  pair?: [string, number, Timing],
  pairThreads = 2,
): string {
  const rate = ([, operations, timing]: [string, number, Timing]): number => operations / median(timing.wallMs);
  const [square, batch, logDet] = rows.map(rate);
  const fractions = (value: number): string =>
    `${(value / square).toFixed(2)} of the D×D·D×D rate and ${(value / batch).toFixed(2)} of the 100×D·D×D rate (medians)`;
  const lines = [`${String(size).padStart(6)} log|det W| with W⁻ᵀ ran at ${fractions(logDet)}`];
  if (pair !== undefined) {
    // Without the LAPACK worker the two matrices are factored one after the other.
    const threadPhrase = pairThreads === 2 ? 'at once' : 'on one thread';
    lines.push(`${String(size).padStart(6)} two of them ${threadPhrase} ran at ${fractions(rate(pair))}`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const options = parseArguments(process.argv.slice(2));
  const selection = await selectBackend(options.backend);
  console.log(`backend: ${selection.name} (${selection.packageName}); ${describeBlas(selection.blas)}`);
  for (const attempt of selection.attempts) {
    if (attempt.error !== undefined) console.log(`  skipped ${attempt.name}: ${attempt.error}`);
  }
  console.log(`LAPACK threads: ${selection.lapackThreads.threads} (${selection.lapackThreads.reason})`);
  console.log(`${options.repeats} timed run${options.repeats === 1 ? "" : "s"} after one warm-up; "best CPU" divides by the smallest process CPU time`);
  console.log(formatRow(COLUMNS));

  const random = new RandomStream(20231);
  for (const size of options.sizes) {
    const values = random.normalArray(size * size).map((value) => value / Math.sqrt(size));
    const w = tf.tensor2d(values, [size, size]);
    const second = tf.tensor2d(random.normalArray(size * size).map((value) => value / Math.sqrt(size)), [size, size]);
    const batch = tf.tensor2d(random.normalArray(100 * size), [100, size]);
    const cube = size ** 3;

    const benchmarks: Benchmark[] = [
      { name: 'matMul D×D·D×D', operations: 2 * cube, action: tensorAction(() => tf.matMul(w, w)) },
      { name: 'matMul 100×D·D×D', operations: 2 * 100 * size * size, action: tensorAction(() => tf.matMul(batch, w)) },
      {
        name: 'logAbsDet + gradient',
        operations: 2 * cube,
        action: tensorAction(() => tf.grad((matrix: tf.Tensor) => logAbsDet(matrix as tf.Tensor2D))(w)),
      },
      { name: 'inverse', operations: 2 * cube, action: tensorAction(() => inverse(w)) },
      { name: 'logAbsDet', operations: (2 * cube) / 3, action: tensorAction(() => logAbsDet(w)) },
      { name: 'sumLogAbsDet ×2', operations: 4 * cube, action: sumLogAbsDetAction([w, second]) },
    ];
    const threads = lapackThreadsStatus();
    if (threads.threads === 2) {
      const pair = sumLogAbsDetAction([w, second]);
      benchmarks.push({
        name: 'sumLogAbsDet ×2, worker off',
        operations: 4 * cube,
        action: () => {
          pauseLapackThreads(true);
          try {
            pair();
          } finally {
            pauseLapackThreads(false);
          }
        },
      });
    }
    const blas = nativeBlas();
    if (blas !== null && blas.status.lu === 'recursive') {
      // The library's own routines on the same column-major copy, for comparison with the recursive LU used above.
      const columnMajor = new Float32Array(size * size);
      const factor = new Float32Array(size * size);
      const pivots = new Int32Array(size);
      blas.transposeCopy(size, size, 1, Float32Array.from(values), columnMajor);
      const lapack = (invert: boolean) => () => {
        factor.set(columnMajor);
        blas.sgetrf(size, factor, pivots);
        if (invert) blas.sgetri(size, factor, pivots);
      };
      const recursiveLuAndInverse = () => {
        factor.set(columnMajor);
        blas.factorLu(size, factor, pivots);
        blas.invertLu(size, factor, pivots);
      };
      benchmarks.push(
        { name: 'LAPACK sgetrf + sgetri', operations: 2 * cube, action: lapack(true) },
        { name: 'LAPACK sgetrf', operations: (2 * cube) / 3, action: lapack(false) },
        { name: '1 thread: LU + invertLu', operations: 2 * cube, action: () => blas.onOneThread(recursiveLuAndInverse) },
        { name: '1 thread: sgetrf + sgetri', operations: 2 * cube, action: () => blas.onOneThread(lapack(true)) },
      );
    }
    const timings = measureInterleaved(options.repeats, benchmarks);
    const rows = benchmarks.map((benchmark, index): [string, number, Timing] => [benchmark.name, benchmark.operations, timings[index]]);
    const pairRow = rows.find(([name]) => name === 'sumLogAbsDet ×2');
    for (const [operation, operations, timing] of rows) console.log(formatTiming(size, operation, operations, timing));
    console.log(describeBaselineRate(size, rows, pairRow, threads.threads));

    if (options.reference) {
      const valueTensor = logAbsDet(w);
      const value = valueTensor.dataSync()[0];
      valueTensor.dispose();
      const reference = logAbsDetFloat64(values, size);
      console.log(`${String(size).padStart(6)} log|det W| = ${value}, float64 ${reference}, relative error ${(Math.abs(value - reference) / Math.abs(reference)).toExponential(1)}`);
    }
    tf.dispose([w, second, batch]);
  }
}

main().catch((error: unknown) => {
  // A bad option or backend request is the caller's input: its message names the fix (status 2).
  if (error instanceof BackendRequestError || error instanceof UsageError) {
    console.error(error.message);
    process.exitCode = 2;
    return;
  }
  // Anything else failed while running, and the stack shows where (status 1).
  console.error(error instanceof Error ? error.stack ?? error.message : String(error));
  process.exitCode = 1;
});
