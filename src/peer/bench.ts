/**
 * The side-by-side comparison as one call: choose the peer, run the interleaved sweep, and
 * collect everything the report files need.
 */
import { cpus, hostname, platform } from 'node:os';

import { applyOpenMpWaitDefault, chooseOpenBlasCore, describeOpenMpWait, FALLBACK_OPENBLAS_CORE, openBlasCoreSetByUs, readCpuFlags } from '../tensor/native-blas.js';
import type { PeerCommand, PeerProcessOptions } from './driver.js';
import { findTorchPython, pytorchPeerCommand } from './python.js';
import {
  runInterleavedSweep,
  type CellComparison,
  type OurSide,
  type PeerCell,
  type SweepEvent,
  type SweepTiming,
} from './sweep.js';

export const PEER_REPORT_SCHEMA_VERSION = 1;

/**
 * How the peer's idle OpenMP threads wait. 'short-spin' (the default) gives the peer the setting
 * our engine runs with (`applyOpenMpWaitDefault`): the environment's OMP_WAIT_POLICY and
 * GOMP_SPINCOUNT when either is set, else GOMP_SPINCOUNT=1000, so threads spin briefly and then
 * sleep. 'passive' and 'active' set OMP_WAIT_POLICY.
 * With libgomp's own default, threads spin about a millisecond at barriers, and on a loaded
 * 2-core machine a 2-thread PyTorch step stalled: an FC DSM step at D = 784 took about 430 ms
 * against 36 ms with PASSIVE (pytorch_peer.py, load average 8).
 */
export type OmpWaitPolicy = 'short-spin' | 'passive' | 'active' | 'inherit';
export const OMP_WAIT_POLICIES: readonly OmpWaitPolicy[] = ['short-spin', 'passive', 'active', 'inherit'];

/** Everything a comparison produced: the data of the CSV, the chart and the raw JSON. */
export interface PeerComparisonReport {
  schemaVersion: typeof PEER_REPORT_SCHEMA_VERSION;
  startedAt: string;
  finishedAt: string;
  machine: { cpuModel: string; cpuCount: number; platform: string; hostname: string };
  /**
   * `kernelThreads`: threads of the project's WebAssembly kernels; `blas`: where the matrix
   * products ran (`describeBlas`); `lapackThreads`: threads of the ML log-determinants
   * (`lapack-threads.ts`). All are absent in older reports.
   */
  ours: { backend: string; nodeVersion: string; kernelThreads?: number; blas?: string; lapackThreads?: number };
  /** The peer that ran, from its hello; null when it never started. */
  peer: {
    command: string;
    engine: string;
    version: string;
    blas: string | null;
    machine: string | null;
    runtime: string | null;
    /** The peer's OpenMP wait settings, from its hello, else from its environment (`describeOpenMpWait`). */
    ompWaitPolicy: string | null;
  } | null;
  timing: SweepTiming;
  peerThreads: number[];
  comparisons: CellComparison[];
  /** Warnings for the reader, such as why the peer did not run. */
  notices: string[];
}

export interface PeerComparisonOptions {
  cells: PeerCell[];
  timing: SweepTiming;
  peerThreads: number[];
  /** A shell command line that starts another peer; the PyTorch peer when absent. */
  peerCommand?: string;
  /** OpenMP wait settings given to the peer; 'inherit' leaves the environment as it is. */
  ompWaitPolicy: OmpWaitPolicy;
  /** Time allowed for one peer run, ms. */
  runTimeoutMs: number;
  /** Environment for the interpreter search and the peer; the process environment when absent. */
  env?: NodeJS.ProcessEnv;
  /** Interpreters tried when EBFLOW_PYTHON is not set. */
  pythonCandidates?: readonly string[];
  peerProcessOptions?: Partial<PeerProcessOptions>;
  onEvent?: (event: SweepEvent | { type: 'notice'; message: string }) => void;
}

/**
 * Resolves the peer command: `--peer-command` as given, else the PyTorch peer with the first
 * interpreter that imports torch. Either runs with the OpenMP wait settings of `ompWaitPolicy`,
 * and with the OPENBLAS_CORETYPE our side set when its OpenBLAS fell back to Prescott kernels.
 * Returns null with a notice (how to install torch) when there is no such interpreter, so that
 * our side still runs alone.
 */
export async function resolvePeerCommand(
  options: Pick<PeerComparisonOptions, 'peerCommand' | 'env' | 'pythonCandidates'> & { ompWaitPolicy?: OmpWaitPolicy },
): Promise<{ command: PeerCommand | null; notice: string | null }> {
  const env = { ...(options.env ?? process.env) };
  const policy = options.ompWaitPolicy ?? 'inherit';
  // The peer's OpenBLAS would fall back to the same slow kernels ours did, so it gets our fix.
  // NOTE: only when our side loaded OpenBLAS. With EBFLOW_BLAS=off nothing is set here, and the
  // peer's OpenBLAS may run Prescott kernels on a CPU it does not recognise
  // (`fallbackKernelsNotice` then warns in the report).
  const core = openBlasCoreSetByUs();
  if (core !== null && env.OPENBLAS_CORETYPE === undefined) env.OPENBLAS_CORETYPE = core;
  if (policy === 'short-spin') {
    applyOpenMpWaitDefault(env);
  } else if (policy !== 'inherit') {
    env.OMP_WAIT_POLICY = policy.toUpperCase();
  }
  if (options.peerCommand !== undefined) {
    return { command: { command: options.peerCommand, args: [], shell: true, env }, notice: null };
  }
  const search = await findTorchPython({ env, candidates: options.pythonCandidates });
  if (!search.found) return { command: null, notice: `${search.message} Only our side runs.` };
  return { command: pytorchPeerCommand(search.python, env), notice: null };
}

