/**
 * The project's WebAssembly kernels on every core, for the wasm backend.
 *
 * tfjs-backend-wasm computes on one thread in Node. OpenBLAS runs a step's matrix products on
 * every core, but the element-wise work between them (the smooth leaky ReLU, the parameter update,
 * preprocessing) ran on one: about 6 ms of a 15 ms FC FDSSM step at D = 784 on the 2-vCPU AMD
 * EPYC. Here that work is split over this thread and worker threads.
 *
 * The workers need the tensors' memory. So `configureKernelThreads`, called before the backend
 * initialises, makes the backend load a copy of its SIMD binary whose memory is shared. That copy
 * is written by `npm run build` (scripts/build-wasm.mjs), and the backend computes with it
 * exactly as before. Every thread then instantiates the `.shared.wasm` variant of a kernel file
 * on that memory. A call on another thread is a job of byte offsets and scalars in a control
 * block (`protocol.ts`).
 *
 * Callers split work into parts that write disjoint memory, such as row ranges of a batch or whole
 * tensors, so that the results are the same, to the bit, whether the parts run at once or one
 * after another. A handoff costs about 0.06 ms (wake-up and notification), so callers split only
 * work of more than about 0.1 ms per part.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import { backendMemory, compiledModule, wasmKernels } from '../wasm-memory.js';
import { workerExecArgv } from './exec-argv.js';
import {
  CALL_COUNT,
  CONTROL_BYTES,
  controlViews,
  ERROR_LENGTH,
  FAILED,
  FINISHED,
  kernelIndex,
  KERNELS,
  MAX_ARGUMENTS,
  MAX_CALLS,
  POSTED,
  READY,
  SLOT_WORDS,
  STATE,
  STOP,
  type ControlViews,
  type KernelFile,
  type KernelName,
} from './protocol.js';

/**
 * The threads of the project's WebAssembly kernels, as recorded with every result. The object
 * that `startKernelThreads` returns is updated in place when a worker stops taking jobs, so a
 * record written later counts only the threads still computing.
 */
export interface KernelThreadStatus {
  /** Threads that split the kernels' work: 1 (this thread) or more. */
  threads: number;
  /** Whether the wasm backend's memory is shared, which the worker threads need. */
  sharedMemory: boolean;
  /** The reason for this thread count. */
  reason: string;
}

/** One call of an exported kernel function; `args` are byte offsets, counts and scalars. */
export interface KernelCall {
  file: KernelFile;
  name: KernelName;
  args: readonly number[];
}

/** The maximum thread count `EBFLOW_WASM_THREADS` accepts. */
export const MAX_KERNEL_THREADS = 16;
/** How long this thread waits for a worker's job before it gives up, ms. */
const JOB_TIMEOUT_MS = 60_000;

const SHARED_BACKEND_BINARY = new URL('../kernels/tfjs-backend-wasm-simd.shared.wasm', import.meta.url);

let status: KernelThreadStatus = { threads: 1, sharedMemory: false, reason: 'not configured: the wasm backend was not selected through selectBackend' };

interface KernelWorker {
  thread: Worker;
  views: ControlViews;
  posted: number;
  /** The reason the worker takes no more jobs (it failed, timed out, exited or was stopped), or null while it takes them. */
  failure: string | null;
}
/** The thread count `configureKernelThreads` prepared the backend for. */
let requestedThreads = 1;
let workers: KernelWorker[] = [];
let workersMemory: object | null = null;
let jobsOnWorkers = 0;

/**
 * Reads the thread count from `EBFLOW_WASM_THREADS` (default: the machine's available
 * parallelism, at most `MAX_KERNEL_THREADS`). Returns an error message naming the value and the
 * fix for a value that is not an integer from 1 to `MAX_KERNEL_THREADS`.
 */
export function requestedKernelThreads(environment: NodeJS.ProcessEnv = process.env): number | string {
  const raw = environment.EBFLOW_WASM_THREADS?.trim();
  if (raw === undefined || raw === '') return Math.min(availableParallelism(), MAX_KERNEL_THREADS);
  // Decimal digits only: Number() would also take "0x2" or "1e1".
  const value = /^[0-9]+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= 1 && value <= MAX_KERNEL_THREADS)) {
    return `EBFLOW_WASM_THREADS is ${JSON.stringify(raw)}, not an integer from 1 to ${MAX_KERNEL_THREADS}; unset it to use every core, or set 1 to keep the kernels on one thread`;
  }
  return value;
}

