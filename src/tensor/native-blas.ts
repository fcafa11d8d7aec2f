/**
 * The system's OpenBLAS, called through the `koffi` foreign-function interface, for the dense
 * matrix products and LU factorisations of a step.
 *
 * The wasm backend multiplies matrices with XNNPACK on one thread, at about 16–30 GFLOP/s on the
 * project's 2-core AMD EPYC machine. On one core of that machine, OpenBLAS 0.3.21 (Debian's
 * `libopenblas0-openmp`) reached 50–70 GFLOP/s for the products of an FC step
 * ([100×784]·[784×784] and larger). PyTorch multiplies with that same library, so with it
 * both engines compare on equal matrix products.
 *
 * The library is optional. `loadNativeBlas` tries, in order, the request of `EBFLOW_BLAS`
 * (a library file, or `off`) or else the usual OpenBLAS names, and returns why nothing loaded
 * when nothing did. `koffi` itself is an optional dependency with prebuilt binaries in its npm
 * packages, so installing it downloads nothing else.
 *
 * OpenMP builds of OpenBLAS leave their worker threads waiting after a call, and Node tearing
 * down a process under those threads crashed it with SIGSEGV in libgomp at every exit we tried.
 * So when the library reports an OpenMP build, this module releases the OpenMP threads
 * (`omp_pause_resource_all`) on the process's 'exit' event.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isMainThread } from 'node:worker_threads';

import { readFirstProcessor } from '../platform/cpuinfo.js';
import { factorLu, invertLu, inverseWorkspaceLength, type LuKernels } from './recursive-lu.js';

/** A value of `EBFLOW_BLAS`: 'auto' (the default), 'off', or the path or file name of a library. */
export type BlasRequest = string;

/** The engine of dense matrix products, as recorded in every result. */
export type BlasStatus =
  | {
      state: 'loaded';
      library: string;
      threads: number;
      parallelism: 'sequential' | 'pthreads' | 'openmp';
      config: string;
      /**
       * The wait setting of idle OpenMP threads, from the environment when the library loaded:
       * 'GOMP_SPINCOUNT=1000' (the default, see `applyOpenMpWaitDefault`), or the user's
       * OMP_WAIT_POLICY and GOMP_SPINCOUNT settings.
       */
      waitPolicy: string;
      /** Calls with fewer floating-point operations than this run on one thread (`SINGLE_THREAD_BELOW_OPERATIONS`). */
      singleThreadBelow: number;
      /**
       * The kernels OpenBLAS runs, as `openblas_get_corename` names them ('SkylakeX', 'Haswell',
       * 'Prescott', …). Absent in older records.
       */
      core?: string;
      /**
       * The source of that core: OpenBLAS's own detection, the user's OPENBLAS_CORETYPE (with a
       * warning when OpenBLAS ignored it), or `chooseOpenBlasCore`.
       */
      coreChoice?: string;
      /**
       * The routine behind `factorLu`: 'recursive' (`recursive-lu.ts` on OpenBLAS's sgemm, strmm,
       * slaswp, and sgetrf and strtri for small blocks) or 'lapack' (the library's sgetrf,
       * chosen with EBFLOW_LU=lapack or when the library lacks one of those routines). With 'recursive',
       * inverses on one OpenBLAS thread (as with the LAPACK worker thread) use `invertLu` of
       * `recursive-lu.ts`, the others sgetri; with 'lapack', sgetri. Absent in older records,
       * which used sgetrf; records from before 2026-12-06 used sgetri for every inverse.
       */
      lu?: 'recursive' | 'lapack';
    }
  | { state: 'off'; reason: string };

/**
 * Calls with fewer floating-point operations than this run on one OpenBLAS thread, larger ones
 * on `status.threads`. On a 2-vCPU Intel Xeon (OpenBLAS 0.3.21, OpenMP build), a second thread
 * made the small calls of a D = 256 FC step slower: sgetrf and sgetri at n = 256 took 0.37 and
 * 0.77 ms on two threads against 0.30 and 0.72 ms on one. FC steps at D = 256 (ML, DSM, FDSSM)
 * took 5.7–6.2, 4.4–4.7 and 4.3–4.4 ms with every call on two threads, 4.9–5.0, 3.6–3.8 and
 * 3.8–3.9 ms with this cut, and 5.2–5.7, 4.4–4.9 and 4.2–4.5 ms with only the LAPACK calls on
 * one thread. So the small products gain from one thread too, although alone, with idle threads,
 * a [100×256]·[256×256] product ran faster on two. From D = 576 on, where the products of a
 * step reach 6.6·10⁷ operations, two threads were faster (ML 17.2 against 21.7 ms).
 */
export const SINGLE_THREAD_BELOW_OPERATIONS = 4e7;

/**
 * Matrices smaller than this are factored by sgetrf even when the recursive LU is on. At n = 256
 * the recursion took 0.27–0.36 ms against sgetrf's 0.25–0.33 ms (one thread, 2-vCPU Xeon, four
 * interleaved runs), while from n = 784 on it was as fast or faster.
 */
export const RECURSIVE_LU_MIN_SIZE = 512;

