/**
 * LU factorisations and inverses of several matrices at once: some on this thread, the others
 * on one worker thread (`lapack-worker.ts`), each on one OpenBLAS thread.
 *
 * At the sizes of the paper's flows, OpenBLAS gains little from a second thread on one
 * factorisation or inverse: their panels and narrow products run mostly on one core. An ML step
 * needs one of each for every dense layer (or convolution), so two matrices can go to the two
 * cores whole instead. On the 2-vCPU Intel Xeon (family 6, model 207, OpenBLAS 0.3.21 OpenMP
 * build), LU and inverse of two matrices took, one after the other on two OpenBLAS threads
 * against at once on one thread each (medians of 30 interleaved rounds, 2026-12-05): 2.75
 * against 1.97 ms at n = 256, 12.0 against 9.3 ms at n = 512, 26.6–27.8 against 21.8–22.8 ms at
 * n = 784 and 134 against 111 ms at n = 1536.
 *
 * `selectBackend` starts the worker (`startLapackThreads`, about 50 ms) and it sleeps between
 * calls. It is used when OpenBLAS is a threaded build (OpenMP or pthreads) with at least two
 * threads and `EBFLOW_WASM_THREADS` allows more than one thread. `lapackThreadsStatus` reports
 * which applied, and every result records it. Each item lands on the same thread for the same
 * list of sizes and runs the same routine as on this thread, so the results do not depend on
 * timing.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';

import { addLapackOperations, type NativeBlas } from '../native-blas.js';
import {
  CONTROL_WORDS,
  ERROR_BYTES,
  FINISHED,
  JOB_FAILED,
  POSTED,
  READY,
  readError,
  STARTING,
  STATE,
  STOP_JOB,
  type LapackItem,
  type LapackJob,
  type LapackWorkerData,
} from './lapack-protocol.js';
import { workerExecArgv } from './exec-argv.js';
import { requestedKernelThreads } from './pool.js';

export type { LapackItem } from './lapack-protocol.js';

/** Whether calls of `runLapack` use the worker thread, and why. */
export interface LapackThreadsStatus {
  threads: 1 | 2;
  reason: string;
}

/** Timeouts for the worker's start and for one job. Past them, this thread stops using the worker. */
const START_TIMEOUT_MS = 20_000;
const JOB_TIMEOUT_MS = 600_000;

interface RunningWorker {
  thread: Worker;
  words: Int32Array;
  errorBytes: SharedArrayBuffer;
  port: MessagePort;
  job: number;
}

let running: RunningWorker | null = null;
let starting: Promise<RunningWorker | null> | null = null;
let status: LapackThreadsStatus = { threads: 1, reason: 'not started (selectBackend starts it)' };
let startFailure: string | null = null;
let paused = false;

/** Returns the current status: two threads once the worker is ready, else the reason for one. */
export function lapackThreadsStatus(): LapackThreadsStatus {
  return status;
}

/**
 * Keeps every item on this thread while `pause` is true, with the worker left asleep, so a
 * measurement can compare both settings in one process. Results can differ in the last bits.
 */
export function pauseLapackThreads(pause: boolean): void {
  paused = pause;
}

/** Returns why `blas` cannot share work with a worker thread, or null when it can. */
function reasonForOneThread(blas: NativeBlas): string | null {
  if (blas.status.parallelism === 'sequential') {
    return 'OpenBLAS is a sequential build, which may not be called from two threads at once';
  }
  if (blas.status.threads < 2) return 'OpenBLAS runs on one thread (EBFLOW_BLAS_THREADS)';
  const kernelThreads = requestedKernelThreads();
  if (typeof kernelThreads === 'string') return kernelThreads;
  if (kernelThreads < 2) {
    return (process.env.EBFLOW_WASM_THREADS ?? '').trim() === '' ? 'this machine has one core' : 'one thread requested (EBFLOW_WASM_THREADS=1)';
  }
  return null;
}

/**
 * Starts the worker when `blas` allows it (see the module's comment) and resolves with the
 * status that results record, once the worker has bound the library (about 50 ms) or failed.
 * `selectBackend` calls it. Until it has run, `runLapack` keeps every item on this thread.
 */
export async function startLapackThreads(blas: NativeBlas | null): Promise<LapackThreadsStatus> {
  if (blas === null) {
    status = { threads: 1, reason: 'OpenBLAS is not loaded' };
    return status;
  }
  const reason = reasonForOneThread(blas);
  if (reason !== null) {
    status = { threads: 1, reason };
    return status;
  }
  if (running === null) {
    // Concurrent calls share one start, so a second call cannot start a second worker and lose it.
    starting ??= startWorker(blas).finally(() => {
      starting = null;
    });
    running = await starting;
  }
  status =
    running === null
      ? { threads: 1, reason: startFailure ?? 'the LAPACK worker thread is not running' }
      : { threads: 2, reason: 'this thread and one LAPACK worker thread, one OpenBLAS thread each' };
  return status;
}

