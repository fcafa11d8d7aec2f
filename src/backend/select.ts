/**
 * Chooses the TensorFlow.js backend a run computes on, and records why faster ones were skipped.
 *
 * Automatic selection tries, in order: `@tensorflow/tfjs-node-gpu` (libtensorflow with CUDA),
 * `@tensorflow/tfjs-node` (libtensorflow on the CPU), the WebAssembly backend and the plain
 * JavaScript cpu backend, and keeps the first one that loads and initialises. The two native
 * packages are optional: they are imported dynamically, so their absence is an ordinary,
 * recorded outcome. The WebAssembly backend reads its `.wasm` binaries from
 * `node_modules/@tensorflow/tfjs-backend-wasm/dist/` and needs no network.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

import '../tensor/register-gradients.js';
import { checkBlasRequest, loadNativeBlas, nativeBlas, type BlasStatus } from '../tensor/native-blas.js';
import { configureKernelThreads, requestedKernelThreads, startKernelThreads, type KernelThreadStatus } from '../tensor/threads/pool.js';
import { startLapackThreads, type LapackThreadsStatus } from '../tensor/threads/lapack-threads.js';
import { installWasmBlasKernel } from '../tensor/wasm-blas-kernel.js';
import { installSharedIdentityKernel } from '../tensor/wasm-identity.js';
import { installInPlaceSliceKernels } from '../tensor/wasm-slice.js';
import { installRowSumKernel } from '../tensor/wasm-sum.js';

/** A backend label: the two native packages both register the tfjs backend 'tensorflow'. */
export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

/** The values `--backend` and `EBFLOW_BACKEND` accept. */
export type BackendRequest = 'auto' | 'gpu' | 'node' | 'wasm' | 'cpu';

export const BACKEND_REQUESTS: readonly BackendRequest[] = ['auto', 'gpu', 'node', 'wasm', 'cpu'];

export interface BackendAttempt {
  name: string;
  /** The reason this backend could not be used; absent for the chosen one. */
  error?: string;
}

export interface BackendSelection {
  /** The chosen backend's label. */
  name: BackendName;
  /** The npm package that provides it. */
  packageName: string;
  /** Every backend tried, in order, ending with the chosen one. */
  attempts: BackendAttempt[];
  /**
   * The engine of dense matrix products and LU factorisations: OpenBLAS (wasm backend only, see
   * `native-blas.ts`), or the backend itself with the reason.
   */
  blas: BlasStatus;
  /**
   * The threads of the project's WebAssembly kernels: this thread alone, or this thread and
   * worker threads on the backend's shared memory (wasm backend only, see `threads/pool.ts`).
   */
  kernelThreads: KernelThreadStatus;
  /**
   * The threads that factor and invert the matrices of one `sumLogAbsDet` call (ML's log-dets):
   * this thread alone, or it and a LAPACK worker thread (see `threads/lapack-threads.ts`).
   */
  lapackThreads: LapackThreadsStatus;
}

interface BackendCandidate {
  name: BackendName;
  request: Exclude<BackendRequest, 'auto'>;
  packageName: string;
  /** The name the package registers the backend under in tfjs-core. */
  tfjsName: string;
  /** Loads the package if it is not part of this module's static imports. */
  load?: () => Promise<unknown>;
  /** The fix a user can apply when this backend fails. */
  fix: string;
}

const CANDIDATES: readonly BackendCandidate[] = [
  {
    name: 'tensorflow-gpu',
    request: 'gpu',
    packageName: '@tensorflow/tfjs-node-gpu',
    tfjsName: 'tensorflow',
    load: () => importOptionalPackage('@tensorflow/tfjs-node-gpu'),
    fix:
      'install it with `npm install @tensorflow/tfjs-node-gpu@4.22.0` on a machine with network access, ' +
      'an NVIDIA GPU and CUDA (its install script downloads libtensorflow), or choose another backend',
  },
  {
    name: 'tensorflow',
    request: 'node',
    packageName: '@tensorflow/tfjs-node',
    tfjsName: 'tensorflow',
    load: () => importOptionalPackage('@tensorflow/tfjs-node'),
    fix:
      'install it with `npm install @tensorflow/tfjs-node@4.22.0` on a machine with network access ' +
      '(its install script downloads libtensorflow), or choose another backend',
  },
  {
    name: 'wasm',
    request: 'wasm',
    packageName: '@tensorflow/tfjs-backend-wasm',
    tfjsName: 'wasm',
    fix: 'reinstall dependencies with `npm ci` so node_modules/@tensorflow/tfjs-backend-wasm/dist contains the .wasm files',
  },
  {
    name: 'cpu',
    request: 'cpu',
    packageName: '@tensorflow/tfjs-backend-cpu',
    tfjsName: 'cpu',
    fix: 'reinstall dependencies with `npm ci`',
  },
];

