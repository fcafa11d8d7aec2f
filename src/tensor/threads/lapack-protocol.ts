/**
 * The control block and messages through which `lapack-threads.ts` hands LAPACK work to the
 * thread of `lapack-worker.ts`.
 *
 * The control block is a SharedArrayBuffer of `CONTROL_WORDS` int32 words. They contain the job
 * number the main thread posted, the job number the worker finished, the worker's state, whether
 * the last job failed, and the byte length of the error message. The message itself is kept in a
 * second buffer of `ERROR_BYTES` bytes. The matrices and pivots of a job travel in a `LapackJob`
 * message.
 */
import type { MessagePort } from 'node:worker_threads';

export const POSTED = 0;
export const FINISHED = 1;
export const STATE = 2;
export const JOB_FAILED = 3;
export const ERROR_LENGTH = 4;
export const CONTROL_WORDS = 8;
export const ERROR_BYTES = 2048;

/** Values of the state word. */
export const STARTING = 0;
export const READY = 1;
export const FAILED = 2;

/** The job number that stops the worker. */
export const STOP_JOB = -1;

/** The `workerData` of `lapack-worker.ts`. */
export interface LapackWorkerData {
  control: SharedArrayBuffer;
  errorBytes: SharedArrayBuffer;
  port: MessagePort;
  /** The OpenBLAS library the main thread loaded, as it named it. */
  library: string;
  /** True for an OpenMP build, whose calls take their thread count from the calling thread. */
  openmp: boolean;
  /** The main thread's LU routine (`NativeBlas.status.lu`), which the worker must run too. */
  lu: 'recursive' | 'lapack';
}

/** One square matrix of a job, column-major, in shared memory. */
export interface LapackItem {
  n: number;
  /** n·n values, overwritten in place: the matrix before 'factor', its LU factors before 'invert'. */
  matrix: Float32Array;
  /** n pivot rows, 1-based: written by 'factor', read by 'invert'. */
  pivots: Int32Array;
}

/**
 * A job: 'factor' runs sgetrf (or the recursive LU of the same output) on each item, 'invert'
 * turns each factorisation into the inverse (`invertLu`, or sgetri with EBFLOW_LU=lapack).
 * `infos[i]` receives LAPACK's info for item i.
 */
export interface LapackJob {
  operation: 'factor' | 'invert';
  items: LapackItem[];
  infos: Int32Array;
}

/** Writes the message of `error` (cut to fit) and its length into the error buffer. */
export function writeError(words: Int32Array, errorBytes: SharedArrayBuffer, error: unknown): void {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  const encoded = new TextEncoder().encode(text).subarray(0, errorBytes.byteLength);
  new Uint8Array(errorBytes).set(encoded);
  Atomics.store(words, ERROR_LENGTH, encoded.length);
}

/** Reads the message that `writeError` left. */
export function readError(words: Int32Array, errorBytes: SharedArrayBuffer): string {
  const length = Atomics.load(words, ERROR_LENGTH);
  return new TextDecoder().decode(new Uint8Array(errorBytes).slice(0, length));
}