/**
 * The most OpenBLAS threads on which `invertLu` runs the recursive inverse. On more threads it
 * calls sgetri. On one thread, the library's strtri is slow and the recursion was faster at every size
 * from n = 256 to 3072 (`recursive-lu.ts`). On two threads, the inverse alone took 9.1–9.2 ms
 * against 7.9–8.2 ms with sgetri at n = 784, though 38 against 43 ms at 1536 (2-vCPU Xeon,
 * interleaved, 2026-12-06), so two threads keep sgetri.
 */
export const RECURSIVE_INVERSE_THREADS = 1;

/** The native routines this project calls; matrices are dense float32 arrays. */
export interface NativeBlas {
  readonly status: Extract<BlasStatus, { state: 'loaded' }>;
  /**
   * The OpenBLAS threads a call of `operations` floating-point operations runs on: 1 below
   * `SINGLE_THREAD_BELOW_OPERATIONS`, else `status.threads`. sgemm and the LAPACK calls set
   * them; the copies (`transposeCopy`, `scaledCopy`) leave them as they are.
   */
  threadsFor(operations: number): number;
  /** The thread count OpenBLAS reports now (`openblas_get_num_threads`), set by the last call. */
  currentThreads(): number;
  /**
   * Runs `action` with every call of this object on one OpenBLAS thread, then lets the next call
   * choose again. `lapack-threads.ts` uses it while a worker thread calls the library at the same
   * time, so the two threads do not compete for the two cores.
   */
  onOneThread<T>(action: () => T): T;
  /**
   * C ← op(A)·op(B) + β·C for row-major A, B and C with leading dimensions lda, ldb and ldc,
   * where op(A) is m×k, op(B) is k×n and C is m×n; β defaults to 0, which ignores C's old values.
   * 2mkn floating-point operations.
   */
  sgemm(
    transposeA: boolean,
    transposeB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    lda: number,
    b: Float32Array,
    ldb: number,
    c: Float32Array,
    ldc: number,
    beta?: number,
  ): void;
  /**
   * Factors the column-major n×n matrix `a` in place as P·A = L·U (LAPACK sgetrf), writing the
   * 1-based pivot rows to `pivots`. Returns LAPACK's info: 0, or i > 0 when U(i, i) is exactly
   * zero. 2n³/3 operations.
   */
  sgetrf(n: number, a: Float32Array, pivots: Int32Array): number;
  /**
   * Replaces the factorisation left by `sgetrf` with A⁻¹, column-major (LAPACK sgetri). Returns
   * LAPACK's info (i > 0 for a singular matrix). 4n³/3 operations.
   */
  sgetri(n: number, a: Float32Array, pivots: Int32Array): number;
  /**
   * Computes the factorisation of `sgetrf`, with the same output, by `factorLu` of
   * `recursive-lu.ts` when `status.lu` is 'recursive' and n ≥ `RECURSIVE_LU_MIN_SIZE` (most of it
   * in sgemm), else by sgetrf. Counted as sgetrf's 2n³/3 operations. The thread count is set once
   * for the whole call.
   */
  factorLu(n: number, a: Float32Array, pivots: Int32Array): number;
  /**
   * Replaces the factorisation left by `factorLu` or `sgetrf` with A⁻¹, column-major, like
   * sgetri: by `invertLu` of `recursive-lu.ts` when `status.lu` is 'recursive' and the call runs
   * on one OpenBLAS thread (`RECURSIVE_INVERSE_THREADS`), else by sgetri.
   * Returns 0, or i > 0 for a singular matrix (left as it was). Counted as sgetri's 4n³/3
   * operations. The thread count is set once for the whole call.
   */
  invertLu(n: number, a: Float32Array, pivots: Int32Array): number;
  /**
   * Overwrites the column-major n×c right-hand side `b` with the solution X of op(A)·X = B, from
   * the factorisation left by `sgetrf` (LAPACK sgetrs), where op transposes when `transpose` is
   * set. 2n²c operations.
   */
  sgetrs(transpose: boolean, n: number, columns: number, a: Float32Array, pivots: Int32Array, b: Float32Array): void;
  /**
   * Writes α·Aᵀ to `b` for the row-major rows×cols matrix `a`, so `b` is row-major cols×rows
   * (OpenBLAS's cblas_somatcopy, or a blocked JavaScript loop when the library lacks it).
   * O(rows·cols) memory traffic, no arithmetic beyond the scaling.
   */
  transposeCopy(rows: number, cols: number, alpha: number, a: Float32Array, b: Float32Array): void;
  /**
   * Writes α·a to `b` for the first `count` values (cblas_somatcopy without transposing, or a
   * JavaScript loop when the library lacks it). O(count) memory traffic.
   */
  scaledCopy(count: number, alpha: number, a: Float32Array, b: Float32Array): void;
}

/** Library names tried when `EBFLOW_BLAS` is unset or 'auto'. */
const DEFAULT_LIBRARIES = [
  'libopenblas.so.0',
  'libopenblas.so',
  '/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0',
  '/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0',
  'libopenblas.dylib',
  '/opt/homebrew/opt/openblas/lib/libopenblas.dylib',
  '/usr/local/opt/openblas/lib/libopenblas.dylib',
];