/**
 * A backend request that cannot be met as given: an unknown name, an invalid EBFLOW_BLAS or
 * EBFLOW_BLAS_THREADS, or a requested backend that does not load. The message names the value
 * and the fix, so command-line tools print it without a stack trace and exit with status 2.
 */
export class BackendRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendRequestError';
  }
}

/**
 * Selects and initialises a backend.
 *
 * `request` is one of `BACKEND_REQUESTS` (case and surrounding spaces are ignored); undefined or
 * an empty string means 'auto'. 'auto' tries every backend in order and records each failure;
 * a named request tries only that backend.
 *
 * Throws a BackendRequestError, whose message gives the reason and the fix, when the request is
 * not a known value, when EBFLOW_BLAS or EBFLOW_BLAS_THREADS is invalid, when the library that
 * EBFLOW_BLAS names fails to load, or when a requested backend fails to load or initialise.
 * Throws an Error when 'auto' finds no backend.
 */
export async function selectBackend(request?: string): Promise<BackendSelection> {
  tf.enableProdMode();
  const normalized = normalizeRequest(request);
  // Checked before any backend initialises: the wasm backend's module turns later uncaught errors into exit code 7.
  const blasProblem = checkBlasRequest();
  if (blasProblem !== null) throw new BackendRequestError(`selectBackend: ${blasProblem.replace(/\.+$/, '')}.`);
  const threads = requestedKernelThreads();
  if (typeof threads === 'string') throw new BackendRequestError(`selectBackend: ${threads}.`);
  const candidates = normalized === 'auto' ? CANDIDATES : CANDIDATES.filter((c) => c.request === normalized);
  const attempts: BackendAttempt[] = [];

  for (const candidate of candidates) {
    const failure = await tryCandidate(candidate);
    if (failure === null) {
      attempts.push({ name: candidate.name });
      const blas = await attachNativeBlas(candidate.name);
      const kernelThreads: KernelThreadStatus =
        candidate.name === 'wasm' ? startKernelThreads() : { threads: 1, sharedMemory: false, reason: `the ${candidate.name} backend runs its own kernels` };
      const lapackThreads = await startLapackThreads(blas.state === 'loaded' ? nativeBlas() : null);
      return { name: candidate.name, packageName: candidate.packageName, attempts, blas, kernelThreads, lapackThreads };
    }
    attempts.push({ name: candidate.name, error: failure });
    if (normalized !== 'auto') {
      throw new BackendRequestError(
        `selectBackend: the requested backend '${normalized}' (${candidate.packageName}) is not available: ` +
          `${failure}. To fix it, ${candidate.fix}.`,
      );
    }
  }

  const reasons = attempts.map((a) => `${a.name}: ${a.error}`).join('; ');
  throw new Error(`selectBackend: no backend could be initialised (${reasons}). Reinstall dependencies with \`npm ci\`.`);
}

/**
 * Returns the label of what computes a run: the backend's name, with "+openblas" when OpenBLAS
 * computes its matrix products. Timings are comparable only between equal labels.
 */
export function computeLabel(selection: Pick<BackendSelection, 'name' | 'blas'>): string {
  return selection.blas.state === 'loaded' ? `${selection.name}+openblas` : selection.name;
}

/**
 * Returns the backend request set by the environment variable `EBFLOW_BACKEND`, or undefined
 * when it is unset or empty. The value is checked by `selectBackend`, not here.
 */
