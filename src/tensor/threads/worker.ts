/**
 * The body of a kernel worker thread, started by `pool.ts`. It instantiates the shared-memory
 * variants of the project's kernels, compiled by the main thread, on the wasm backend's memory.
 * Then it runs the jobs posted to its control block (see `protocol.ts`) until the stop job.
 * It sleeps in `Atomics.wait` between jobs, so an idle worker takes no processor time from
 * OpenBLAS's threads.
 */
import { workerData } from 'node:worker_threads';

import { CALL_COUNT, controlViews, ERROR_LENGTH, FAILED, FINISHED, KERNELS, POSTED, READY, SLOT_WORDS, STATE, STOP } from './protocol.js';

interface WebAssemblyApi {
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const webAssembly = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

// The modules are the main thread's compilations, so this thread runs the code V8 optimised there.
const { memory, control, modules } = workerData as { memory: object; control: SharedArrayBuffer; modules: Record<string, object> };
const views = controlViews(control);
const { header } = views;

type KernelFunction = (...args: number[]) => number | undefined;
const functions: (KernelFunction | undefined)[] = KERNELS.map(() => undefined);
const instances = new Map<string, Record<string, unknown>>();

function kernelFunction(index: number): KernelFunction {
  const cached = functions[index];
  if (cached !== undefined) return cached;
  const kernel = KERNELS[index];
  if (kernel === undefined) throw new Error(`kernel index ${index} is not in KERNELS`);
  let exports = instances.get(kernel.file);
  if (exports === undefined) {
    const module = modules[kernel.file];
    if (module === undefined) throw new Error(`no compiled module was passed for ${kernel.file}`);
    exports = new webAssembly.Instance(module, { env: { memory } }).exports;
    instances.set(kernel.file, exports);
  }
  const found = exports[kernel.name];
  if (typeof found !== 'function') throw new Error(`${kernel.file}.shared.wasm exports no function ${kernel.name}`);
  functions[index] = found as KernelFunction;
  return found as KernelFunction;
}

function runJob(): void {
  const count = header[CALL_COUNT];
  for (let call = 0; call < count; call++) {
    const slot = call * SLOT_WORDS;
    const run = kernelFunction(views.calls[slot]);
    const argumentCount = views.calls[slot + 1];
    const args = Array.from(views.calls.subarray(slot + 2, slot + 2 + argumentCount));
    const result = run(...args);
    views.results[call] = typeof result === 'number' ? result : 0;
  }
}

function fail(error: unknown): void {
  const message = new TextEncoder().encode(error instanceof Error ? error.message : String(error)).subarray(0, views.error.length);
  views.error.set(message);
  header[ERROR_LENGTH] = message.length;
  Atomics.store(header, STATE, FAILED);
}

try {
  // Compiled before the first job, so that the first jobs do not wait on compilation.
  KERNELS.forEach((_, index) => kernelFunction(index));
  Atomics.store(header, STATE, READY);
} catch (error) {
  fail(error);
}

let seen = 0;
while (Atomics.load(header, STATE) === READY) {
  Atomics.wait(header, POSTED, seen);
  const job = Atomics.load(header, POSTED);
  if (job === seen) continue;
  if (job === STOP) break;
  try {
    runJob();
  } catch (error) {
    fail(error);
  }
  seen = job;
  Atomics.store(header, FINISHED, job);
  Atomics.notify(header, FINISHED);
}