const CBLAS_ROW_MAJOR = 101;
const CBLAS_NO_TRANS = 111;
const CBLAS_TRANS = 112;

/** The subset of koffi's API used here; koffi is optional, so its types are not imported. */
export type KoffiFunction = (...args: unknown[]) => unknown;
export interface KoffiLibrary {
  func(signature: string): KoffiFunction;
  unload?(): void;
}
export interface KoffiModule {
  load(path: string): KoffiLibrary;
}

/**
 * Spin iterations of an idle OpenMP thread before it sleeps, unless the user set
 * OMP_WAIT_POLICY or GOMP_SPINCOUNT. libgomp's own default spins 300,000 iterations (about a
 * millisecond), and on the shared 2-core machine a spinning thread stalled ML steps from about
 * 60 to 570–660 ms. Sleeping at once (OMP_WAIT_POLICY=PASSIVE) costs a wake-up per parallel
 * region instead: two LU factorisations and inverses at D = 784 took 28.5 ms passive against
 * 17.3–17.7 ms with 1,000 to 100,000 spins, and an FC ML step 54–56 against 44–47 ms with 1,000
 * (project machine, idle, 2026-12-05).
 */
export const DEFAULT_GOMP_SPINCOUNT = 1000;

/**
 * Sets GOMP_SPINCOUNT to `DEFAULT_GOMP_SPINCOUNT` in `env` when neither it nor OMP_WAIT_POLICY
 * is set. libgomp reads both once, when it loads, so call this before loading OpenBLAS or
 * starting a process that will.
 */
export function applyOpenMpWaitDefault(env: NodeJS.ProcessEnv): void {
  if (env.OMP_WAIT_POLICY === undefined && env.GOMP_SPINCOUNT === undefined) {
    env.GOMP_SPINCOUNT = String(DEFAULT_GOMP_SPINCOUNT);
  }
}

/** Returns the OpenMP wait settings of `env`, such as 'GOMP_SPINCOUNT=1000', or 'libgomp default'. */
export function describeOpenMpWait(env: NodeJS.ProcessEnv): string {
  const settings = ['OMP_WAIT_POLICY', 'GOMP_SPINCOUNT']
    .filter((name) => env[name] !== undefined)
    .map((name) => `${name}=${env[name]}`);
  return settings.length === 0 ? 'libgomp default' : settings.join(' ');
}

/**
 * The kernels a DYNAMIC_ARCH OpenBLAS falls back to when it does not recognise the CPU. Debian's
 * OpenBLAS 0.3.21 did so on a 2-vCPU Intel Xeon of family 6, model 207, which has AVX-512: it
 * chose Prescott (SSE3) kernels, and D×D·D×D products at D = 784 ran at 74–78 GFLOP/s instead of
 * 259 with OPENBLAS_CORETYPE=SkylakeX (2 threads, `bench-linalg` medians, 2026-12-05). PyTorch
 * loads the same library, so its steps fall back the same way.
 */
export const FALLBACK_OPENBLAS_CORE = 'Prescott';

/** Returns the CPU feature flags of /proc/cpuinfo's first processor, or null where there is no such file. */
export function readCpuFlags(path = '/proc/cpuinfo'): Set<string> | null {
  const flags = readFirstProcessor(path)?.get('flags');
  return flags === undefined ? null : new Set(flags.split(/\s+/));
}

/**
 * Returns the OpenBLAS core whose kernels suit a CPU with `flags`: 'SkylakeX' with AVX-512
 * (F, CD, BW, DQ and VL), 'Haswell' with AVX2 and FMA, 'Sandybridge' with AVX, else null
 * (keep what OpenBLAS detected). The names are spelled as `openblas_get_corename` returns them.
 */
export function chooseOpenBlasCore(flags: ReadonlySet<string>): string | null {
  if (['avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'].every((flag) => flags.has(flag))) return 'SkylakeX';
  if (flags.has('avx2') && flags.has('fma')) return 'Haswell';
  if (flags.has('avx')) return 'Sandybridge';
  return null;
}

/**
 * Returns whether `core`, as `openblas_get_corename` names it, is the core that the
 * OPENBLAS_CORETYPE value `name` requests. OpenBLAS matches that value without regard to case,
 * so 'SandyBridge' selects the core it calls 'Sandybridge'.
 */
function isCoreNamed(core: string | null, name: string): boolean {
  return core !== null && core.toLowerCase() === name.toLowerCase();
}

/**
 * Opens `library` and returns the handle with the core it runs. When OpenBLAS fell back to
 * `FALLBACK_OPENBLAS_CORE` on a CPU with AVX, and the user set no OPENBLAS_CORETYPE, this
 * closes the library, sets OPENBLAS_CORETYPE in `env` to `chooseOpenBlasCore`'s pick and opens
 * it again. Pass `process.env`: the library reads it when it loads, and the PyTorch peer
 * inherits it. Runs before any computation, so no OpenBLAS thread exists yet in an OpenMP build.
 * NOTE: checked with Debian's OpenMP build only. A pthreads build starts its threads when it
 * loads, and closing it relies on the library's destructor to stop them.
 */