export function backendRequestFromEnv(): string | undefined {
  const value = process.env.EBFLOW_BACKEND?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Switches tfjs to an already selectable backend and waits until it is ready; tests use it to
 * run one spec on several backends. Accepts a backend label ('wasm', 'cpu', 'tensorflow',
 * 'tensorflow-gpu'). Throws when the backend is unknown or fails to initialise.
 */
export async function useBackend(name: BackendName | string): Promise<void> {
  tf.enableProdMode();
  const candidate = CANDIDATES.find((c) => c.name === name);
  if (candidate === undefined) {
    const allowed = CANDIDATES.map((c) => `'${c.name}'`).join(', ');
    throw new Error(`useBackend: unknown backend '${name}'; expected one of ${allowed}.`);
  }
  const failure = await tryCandidate(candidate);
  if (failure !== null) {
    throw new Error(`useBackend: backend '${name}' (${candidate.packageName}) failed: ${failure}. To fix it, ${candidate.fix}.`);
  }
}

function normalizeRequest(request: string | undefined): BackendRequest {
  const value = (request ?? '').trim().toLowerCase();
  if (value === '') return 'auto';
  const known = BACKEND_REQUESTS.find((r) => r === value);
  if (known === undefined) {
    const allowed = BACKEND_REQUESTS.map((r) => `'${r}'`).join(', ');
    throw new BackendRequestError(
      `selectBackend: unknown backend request '${request}'; expected one of ${allowed} ` +
        '(set by --backend or the environment variable EBFLOW_BACKEND).',
    );
  }
  return known;
}

/**
 * Makes the wasm backend's Identity share storage (`wasm-identity.ts`), its Slice and SplitV
 * read in place (`wasm-slice.ts`) and its Sum over trailing axes use SIMD (`wasm-sum.ts`), loads OpenBLAS for it and routes its matrix products there.
 * Other backends keep their own. Throws a BackendRequestError when EBFLOW_BLAS names a library
 * that fails to load or EBFLOW_BLAS_THREADS exceeds the library's MAX_THREADS.
 */
async function attachNativeBlas(backend: BackendName): Promise<BlasStatus> {
  if (backend !== 'wasm') return { state: 'off', reason: `the ${backend} backend computes its own matrix products` };
  installSharedIdentityKernel();
  installInPlaceSliceKernels();
  installRowSumKernel();
  let status: BlasStatus;
  try {
    status = await loadNativeBlas();
  } catch (error) {
    // loadNativeBlas throws only for settings it cannot meet (a named library that fails to load,
    // or more threads than its MAX_THREADS), so the caller's settings need the fix.
    const message = error instanceof Error ? error.message : String(error);
    throw new BackendRequestError(`selectBackend: ${message.replace(/^loadNativeBlas: /, '')}`);
  }
  const blas = nativeBlas();
  if (blas !== null) installWasmBlasKernel(blas);
  return status;
}

/** Loads and initialises one backend; returns null on success or the reason it failed. */
async function tryCandidate(candidate: BackendCandidate): Promise<string | null> {
  if (candidate.load !== undefined) {
    try {
      await candidate.load();
    } catch (error) {
      return describeError(error);
    }
  }
  if (tf.findBackendFactory(candidate.tfjsName) == null) {
    return `${candidate.packageName} loaded but registered no tfjs backend named '${candidate.tfjsName}'`;
  }
  if (candidate.name === 'wasm') prepareWasmBackend();
  try {
    const initialised = await tf.setBackend(candidate.tfjsName);
    if (!initialised) {
      return `tfjs could not initialise the '${candidate.tfjsName}' backend (tfjs printed the cause on stderr)`;
    }
    await tf.ready();
  } catch (error) {
    return describeError(error);
  }
  return null;
}

let wasmPrepared = false;

/**
 * Points the wasm backend at its shared-memory binary before its first initialisation, when
 * `EBFLOW_WASM_THREADS` requests more than one thread (see `threads/pool.ts`). `selectBackend`
 * rejects an invalid value first, and `useBackend` keeps one thread for it.
 */
function prepareWasmBackend(): void {
  if (wasmPrepared) return;
  wasmPrepared = true;
  const threads = requestedKernelThreads();
  const backendFolder = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
  configureKernelThreads(typeof threads === 'number' ? threads : 1, setWasmPaths, backendFolder);
}

/** Imports a package whose presence is optional; the variable specifier keeps tsc from resolving it. */
async function importOptionalPackage(specifier: string): Promise<unknown> {
  return import(specifier);
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    const firstLine = error.message.split('\n')[0];
    return code === undefined ? firstLine : `${code}: ${firstLine}`;
  }
  return String(error);
}