/**
 * Prepares the wasm backend for kernel threads; call once before it initialises. With more
 * than one requested thread and the shared-memory binary present, points tfjs-backend-wasm at
 * that binary (`setWasmPaths`). Returns the status, which `startKernelThreads` completes.
 */
export function configureKernelThreads(threads: number, setWasmPaths: (paths: Record<string, string>) => void, backendFolder: string): KernelThreadStatus {
  requestedThreads = 1;
  if (threads <= 1) {
    status = { threads: 1, sharedMemory: false, reason: 'one thread requested (EBFLOW_WASM_THREADS, or a single core)' };
    return status;
  }
  if (!existsSync(SHARED_BACKEND_BINARY)) {
    status = { threads: 1, sharedMemory: false, reason: `${fileURLToPath(SHARED_BACKEND_BINARY)} is missing; run \`npm run build\`` };
    return status;
  }
  setWasmPaths({
    'tfjs-backend-wasm-simd.wasm': fileURLToPath(SHARED_BACKEND_BINARY),
    'tfjs-backend-wasm.wasm': `${backendFolder}/tfjs-backend-wasm.wasm`,
    'tfjs-backend-wasm-threaded-simd.wasm': `${backendFolder}/tfjs-backend-wasm-threaded-simd.wasm`,
  });
  requestedThreads = threads;
  status = { threads, sharedMemory: false, reason: 'waiting for the wasm backend' };
  return status;
}

/**
 * Starts the worker threads once the wasm backend is initialised, and returns the status (see
 * `KernelThreadStatus` for its later updates). Keeps one thread when the backend's memory
 * turned out not to be shared (the backend fell back to a binary without SIMD, say).
 */
export function startKernelThreads(): KernelThreadStatus {
  if (requestedThreads <= 1) return status;
  const memory = backendMemory();
  if (memory === null) {
    status = { threads: 1, sharedMemory: false, reason: 'the wasm backend is not active' };
    return status;
  }
  if (!(memory.buffer instanceof SharedArrayBuffer)) {
    status = { threads: 1, sharedMemory: false, reason: 'the wasm backend loaded a binary without shared memory (no SIMD support?)' };
    return status;
  }
  ensureWorkers(memory, requestedThreads - 1);
  const working = workingWorkerCount();
  status = { threads: 1 + working, sharedMemory: true, reason: workersReason(working) };
  return status;
}

/** Returns the current status of the kernel threads. */
export function kernelThreadStatus(): KernelThreadStatus {
  return status;
}

let paused = false;

/**
 * Keeps the kernels on this thread while `paused` is true, with the workers left running, so
 * that a measurement can compare both settings in one process. The results do not change.
 */
export function pauseKernelThreads(pause: boolean): void {
  paused = pause;
}

/**
 * Returns the number of parts into which a caller should split `work` units (values, rows),
 * giving each part at least `minimumPerPart` units: 1 without worker threads or for small work.
 */
export function partCount(work: number, minimumPerPart: number): number {
  if (status.threads <= 1 || !status.sharedMemory || paused) return 1;
  return Math.max(1, Math.min(status.threads, Math.floor(work / minimumPerPart)));
}

/**
 * Splits [0, count) into `parts` consecutive ranges of nearly equal size, with every boundary a
 * multiple of `multiple` (except the end). Returns [start, end) pairs; empty ranges are dropped.
 */
export function splitRange(count: number, parts: number, multiple = 1): [number, number][] {
  const ranges: [number, number][] = [];
  let start = 0;
  for (let part = 1; part <= parts; part++) {
    const end = part === parts ? count : Math.min(count, Math.round((count * part) / parts / multiple) * multiple);
    if (end > start) ranges.push([start, end]);
    start = Math.max(start, end);
  }
  return ranges;
}

/**
 * Runs `parts[0]` on this thread and every other part on a worker thread, at once, and returns
 * the results of each part's calls (0 for kernels without a result). The calls of one part run
 * in order. A part whose worker is not ready (still starting, or failed), or that has more than
 * `MAX_CALLS` calls, runs here after `parts[0]`. Parts must not write memory that other parts
 * read or write.
 *
 * Throws when a worker reports an error or does not finish within a minute; the message names
 * the kernel threads and the fix.
 */