export function openWithFittingCore(
  koffi: KoffiModule,
  library: string,
  env: NodeJS.ProcessEnv,
  cpuFlags: ReadonlySet<string> | null,
): { handle: KoffiLibrary; core: string | null; coreChoice: string } {
  let handle = koffi.load(library);
  const coreOf = (opened: KoffiLibrary): string | null => {
    try {
      return String(opened.func('const char *openblas_get_corename()')()).trim();
    } catch {
      // The library is not OpenBLAS, or lacks this extension.
      return null;
    }
  };
  const detected = coreOf(handle);
  const fitting = cpuFlags === null ? null : chooseOpenBlasCore(cpuFlags);
  const userCore = env.OPENBLAS_CORETYPE;
  if (userCore !== undefined) {
    const setting = `OPENBLAS_CORETYPE=${userCore} from the environment`;
    if (detected === null || isCoreNamed(detected, userCore)) return { handle, core: detected, coreChoice: setting };
    // OpenBLAS 0.3.21 ignores a name it does not know, and warns only when OPENBLAS_VERBOSE is set:
    // with 'Foo' it ran Cooperlake kernels on the Xeon of model 207.
    const example = fitting === null ? '' : ` (${fitting} fits this CPU)`;
    return {
      handle,
      core: detected,
      coreChoice: `${setting} was ignored, and OpenBLAS chose ${detected} kernels. Set it to a core name that this OpenBLAS knows${example}, or unset it`,
    };
  }
  if (detected !== FALLBACK_OPENBLAS_CORE || fitting === null || handle.unload === undefined) {
    return { handle, core: detected, coreChoice: 'detected by OpenBLAS' };
  }
  handle.unload();
  env.OPENBLAS_CORETYPE = fitting;
  coreSetByUs = fitting;
  handle = koffi.load(library);
  const core = coreOf(handle);
  const outcome = isCoreNamed(core, fitting) ? '' : `, but the library kept ${core}: start the process with OPENBLAS_CORETYPE=${fitting} set`;
  return {
    handle,
    core,
    coreChoice: `OPENBLAS_CORETYPE=${fitting} set by ebflow-bench, because OpenBLAS chose ${detected} kernels for a CPU with ${fitting === 'SkylakeX' ? 'AVX-512' : fitting === 'Haswell' ? 'AVX2' : 'AVX'}${outcome}`,
  };
}

/** The OPENBLAS_CORETYPE that `openWithFittingCore` set, for child processes that load OpenBLAS too. */
let coreSetByUs: string | null = null;

/**
 * Returns the OPENBLAS_CORETYPE this process set when OpenBLAS fell back to Prescott kernels
 * (see `FALLBACK_OPENBLAS_CORE`), or null. The peer comparison passes it to the PyTorch peer.
 */
export function openBlasCoreSetByUs(): string | null {
  return coreSetByUs;
}

let loaded: NativeBlas | null = null;
/** Floating-point operations of the LAPACK calls since the process started, by the usual counts. */
let lapackOperations = 0;

/**
 * Returns the floating-point operations of every LAPACK factorisation, inverse and solve so far
 * (sgetrf 2n³/3, sgetri 4n³/3, sgetrs 2n²c). Matrix products are not included: they run as tfjs
 * kernels, which `tf.profile` lists.
 */
export function lapackOperationCount(): number {
  return lapackOperations;
}

/** Adds the operations of LAPACK calls made outside `NativeBlas`, on a worker thread (`lapack-threads.ts`). */
export function addLapackOperations(count: number): void {
  lapackOperations += count;
}
let lastStatus: BlasStatus = { state: 'off', reason: 'not requested yet' };

/**
 * Returns a one-line description of where matrix products run, for logs and reports. It ends
 * with `coreChoice` when the kernels are not the ones OpenBLAS detected or the user named, so a
 * reload by `openWithFittingCore` and an ignored OPENBLAS_CORETYPE show in the first log line.
 */
export function describeBlas(status: BlasStatus): string {
  if (status.state === 'off') return `matrix products on the backend (${status.reason})`;
  const threads = `${status.threads} thread${status.threads === 1 ? '' : 's'}`;
  const core = status.core === undefined ? '' : `, ${status.core} kernels`;
  // Records written before GOMP_SPINCOUNT was recorded hold the bare OMP_WAIT_POLICY value.
  const wait = status.waitPolicy.includes('=') || status.waitPolicy === 'libgomp default' ? status.waitPolicy : `OMP_WAIT_POLICY ${status.waitPolicy}`;
  const waitPolicy = status.parallelism === 'openmp' ? `, ${wait}` : '';
  const choice = status.coreChoice;
  const plainChoice = choice === undefined || choice === 'detected by OpenBLAS' || choice.endsWith(' from the environment');
  const note = plainChoice ? '' : `; ${choice}`;
  let lu = '';
  if (status.lu === 'recursive') lu = ', recursive LU';
  if (status.lu === 'lapack') lu = ', LAPACK sgetrf';
  return `matrix products and LU on OpenBLAS (${status.library}, ${threads}, ${status.parallelism}${waitPolicy}${core}${lu})${note}`;
}

