/**
 * The body of the LAPACK worker thread started by `lapack-threads.ts`. It factors and inverts
 * the matrices it is handed with OpenBLAS on one thread of its own, while the main thread works
 * on the other matrices of the same call.
 *
 * The matrices travel as views of SharedArrayBuffers: the main thread posts them on a
 * MessagePort, then raises the job number in the control block. This thread takes the message
 * with `receiveMessageOnPort`, so it never returns to its event loop and sleeps in
 * `Atomics.wait` between jobs, costing no processor time when idle.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';

import { bindLuKernels, importKoffi, RECURSIVE_LU_MIN_SIZE, type KoffiFunction } from '../native-blas.js';
import { factorLu, invertLu, inverseWorkspaceLength, type LuKernels } from '../recursive-lu.js';
import { FAILED, FINISHED, JOB_FAILED, POSTED, READY, STATE, STOP_JOB, writeError, type LapackJob, type LapackWorkerData } from './lapack-protocol.js';

const { control, errorBytes, port, library, openmp, lu } = workerData as LapackWorkerData;
const words = new Int32Array(control);

/** The routines this thread calls, bound to the library the main thread loaded. */
interface WorkerLapack {
  factor(n: number, a: Float32Array, pivots: Int32Array): number;
  invert(n: number, a: Float32Array, pivots: Int32Array): number;
}

async function bind(): Promise<WorkerLapack> {
  const koffi = await importKoffi();
  if (openmp) {
    // An OpenMP build sizes each call by the calling thread's OpenMP setting, so this thread's
    // own setting of 1 keeps its calls on one thread whatever the main thread uses.
    koffi.load('libgomp.so.1').func('void omp_set_num_threads(int threads)')(1);
  }
  // The library is already loaded in this process, so this opens the same copy.
  const handle = koffi.load(library);
  const sgemm = handle.func(
    'void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float *a, int lda, ' +
      'const float *b, int ldb, float beta, float *c, int ldc)',
  );
  const sgetrf: KoffiFunction = handle.func('void sgetrf_(int *m, int *n, float *a, int *lda, int *ipiv, int *info)');
  const sgetri: KoffiFunction = handle.func('void sgetri_(int *n, float *a, int *lda, int *ipiv, float *work, int *lwork, int *info)');
  // EBFLOW_LU=lapack keeps sgetrf and sgetri on the main thread, so this thread keeps them too.
  const kernels: LuKernels | null = lu === 'recursive' ? bindLuKernels(handle, sgetrf, sgemm) : null;
  const size = new Int32Array(1);
  const info = new Int32Array(1);
  let workspace = new Float32Array(0);
  return {
    factor(n, a, pivots) {
      if (n === 0) return 0;
      if (kernels !== null && n >= RECURSIVE_LU_MIN_SIZE) return factorLu(kernels, n, a, pivots);
      size[0] = n;
      sgetrf(size, size, a, size, pivots, info);
      return info[0];
    },
    invert(n, a, pivots) {
      if (n === 0) return 0;
      if (kernels !== null) {
        if (workspace.length < inverseWorkspaceLength(n)) workspace = new Float32Array(inverseWorkspaceLength(n));
        return invertLu(kernels, n, a, pivots, workspace);
      }
      size[0] = n;
      const lwork = new Int32Array([Math.max(1, 64 * n)]);
      if (workspace.length < lwork[0]) workspace = new Float32Array(lwork[0]);
      sgetri(size, a, size, pivots, workspace, lwork, info);
      return info[0];
    },
  };
}

function serve(lapack: WorkerLapack, jobs: MessagePort): void {
  let seen = 0;
  for (;;) {
    Atomics.wait(words, POSTED, seen);
    const posted = Atomics.load(words, POSTED);
    if (posted === seen) continue;
    seen = posted;
    if (posted === STOP_JOB) return;
    try {
      const received = receiveMessageOnPort(jobs);
      if (received === undefined) throw new Error(`job ${posted} was posted without its matrices`);
      const job = received.message as LapackJob;
      for (let i = 0; i < job.items.length; i++) {
        const { n, matrix, pivots } = job.items[i];
        job.infos[i] = job.operation === 'factor' ? lapack.factor(n, matrix, pivots) : lapack.invert(n, matrix, pivots);
      }
    } catch (error) {
      writeError(words, errorBytes, error);
      Atomics.store(words, JOB_FAILED, 1);
    }
    Atomics.store(words, FINISHED, posted);
    Atomics.notify(words, FINISHED);
  }
}

// However this thread ends, a main thread waiting for a job must learn of it.
process.on('exit', () => {
  Atomics.store(words, STATE, FAILED);
  Atomics.notify(words, FINISHED);
});

try {
  const lapack = await bind();
  Atomics.store(words, STATE, READY);
  Atomics.notify(words, STATE);
  serve(lapack, port);
} catch (error) {
  writeError(words, errorBytes, error);
  Atomics.store(words, STATE, FAILED);
  Atomics.notify(words, STATE);
}