export function runInParallel(parts: readonly (readonly KernelCall[])[]): number[][] {
  parts.forEach(checkPart);
  const memory = backendMemory();
  const available = memory !== null && memory === workersMemory ? workers.filter(isReady) : [];
  // A part of more calls than a control block carries runs here.
  const assigned: (KernelWorker | null)[] = parts.map((calls, index) => (index === 0 || calls.length > MAX_CALLS ? null : (available[index - 1] ?? null)));
  parts.forEach((calls, index) => {
    const worker = assigned[index];
    if (worker !== null) post(worker, calls);
  });

  const results: number[][] = parts.map(() => []);
  let failure: unknown = null;
  try {
    parts.forEach((calls, index) => {
      if (assigned[index] === null) results[index] = runHere(calls);
    });
  } catch (error) {
    failure = error;
  }
  // Every posted job is collected, even after an error here, so that no worker still reads its
  // control block when the next job is written there.
  parts.forEach((calls, index) => {
    const worker = assigned[index];
    if (worker === null) return;
    try {
      results[index] = collect(worker, calls.length);
    } catch (error) {
      failure ??= error;
    }
  });
  if (failure !== null) throw failure;
  return results;
}

/**
 * Runs a kernel that treats `rows` rows of `rowSize` values independently, with the rows split
 * into consecutive ranges over the threads when each range gets at least `minimumValuesPerPart`
 * values. `argsFor(first, count)` returns the kernel's arguments for rows [first, first + count),
 * with its pointers moved to row `first`. The result equals one call over every row, to the bit.
 */
export function runByRows(
  file: KernelFile,
  name: KernelName,
  rows: number,
  rowSize: number,
  minimumValuesPerPart: number,
  argsFor: (first: number, count: number) => number[],
): void {
  const ranges = splitRange(rows, partCount(rows * rowSize, minimumValuesPerPart));
  if (ranges.length <= 1) {
    runHere([{ file, name, args: argsFor(0, rows) }]);
    return;
  }
  runInParallel(ranges.map(([first, end]) => [{ file, name, args: argsFor(first, end - first) }]));
}

/**
 * Returns `pointer` moved by `bytes`, or 0 for the absent pointer 0 (kernels skip an array whose
 * pointer is 0).
 */
export function movePointer(pointer: number, bytes: number): number {
  return pointer === 0 ? 0 : pointer + bytes;
}

/** Returns the number of jobs run on worker threads since the process started (for tests). */
export function workerJobCount(): number {
  return jobsOnWorkers;
}

/** Stops the worker threads; `startKernelThreads` starts new ones. Used by tests. */
export function stopKernelThreads(): void {
  for (const worker of workers) {
    worker.failure ??= 'stopped';
    Atomics.store(worker.views.header, POSTED, STOP);
    Atomics.notify(worker.views.header, POSTED);
  }
  workers = [];
  workersMemory = null;
}

function ensureWorkers(memory: object, count: number): void {
  if (workersMemory === memory && workers.length === count) return;
  stopKernelThreads();
  workersMemory = memory;
  for (let index = 0; index < count; index++) {
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const thread = new Worker(new URL('./worker.js', import.meta.url), { workerData: { memory, control, modules: sharedModules() }, execArgv: workerExecArgv() });
    // An idle worker sleeps in Atomics.wait; it must not keep the process alive.
    thread.unref();
    const worker: KernelWorker = { thread, views: controlViews(control), posted: 0, failure: null };
    // A worker that cannot instantiate the kernels reports why in its control block and exits.
    thread.on('error', (error) => retire(worker, error.message));
    thread.on('exit', (code) => retire(worker, reportedError(worker) ?? `exited with code ${code}`));
    workers.push(worker);
  }
}

/**
 * Takes a worker out of service, logs why, and lowers the thread count in `status`. Does
 * nothing for a worker already out of service, such as one that `stopKernelThreads` stopped.
 */