/**
 * Returns a warning when the peer's BLAS build line names OpenBLAS's fallback kernels
 * (`FALLBACK_OPENBLAS_CORE`, SSE3) on a CPU whose `cpuFlags` allow faster ones, else null. Our
 * side sets OPENBLAS_CORETYPE for the peer only when it loaded OpenBLAS itself, so with
 * `--backend cpu` or EBFLOW_BLAS=off the peer can still fall back. `peerCoreType` is the
 * OPENBLAS_CORETYPE the peer started with, if any, so the advice does not repeat a setting
 * that the peer's library did not take.
 */
export function fallbackKernelsNotice(
  peerBlas: string | null,
  cpuFlags: ReadonlySet<string> | null,
  peerCoreType?: string,
): string | null {
  if (peerBlas === null || cpuFlags === null || !new RegExp(`\\b${FALLBACK_OPENBLAS_CORE}\\b`).test(peerBlas)) return null;
  const fitting = chooseOpenBlasCore(cpuFlags);
  if (fitting === null) return null;
  const problem =
    `the peer's OpenBLAS runs ${FALLBACK_OPENBLAS_CORE} (SSE3) kernels on a CPU that has faster ones, so its products ran ` +
    'slower than they can (a third of the speed for D×D products at D = 784 on a Xeon of model 207)';
  if (peerCoreType === undefined) return `${problem}; run again with OPENBLAS_CORETYPE=${fitting} set`;
  if (peerCoreType.toLowerCase() === fitting.toLowerCase()) {
    return `${problem}, although it started with OPENBLAS_CORETYPE=${peerCoreType}, which its OpenBLAS did not take`;
  }
  return `${problem}; it started with OPENBLAS_CORETYPE=${peerCoreType}, so run again with OPENBLAS_CORETYPE=${fitting} set instead`;
}

/**
 * Runs the whole comparison and returns the report data.
 *
 * Plan: 1. resolve the peer command (a notice instead when torch is missing); 2. run the
 * interleaved sweep; 3. attach the machine, backend and peer descriptions. Cost: see
 * `runInterleavedSweep`, plus one Python start to look for torch.
 */
export async function runPeerComparison(ourSide: OurSide, options: PeerComparisonOptions): Promise<PeerComparisonReport> {
  const startedAt = new Date().toISOString();
  const notices: string[] = [];
  const emit = options.onEvent ?? (() => undefined);

  const { command, notice } = await resolvePeerCommand(options);
  if (notice !== null) {
    notices.push(notice);
    emit({ type: 'notice', message: notice });
  }

  const sweep = await runInterleavedSweep(ourSide, {
    cells: options.cells,
    timing: options.timing,
    peerThreads: options.peerThreads,
    peerCommand: command,
    runTimeoutMs: options.runTimeoutMs,
    peerProcessOptions: options.peerProcessOptions,
    onEvent: emit,
  });
  if (sweep.peerUnavailable !== null) notices.push(sweep.peerUnavailable);
  const slowKernels = fallbackKernelsNotice(sweep.peerHello?.blas ?? null, readCpuFlags(), command?.env?.OPENBLAS_CORETYPE);
  if (slowKernels !== null) {
    notices.push(slowKernels);
    emit({ type: 'notice', message: slowKernels });
  }

  const hello = sweep.peerHello;
  const processors = cpus();
  return {
    schemaVersion: PEER_REPORT_SCHEMA_VERSION,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: {
      cpuModel: processors[0]?.model.trim() ?? 'unknown',
      cpuCount: processors.length,
      platform: `${platform()} ${process.arch}`,
      hostname: hostname(),
    },
    ours: {
      backend: ourSide.backend,
      nodeVersion: process.version,
      ...(ourSide.kernelThreads === undefined ? {} : { kernelThreads: ourSide.kernelThreads }),
      ...(ourSide.blas === undefined ? {} : { blas: ourSide.blas }),
      ...(ourSide.lapackThreads === undefined ? {} : { lapackThreads: ourSide.lapackThreads }),
    },
    peer: hello === null || command === null ? null : {
      command: command.shell ? command.command : [command.command, ...command.args].join(' '),
      engine: hello.engine,
      version: hello.version,
      blas: hello.blas ?? null,
      machine: hello.machine ?? null,
      runtime: hello.runtime ?? null,
      ompWaitPolicy: hello.ompWaitPolicy ?? (command.env === undefined ? null : describeOpenMpWait(command.env)),
    },
    timing: options.timing,
    peerThreads: options.peerThreads,
    comparisons: sweep.comparisons,
    notices,
  };
}