/** Starts the worker and resolves with it once it has bound the library, or with null and the reason in `startFailure`. */
async function startWorker(blas: NativeBlas): Promise<RunningWorker | null> {
  const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
  const errorBytes = new SharedArrayBuffer(ERROR_BYTES);
  const words = new Int32Array(control);
  const { port1, port2 } = new MessageChannel();
  const data: LapackWorkerData = {
    control,
    errorBytes,
    port: port2,
    library: blas.status.library,
    openmp: blas.status.parallelism === 'openmp',
    lu: blas.status.lu ?? 'lapack',
  };
  let thread: Worker;
  try {
    thread = new Worker(new URL('./lapack-worker.js', import.meta.url), { workerData: data, transferList: [port2], execArgv: workerExecArgv() });
  } catch (error) {
    startFailure = `the LAPACK worker thread could not be created (${messageOf(error)})`;
    return null;
  }
  // The worker sleeps in Atomics.wait between jobs, so it must not keep the process alive.
  thread.unref();
  port1.unref();
  const failure = await new Promise<string | null>((resolve) => {
    const timer = setTimeout(() => finish(`it did not start within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    const onError = (error: Error): void => finish(messageOf(error));
    const onExit = (code: number): void => finish(`it exited with code ${code} before binding OpenBLAS`);
    function finish(problem: string | null): void {
      clearTimeout(timer);
      thread.off('error', onError);
      thread.off('exit', onExit);
      resolve(problem);
    }
    thread.on('error', onError);
    thread.on('exit', onExit);
    const check = (): void => {
      const state = Atomics.load(words, STATE);
      // Still starting: the timer or the exit event reports the outcome.
      if (state === STARTING) return;
      finish(state === READY ? null : `it failed to bind OpenBLAS: ${readError(words, errorBytes).split('\n')[0]}`);
    };
    const waiting = (Atomics as unknown as AtomicsWithWaitAsync).waitAsync(words, STATE, STARTING, START_TIMEOUT_MS);
    if (typeof waiting.value !== 'string') void waiting.value.then(check);
    else check();
  });
  if (failure !== null) {
    startFailure = `the LAPACK worker thread is not running: ${failure}`;
    void thread.terminate();
    return null;
  }
  // A later exit of the thread is reported by the job that waits for it (see `waitForJob`).
  thread.on('error', () => undefined);
  return { thread, words, errorBytes, port: port1, job: 0 };
}

/** `Atomics.waitAsync` (Node 16 and later), which the project's TypeScript library target does not declare yet. */
interface AtomicsWithWaitAsync {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): { async: boolean; value: Promise<string> | string };
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0];
}

/** Returns the worker when calls with `blas` can use it now, else null (see `lapackThreadsStatus`). */
function workerFor(blas: NativeBlas): RunningWorker | null {
  if (running === null || reasonForOneThread(blas) !== null) return null;
  return running;
}

/**
 * Splits items of n×n work into the main thread's share and the worker's, balancing Σn³: the
 * largest first, each to the lighter side (the main thread on a tie). Returns the indices of each side.
 */
export function splitByCost(sizes: readonly number[]): { main: number[]; worker: number[] } {
  const order = sizes.map((n, index) => ({ n, index })).sort((a, b) => b.n - a.n || a.index - b.index);
  const main: number[] = [];
  const worker: number[] = [];
  let mainCost = 0;
  let workerCost = 0;
  for (const { n, index } of order) {
    if (mainCost <= workerCost) {
      main.push(index);
      mainCost += n ** 3;
    } else {
      worker.push(index);
      workerCost += n ** 3;
    }
  }
  return { main: main.sort((a, b) => a - b), worker: worker.sort((a, b) => a - b) };
}

/** Below this many floating-point operations for the worker's share, the handoff costs more than it saves. */
export const MIN_WORKER_OPERATIONS = 4e6;

/**
 * Runs `operation` on every item: 'factor' leaves the LU factors and pivots of sgetrf in place
 * (`blas.factorLu`), 'invert' replaces factors by the inverse (`blas.invertLu`). With the worker, it takes
 * the worker's items of `splitByCost` while this thread runs the others, each on one OpenBLAS
 * thread. Without it, all items run on this thread with the threads that `blas` chooses. Returns LAPACK's info per item. The matrices
 * and pivots must be views of SharedArrayBuffers when the worker may take them. Throws a
 * RangeError, before any item runs, when an item has fewer than n·n values or n pivots.
 * Operations: 2n³/3 per item to factor, 4n³/3 to invert.
 */
export function runLapack(blas: NativeBlas, operation: 'factor' | 'invert', items: readonly LapackItem[]): Int32Array {
  // LAPACK writes n·n values and n pivots through raw pointers, so a short array on either thread would corrupt memory.
  items.forEach(checkItem);
  const infos = new Int32Array(items.length);
  const runOnMain = (index: number): void => {
    const { n, matrix, pivots } = items[index];
    infos[index] = operation === 'factor' ? blas.factorLu(n, matrix, pivots) : blas.invertLu(n, matrix, pivots);
  };
  const split = splitByCost(items.map((item) => item.n));
  const workerOperations = split.worker.reduce((sum, index) => sum + (operation === 'factor' ? 2 / 3 : 4 / 3) * items[index].n ** 3, 0);
  const worker = items.length >= 2 && workerOperations >= MIN_WORKER_OPERATIONS && !paused ? workerFor(blas) : null;
  if (worker === null) {
    for (let index = 0; index < items.length; index++) runOnMain(index);
    return infos;
  }
  for (const index of split.worker) {
    const { n, matrix, pivots } = items[index];
    // A view of an ordinary ArrayBuffer would reach the worker as a copy, and its results would be lost.
    if (!(matrix.buffer instanceof SharedArrayBuffer) || !(pivots.buffer instanceof SharedArrayBuffer)) {
      throw new TypeError(`runLapack: item ${index} (${n}×${n}) is not in a SharedArrayBuffer; allocate its matrix and pivots with new SharedArrayBuffer(...).`);
    }
  }
  const job: LapackJob = {
    operation,
    items: split.worker.map((index) => items[index]),
    infos: new Int32Array(new SharedArrayBuffer(4 * split.worker.length)),
  };
  // A pthreads build keeps one thread count for all callers, the one this thread set last, so
  // this thread drops it to one before it posts the job. The worker's calls would otherwise start
  // on every OpenBLAS thread. An OpenMP build takes the worker's own setting of 1 either way.
  blas.onOneThread(() => {
    worker.port.postMessage(job);
    worker.job += 1;
    Atomics.store(worker.words, POSTED, worker.job);
    Atomics.notify(worker.words, POSTED);
    let mainError: unknown = null;
    try {
      split.main.forEach(runOnMain);
    } catch (error) {
      mainError = error;
    }
    waitForJob(worker);
    if (Atomics.load(worker.words, JOB_FAILED) !== 0) {
      Atomics.store(worker.words, JOB_FAILED, 0);
      // When both threads failed, the main thread's error comes first and the worker's follows it.
      const workerMessage = `LAPACK worker thread: ${readError(worker.words, worker.errorBytes)}`;
      if (mainError !== null) throw new Error(`${messageOf(mainError)}; and the ${workerMessage}`, { cause: mainError });
      throw new Error(workerMessage);
    }
    if (mainError !== null) throw mainError;
  });
  split.worker.forEach((index, position) => (infos[index] = job.infos[position]));
  addLapackOperations(workerOperations);
  return infos;
}

/** Throws a RangeError when n is not an integer ≥ 0 or when `item` has fewer than n·n values or n pivots. */
function checkItem(item: LapackItem, index: number): void {
  const { n, matrix, pivots } = item;
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`runLapack: item ${index} has size n = ${n}; n must be an integer ≥ 0.`);
  }
  if (matrix.length < n * n || pivots.length < n) {
    throw new RangeError(`runLapack: item ${index} needs ${n * n} values and ${n} pivots, received ${matrix.length} and ${pivots.length}.`);
  }
}

/** The maximum single sleep while waiting for a job, so a worker that stopped is noticed within it. */
const WAIT_SLICE_MS = 1000;

function waitForJob(worker: RunningWorker): void {
  const started = performance.now();
  for (;;) {
    const finished = Atomics.load(worker.words, FINISHED);
    if (finished === worker.job) return;
    const waited = performance.now() - started;
    let problem: string | null = null;
    // The worker marks itself FAILED on its way out, since this thread cannot see its 'exit' event while it waits here.
    if (Atomics.load(worker.words, STATE) !== READY) problem = `the LAPACK worker thread stopped during job ${worker.job}`;
    else if (waited > JOB_TIMEOUT_MS) problem = `the LAPACK worker thread did not finish job ${worker.job} within ${JOB_TIMEOUT_MS / 1000} s`;
    if (problem !== null) {
      running = null;
      startFailure = problem;
      status = { threads: 1, reason: problem };
      void worker.thread.terminate();
      throw new Error(`runLapack: ${problem}; later calls run on this thread.`);
    }
    Atomics.wait(worker.words, FINISHED, finished, Math.min(WAIT_SLICE_MS, JOB_TIMEOUT_MS - waited));
  }
}

/** Stops the worker (tests; the process exit does not need it). A later call starts a new one. */
export async function stopLapackThreads(): Promise<void> {
  // A start in progress finishes first, so that its worker is stopped too. The starting call reports its errors.
  if (starting !== null) await starting.catch(() => null);
  const worker = running;
  running = null;
  startFailure = null;
  status = { threads: 1, reason: 'stopped' };
  if (worker === null) return;
  Atomics.store(worker.words, POSTED, STOP_JOB);
  Atomics.notify(worker.words, POSTED);
  await worker.thread.terminate();
}