/** Returns the library loaded by `loadNativeBlas`, or null when matrix products stay on the tfjs backend. */
export function nativeBlas(): NativeBlas | null {
  return loaded;
}

/** Returns the outcome of the last `loadNativeBlas` call. */
export function nativeBlasStatus(): BlasStatus {
  return lastStatus;
}

/**
 * Reads `EBFLOW_BLAS`, `EBFLOW_BLAS_THREADS` and `EBFLOW_LU` and loads the library they name. Once a
 * library is loaded, later calls return its status and load nothing else. Throws, with the
 * reason and the fix, only for an invalid EBFLOW_LU or thread count (also one above the library's
 * MAX_THREADS) or an explicitly named library that fails to load. With 'auto' a failure is a
 * recorded outcome ('off' with the reason).
 */
export async function loadNativeBlas(
  request: BlasRequest | undefined = process.env.EBFLOW_BLAS,
  threadsRequest: string | undefined = process.env.EBFLOW_BLAS_THREADS,
): Promise<BlasStatus> {
  if (loaded !== null) return loaded.status;
  const value = (request ?? '').trim();
  const threads = parseThreads(threadsRequest);
  const lu = parseLuRequest(process.env.EBFLOW_LU);
  if (value.toLowerCase() === 'off') {
    lastStatus = { state: 'off', reason: 'switched off by EBFLOW_BLAS=off' };
    return lastStatus;
  }
  if (!isMainThread) {
    lastStatus = { state: 'off', reason: 'worker threads keep matrix products on the tfjs backend' };
    return lastStatus;
  }

  let koffi: KoffiModule;
  try {
    koffi = await importKoffi();
  } catch (error) {
    lastStatus = { state: 'off', reason: `the optional package koffi is not installed (${firstLine(error)}); run \`npm ci\`` };
    if (value !== '' && value.toLowerCase() !== 'auto') throw new Error(`loadNativeBlas: ${lastStatus.reason}.`);
    return lastStatus;
  }

  applyOpenMpWaitDefault(process.env);
  const explicit = value !== '' && value.toLowerCase() !== 'auto';
  const candidates = explicit ? [value] : DEFAULT_LIBRARIES;
  const failures: string[] = [];
  for (const library of candidates) {
    let bound: NativeBlas;
    try {
      bound = bindLibrary(koffi, library, threads, lu);
    } catch (error) {
      failures.push(`${library}: ${firstLine(error)}`);
      continue;
    }
    // OpenBLAS caps the count at its build's MAX_THREADS without an error, so a larger
    // request would be recorded but never run.
    if ((threadsRequest ?? '').trim() !== '' && bound.status.threads < threads) {
      throw new Error(
        `loadNativeBlas: EBFLOW_BLAS_THREADS=${threads} is more than the ${bound.status.threads} threads that ${library} ` +
          `supports (MAX_THREADS of its build). Set it to ${bound.status.threads} or fewer, or unset it to use every core.`,
      );
    }
    loaded = bound;
    lastStatus = loaded.status;
    return lastStatus;
  }
  const reason = `no OpenBLAS library could be loaded (${failures.join('; ')})`;
  if (explicit) {
    throw new Error(
      `loadNativeBlas: EBFLOW_BLAS='${value}' failed to load: ${failures[0]}. Point EBFLOW_BLAS at an OpenBLAS ` +
        'shared library, or unset it, or set it to off.',
    );
  }
  lastStatus = {
    state: 'off',
    reason: `${reason}; install OpenBLAS (Debian: \`apt-get install libopenblas0-openmp\`) or set EBFLOW_BLAS to its path`,
  };
  return lastStatus;
}

/**
 * Checks `EBFLOW_BLAS` and `EBFLOW_BLAS_THREADS` without loading anything, so a run can reject a
 * typo before it starts. Returns the problem with its fix, or null. A library given as a path
 * must exist; a bare file name is left to the dynamic loader's search.
 */
export function checkBlasRequest(
  request: BlasRequest | undefined = process.env.EBFLOW_BLAS,
  threadsRequest: string | undefined = process.env.EBFLOW_BLAS_THREADS,
): string | null {
  try {
    parseThreads(threadsRequest);
    parseLuRequest(process.env.EBFLOW_LU);
  } catch (error) {
    return firstLine(error).replace(/^loadNativeBlas: /, '');
  }
  const value = (request ?? '').trim();
  if (value.includes('/') && !existsSync(value)) {
    return `EBFLOW_BLAS='${value}' names a file that does not exist; point it at an OpenBLAS shared library, or unset it, or set it to off`;
  }
  return null;
}

/** The LU routine on OpenBLAS: `recursive-lu.ts` (the default) or LAPACK's sgetrf. */
type LuRequest = 'recursive' | 'lapack';