function retire(worker: KernelWorker, reason: string): void {
  if (worker.failure !== null) return;
  worker.failure = reason;
  console.error(`kernel threads: worker thread ${workers.indexOf(worker) + 1} takes no more jobs (${reason}); its share of the work now runs on the main thread.`);
  const working = workingWorkerCount();
  status.threads = 1 + working;
  status.reason = `${workersReason(working)}, since a worker thread stopped (${reason})`;
}

function workingWorkerCount(): number {
  return workers.filter((worker) => worker.failure === null).length;
}

function workersReason(count: number): string {
  return count === 0 ? 'this thread alone' : `this thread and ${count} worker thread${count === 1 ? '' : 's'}`;
}

/** Returns the error message a worker wrote to its control block, or null when it wrote none. */
function reportedError(worker: KernelWorker): string | null {
  const { header, error } = worker.views;
  if (Atomics.load(header, STATE) !== FAILED) return null;
  return new TextDecoder().decode(error.slice(0, header[ERROR_LENGTH]));
}

/** Returns the compiled `.shared.wasm` module of every kernel file a worker runs, by file name. */
function sharedModules(): Record<string, object> {
  const files = [...new Set(KERNELS.map((kernel) => kernel.file))];
  return Object.fromEntries(files.map((file) => [file, compiledModule(new URL(`../kernels/${file}.shared.wasm`, import.meta.url), 'startKernelThreads')]));
}

function isReady(worker: KernelWorker): boolean {
  return worker.failure === null && Atomics.load(worker.views.header, STATE) === READY;
}

function runHere(calls: readonly KernelCall[]): number[] {
  return calls.map((call) => {
    const { kernels } = wasmKernels<Record<string, (...args: number[]) => number | undefined>>(`${call.file}.wasm`, 'runInParallel');
    const result = kernels[call.name](...call.args);
    return typeof result === 'number' ? result : 0;
  });
}

/** Throws, before any job is posted, for a call that a control block cannot carry. */
function checkPart(calls: readonly KernelCall[]): void {
  for (const call of calls) {
    kernelIndex(call.file, call.name);
    if (call.args.length > MAX_ARGUMENTS) throw new RangeError(`runInParallel: ${call.file}.${call.name} has ${call.args.length} arguments, more than ${MAX_ARGUMENTS}.`);
  }
}

function post(worker: KernelWorker, calls: readonly KernelCall[]): void {
  const { header, calls: slots } = worker.views;
  calls.forEach((call, index) => {
    const slot = index * SLOT_WORDS;
    slots[slot] = kernelIndex(call.file, call.name);
    slots[slot + 1] = call.args.length;
    slots.set(call.args, slot + 2);
  });
  header[CALL_COUNT] = calls.length;
  worker.posted = worker.posted === 2 ** 30 ? 1 : worker.posted + 1;
  Atomics.store(header, POSTED, worker.posted);
  Atomics.notify(header, POSTED);
}

/**
 * Waits for a worker's job and returns its results. Throws when the worker reports an error or
 * the job takes longer than `JOB_TIMEOUT_MS`.
 *
 * NOTE: a worker thread that dies during a job (not a kernel error, which it reports) is noticed
 * only at the timeout, because its 'exit' event needs the event loop this wait blocks.
 */
function collect(worker: KernelWorker, count: number): number[] {
  const { header } = worker.views;
  const started = performance.now();
  // The wait compares against the value just checked. Reloading the word for the wait could see
  // the finished job after its notification, and then sleep through the whole timeout.
  let finished = Atomics.load(header, FINISHED);
  while (finished !== worker.posted) {
    Atomics.wait(header, FINISHED, finished, 100);
    finished = Atomics.load(header, FINISHED);
    if (finished !== worker.posted && performance.now() - started > JOB_TIMEOUT_MS) {
      retire(worker, `job not finished within ${JOB_TIMEOUT_MS / 1000} s`);
      throw new Error(`runInParallel: a kernel worker thread did not finish its job within ${JOB_TIMEOUT_MS / 1000} s; set EBFLOW_WASM_THREADS=1 to keep the kernels on one thread.`);
    }
  }
  jobsOnWorkers += 1;
  const message = reportedError(worker);
  if (message !== null) {
    retire(worker, message);
    throw new Error(`runInParallel: a kernel worker thread failed: ${message}; set EBFLOW_WASM_THREADS=1 to keep the kernels on one thread.`);
  }
  return Array.from(worker.views.results.subarray(0, count));
}
