/**
 * The shared control block through which this thread hands WebAssembly kernel calls to a worker
 * thread (`pool.ts` writes it, `worker.ts` reads it). Both threads run the same compiled kernels
 * on the wasm backend's memory, which is shared (see `pool.ts`), so a call carries only byte
 * offsets, counts and scalars, and no tensor value is copied.
 *
 * Layout of one worker's SharedArrayBuffer:
 * - 8 int32 words: the job number this thread posted, the job number the worker finished, the
 *   worker's state (`WorkerState`), the number of calls in the job, the byte length of an error
 *   message, and three unused words;
 * - `MAX_CALLS` call slots of `SLOT_WORDS` float64 words: the kernel's index in `KERNELS`, the
 *   number of arguments, then the arguments (int32 arguments are exact in float64);
 * - `MAX_CALLS` float64 results (0 for kernels without a result);
 * - `ERROR_BYTES` bytes of a UTF-8 error message.
 */

/** The kernels a worker can run: `file` is the module's name under src/tensor/kernels/. */
export const KERNELS = [
  { file: 'elementwise', name: 'forward' },
  { file: 'elementwise', name: 'backward' },
  { file: 'elementwise', name: 'logit' },
  { file: 'fused-update', name: 'sum_squares' },
  { file: 'fused-update', name: 'rmsprop' },
  { file: 'fused-update', name: 'ema' },
] as const;

export type KernelFile = (typeof KERNELS)[number]['file'];
export type KernelName = (typeof KERNELS)[number]['name'];

/** Header word indices. */
export const POSTED = 0;
export const FINISHED = 1;
export const STATE = 2;
export const CALL_COUNT = 3;
export const ERROR_LENGTH = 4;
const HEADER_WORDS = 8;

/** Values of a worker's state word. */
export const STARTING = 0;
export const READY = 1;
export const FAILED = 2;

/** The job number that stops a worker. */
export const STOP = -1;

/** Calls per job: a model's parameter tensors split over two threads (a 10-block coupling flow has 262). */
export const MAX_CALLS = 1024;
export const MAX_ARGUMENTS = 14;
export const SLOT_WORDS = MAX_ARGUMENTS + 2;
export const ERROR_BYTES = 1024;

const CALLS_OFFSET = HEADER_WORDS * 4;
const RESULTS_OFFSET = CALLS_OFFSET + MAX_CALLS * SLOT_WORDS * 8;
const ERROR_OFFSET = RESULTS_OFFSET + MAX_CALLS * 8;
export const CONTROL_BYTES = ERROR_OFFSET + ERROR_BYTES;

/** Typed views of one control block. */
export interface ControlViews {
  header: Int32Array;
  calls: Float64Array;
  results: Float64Array;
  error: Uint8Array;
}

export function controlViews(buffer: SharedArrayBuffer): ControlViews {
  return {
    header: new Int32Array(buffer, 0, HEADER_WORDS),
    calls: new Float64Array(buffer, CALLS_OFFSET, MAX_CALLS * SLOT_WORDS),
    results: new Float64Array(buffer, RESULTS_OFFSET, MAX_CALLS),
    error: new Uint8Array(buffer, ERROR_OFFSET, ERROR_BYTES),
  };
}

/** Returns the index of a kernel in `KERNELS`. Throws for a kernel that is not listed. */
export function kernelIndex(file: KernelFile, name: KernelName): number {
  const index = KERNELS.findIndex((kernel) => kernel.file === file && kernel.name === name);
  if (index < 0) throw new Error(`kernel threads: ${file}.${name} is not in KERNELS; add it to src/tensor/threads/protocol.ts.`);
  return index;
}