/** Reads a value of `EBFLOW_LU`: unset or 'recursive', or 'lapack' (to compare with the library's own routines). */
function parseLuRequest(request: string | undefined): LuRequest {
  const value = (request ?? '').trim().toLowerCase();
  if (value === '' || value === 'recursive') return 'recursive';
  if (value === 'lapack') return 'lapack';
  throw new Error(`loadNativeBlas: EBFLOW_LU must be 'recursive' or 'lapack', received '${request}'. Unset it for the recursive LU.`);
}

function parseThreads(request: string | undefined): number {
  const value = (request ?? '').trim();
  if (value === '') return availableParallelism();
  const threads = Number(value);
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`loadNativeBlas: EBFLOW_BLAS_THREADS must be a positive integer, received '${request}'. Unset it to use every core.`);
  }
  return threads;
}

/** Imports koffi through a variable specifier, so type checking does not need the optional package. */
export async function importKoffi(): Promise<KoffiModule> {
  const specifier = 'koffi';
  const module = (await import(specifier)) as { default?: KoffiModule } & KoffiModule;
  return module.default ?? module;
}

/**
 * Opens `library`, binds the routines and sets the thread count. Throws when a symbol is missing,
 * after closing the library and removing an OPENBLAS_CORETYPE that `openWithFittingCore` set, so
 * the next candidate library detects its core afresh.
 */
function bindLibrary(koffi: KoffiModule, library: string, threads: number, lu: LuRequest): NativeBlas {
  const opened = openWithFittingCore(koffi, library, process.env, readCpuFlags());
  try {
    return bindOpenedLibrary(koffi, library, threads, lu, opened);
  } catch (error) {
    opened.handle.unload?.();
    if (coreSetByUs !== null && process.env.OPENBLAS_CORETYPE === coreSetByUs) delete process.env.OPENBLAS_CORETYPE;
    coreSetByUs = null;
    throw error;
  }
}

function bindOpenedLibrary(
  koffi: KoffiModule,
  library: string,
  threads: number,
  lu: LuRequest,
  { handle, core, coreChoice }: ReturnType<typeof openWithFittingCore>,
): NativeBlas {
  const cblasSgemm = handle.func(
    'void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float *a, int lda, ' +
      'const float *b, int ldb, float beta, float *c, int ldc)',
  );
  const sgetrf = handle.func('void sgetrf_(int *m, int *n, float *a, int *lda, int *ipiv, int *info)');
  const sgetri = handle.func('void sgetri_(int *n, float *a, int *lda, int *ipiv, float *work, int *lwork, int *info)');
  const sgetrs = handle.func('void sgetrs_(const char *trans, int *n, int *nrhs, float *a, int *lda, int *ipiv, float *b, int *ldb, int *info)');
  const setThreads = handle.func('void openblas_set_num_threads(int threads)');
  const getThreads = handle.func('int openblas_get_num_threads()');
  let omatcopy: ((...args: unknown[]) => unknown) | null = null;
  try {
    omatcopy = handle.func(
      'void cblas_somatcopy(int order, int trans, int rows, int cols, float alpha, const float *a, int lda, float *b, int ldb)',
    );
  } catch {
    // An OpenBLAS without its extensions; transposeCopy falls back to JavaScript.
  }
  const luKernels = lu === 'lapack' ? null : bindLuKernels(handle, sgetrf, cblasSgemm);
  const getParallel = handle.func('int openblas_get_parallel()');
  const getConfig = handle.func('const char *openblas_get_config()');

  setThreads(threads);
  // OpenBLAS grants fewer threads than requested when the request exceeds its build's MAX_THREADS.
  const grantedThreads = getThreads() as number;
  const parallelism = (['sequential', 'pthreads', 'openmp'] as const)[getParallel() as number] ?? 'sequential';
  if (parallelism === 'openmp') releaseOpenMpThreadsAtExit(koffi);

  const status = {
    state: 'loaded' as const,
    library,
    threads: grantedThreads,
    parallelism,
    config: String(getConfig()).trim(),
    waitPolicy: describeOpenMpWait(process.env),
    singleThreadBelow: SINGLE_THREAD_BELOW_OPERATIONS,
    ...(core === null ? {} : { core, coreChoice }),
    lu: luKernels === null ? ('lapack' as const) : ('recursive' as const),
  };
  const info = new Int32Array(1);
  const size = new Int32Array(1);
  let inverseWorkspace = new Float32Array(0);
  let activeThreads = grantedThreads;
  let pinnedToOneThread = false;
  const threadsFor = (operations: number): number => (operations < SINGLE_THREAD_BELOW_OPERATIONS ? 1 : grantedThreads);
  const useThreads = (operations: number): void => {
    const count = pinnedToOneThread ? 1 : threadsFor(operations);
    if (count !== activeThreads) {
      setThreads(count);
      activeThreads = count;
    }
  };
  return {
    status,
    threadsFor,
    currentThreads: () => getThreads() as number,
    onOneThread(action) {
      const outer = pinnedToOneThread;
      pinnedToOneThread = true;
      useThreads(0);
      try {
        return action();
      } finally {
        pinnedToOneThread = outer;
      }
    },
    sgemm(transposeA, transposeB, m, n, k, a, lda, b, ldb, c, ldc, beta = 0) {
      const transA = transposeA ? CBLAS_TRANS : CBLAS_NO_TRANS;
      const transB = transposeB ? CBLAS_TRANS : CBLAS_NO_TRANS;
      useThreads(2 * m * n * k);
      cblasSgemm(CBLAS_ROW_MAJOR, transA, transB, m, n, k, 1, a, lda, b, ldb, beta, c, ldc);
    },
    sgetrf(n, a, pivots) {
      // LAPACK rejects the leading dimension 0 of an empty matrix and OpenBLAS prints the error to stdout.
      if (n === 0) return 0;
      lapackOperations += (2 * n ** 3) / 3;
      useThreads((2 * n ** 3) / 3);
      size[0] = n;
      sgetrf(size, size, a, size, pivots, info);
      return info[0];
    },
    sgetri(n, a, pivots) {
      if (n === 0) return 0;
      lapackOperations += (4 * n ** 3) / 3;
      useThreads((4 * n ** 3) / 3);
      size[0] = n;
      // sgetri runs blocked when its workspace has room for n × block size; 64 covers the usual block size.
      // The workspace is kept for the next call, since a fresh array costs page faults every time.
      const lwork = new Int32Array([Math.max(1, 64 * n)]);
      if (inverseWorkspace.length < lwork[0]) inverseWorkspace = new Float32Array(lwork[0]);
      sgetri(size, a, size, pivots, inverseWorkspace, lwork, info);
      return info[0];
    },
    factorLu(n, a, pivots) {
      if (luKernels === null || n < RECURSIVE_LU_MIN_SIZE) return this.sgetrf(n, a, pivots);
      lapackOperations += (2 * n ** 3) / 3;
      useThreads((2 * n ** 3) / 3);
      return factorLu(luKernels, n, a, pivots);
    },
    invertLu(n, a, pivots) {
      // On several threads sgetri was faster at n = 784 (see RECURSIVE_INVERSE_THREADS).
      if (luKernels === null || (pinnedToOneThread ? 1 : threadsFor((4 * n ** 3) / 3)) > RECURSIVE_INVERSE_THREADS) return this.sgetri(n, a, pivots);
      lapackOperations += (4 * n ** 3) / 3;
      useThreads((4 * n ** 3) / 3);
      if (inverseWorkspace.length < inverseWorkspaceLength(n)) inverseWorkspace = new Float32Array(inverseWorkspaceLength(n));
      return invertLu(luKernels, n, a, pivots, inverseWorkspace);
    },
    transposeCopy(rows, cols, alpha, a, b) {
      if (a.length < rows * cols || b.length < rows * cols) {
        throw new RangeError(`transposeCopy: a ${rows}×${cols} matrix needs ${rows * cols} values, received ${a.length} and ${b.length}`);
      }
      if (rows === 0 || cols === 0) return;
      if (omatcopy !== null) {
        omatcopy(CBLAS_ROW_MAJOR, CBLAS_TRANS, rows, cols, alpha, a, cols, b, rows);
        return;
      }
      scaledTranspose(rows, cols, alpha, a, b);
    },
    scaledCopy(count, alpha, a, b) {
      if (a.length < count || b.length < count) {
        throw new RangeError(`scaledCopy: copying ${count} values needs arrays of at least that length, received ${a.length} and ${b.length}`);
      }
      if (count === 0) return;
      if (omatcopy !== null) {
        omatcopy(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, 1, count, alpha, a, count, b, count);
        return;
      }
      for (let i = 0; i < count; i++) b[i] = alpha * a[i];
    },
    sgetrs(transpose, n, columns, a, pivots, b) {
      if (n === 0 || columns === 0) return;
      lapackOperations += 2 * n * n * columns;
      useThreads(2 * n * n * columns);
      size[0] = n;
      const rightHandSides = new Int32Array([columns]);
      sgetrs(transpose ? 'T' : 'N', size, rightHandSides, a, size, pivots, b, size, info);
    },
  };
}

const CBLAS_COLUMN_MAJOR = 102;
const CBLAS_LEFT = 141;
const CBLAS_RIGHT = 142;
const CBLAS_UPPER = 121;
const CBLAS_LOWER = 122;
const CBLAS_NON_UNIT = 131;
const CBLAS_UNIT = 132;

/**
 * Binds the column-major kernels of `recursive-lu.ts` to the library's routines, or returns
 * null when one is missing (the caller then keeps sgetrf and sgetri). The calls leave the thread
 * count as it is: switching it between the many small calls of one factorisation made the LU
 * at n = 784 slower (3.7–5.3 ms against 3.4 ms with two threads throughout, 2-vCPU Xeon).
 */
export function bindLuKernels(handle: KoffiLibrary, getrf: KoffiFunction, gemm: KoffiFunction): LuKernels | null {
  let laswp: KoffiFunction;
  let trmm: KoffiFunction;
  let trtri: KoffiFunction;
  try {
    laswp = handle.func('void slaswp_(int *n, float *a, int *lda, int *k1, int *k2, int *ipiv, int *incx)');
    trmm = handle.func('void cblas_strmm(int order, int side, int uplo, int trans, int diag, int m, int n, float alpha, const float *a, int lda, float *b, int ldb)');
    trtri = handle.func('void strtri_(const char *uplo, const char *diag, int *n, float *a, int *lda, int *info)');
  } catch {
    return null;
  }
  const scalars = new Int32Array(5);
  const info = new Int32Array(1);
  const at = (index: number): Int32Array => scalars.subarray(index, index + 1);
  let triangle = new Float32Array(64 * 64);
  /**
   * Returns the inverse of the k×k unit lower ('L') or upper ('U', with its diagonal) triangle of
   * `a` (leading dimension lda), column-major with leading dimension k, in a buffer reused by the
   * next call. k³/3 operations.
   */
  const invertedTriangle = (part: 'L' | 'U', k: number, a: Float32Array, lda: number): Float32Array => {
    if (triangle.length < k * k) triangle = new Float32Array(k * k);
    for (let j = 0; j < k; j++) {
      const from = part === 'L' ? j + 1 : 0;
      const to = part === 'L' ? k : j + 1;
      triangle.set(a.subarray(j * lda + from, j * lda + to), j * k + from);
    }
    scalars.set([k, k]);
    trtri(part, part === 'L' ? 'U' : 'N', at(0), triangle, at(1), info);
    return triangle;
  };
  return {
    panelLu(m, k, a, lda, pivots) {
      scalars.set([m, k, lda]);
      getrf(at(0), at(1), a, at(2), pivots, info);
      return info[0];
    },
    swapRows(cols, a, lda, from, to, pivots) {
      scalars.set([cols, lda, from + 1, to, 1]);
      laswp(at(0), a, at(1), at(2), at(3), pivots, at(4));
    },
    subtractProduct(m, n, k, a, lda, b, ldb, c, ldc) {
      gemm(CBLAS_COLUMN_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, m, n, k, -1, a, lda, b, ldb, 1, c, ldc);
    },
    // The small triangles below are inverted (strtri on a copy) and applied with strmm: on one
    // OpenBLAS 0.3.21 thread, strsm with a 32- to 64-wide triangle ran at 4–16 GFLOP/s, strmm at
    // 51–72 (n = 784 rows or columns, 2-vCPU Xeon, 2026-12-06).
    solveUnitLower(m, n, l, ldl, b, ldb) {
      trmm(CBLAS_COLUMN_MAJOR, CBLAS_LEFT, CBLAS_LOWER, CBLAS_NO_TRANS, CBLAS_UNIT, m, n, 1, invertedTriangle('L', m, l, ldl), m, b, ldb);
    },
    solveUnitLowerFromRight(m, n, l, ldl, b, ldb) {
      trmm(CBLAS_COLUMN_MAJOR, CBLAS_RIGHT, CBLAS_LOWER, CBLAS_NO_TRANS, CBLAS_UNIT, m, n, 1, invertedTriangle('L', n, l, ldl), n, b, ldb);
    },
    multiplyUpperNegated(m, n, u, ldu, b, ldb) {
      trmm(CBLAS_COLUMN_MAJOR, CBLAS_LEFT, CBLAS_UPPER, CBLAS_NO_TRANS, CBLAS_NON_UNIT, m, n, -1, u, ldu, b, ldb);
    },
    solveUpperFromRight(m, n, u, ldu, b, ldb) {
      trmm(CBLAS_COLUMN_MAJOR, CBLAS_RIGHT, CBLAS_UPPER, CBLAS_NO_TRANS, CBLAS_NON_UNIT, m, n, 1, invertedTriangle('U', n, u, ldu), n, b, ldb);
    },
    invertUpper(k, u, ldu) {
      // invertLu checks U's diagonal for zeros first, so strtri's info is 0 here.
      scalars.set([k, ldu]);
      trtri('U', 'N', at(0), u, at(1), info);
    },
  };
}

/**
 * Writes α·Aᵀ to `b` for the row-major rows×cols matrix `a`, in 32×32 blocks so both matrices
 * are read and written a cache line at a time. The JavaScript version of cblas_somatcopy.
 */
export function scaledTranspose(rows: number, cols: number, alpha: number, a: ArrayLike<number>, b: Float32Array): void {
  const BLOCK = 32;
  for (let i0 = 0; i0 < rows; i0 += BLOCK) {
    const rowEnd = Math.min(i0 + BLOCK, rows);
    for (let j0 = 0; j0 < cols; j0 += BLOCK) {
      const colEnd = Math.min(j0 + BLOCK, cols);
      for (let i = i0; i < rowEnd; i++) {
        for (let j = j0; j < colEnd; j++) b[j * rows + i] = alpha * a[i * cols + j];
      }
    }
  }
}

function releaseOpenMpThreadsAtExit(koffi: KoffiModule): void {
  let pause: ((kind: number) => unknown) | null = null;
  try {
    pause = koffi.load('libgomp.so.1').func('int omp_pause_resource_all(int kind)');
  } catch {
    // Without libgomp's entry point nothing can be released; the process may then crash at exit.
    return;
  }
  const OMP_PAUSE_HARD = 2;
  process.on('exit', () => {
    pause?.(OMP_PAUSE_HARD);
  });
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0];
}
