/**
 * The interleaved side-by-side sweep: our engine against a peer engine on the same cells.
 *
 * The machine is shared, so a neighbour's load drifts over minutes. Interleaving spreads that
 * drift over both sides: for each cell and each round, our engine runs once, then the peer once
 * per thread count, and the timed samples of every round are pooled before the median is taken.
 * Running the peer with several thread counts and keeping its better figure is fair to the peer:
 * with two OpenMP threads, a busy neighbour can stall OpenBLAS's barriers.
 */
import type { ObjectiveName } from '../objectives/objective.js';
import { betterPeerFigure, median, ratioOursOverPeer } from './comparison.js';
import { PeerProcess, type PeerCommand, type PeerProcessOptions, describePeerCommand } from './driver.js';
import type { HelloMessage, ImageShape, PeerArchitecture, PeerHyperparameters } from './protocol.js';

/** One comparison cell: the same training step on both sides. */
export interface PeerCell {
  arch: PeerArchitecture;
  objective: ObjectiveName;
  /** Sample shape [H, W, C]; D = H·W·C. */
  imageShape: ImageShape;
  /** Dense layer count L of the FC model; 6 convolutions for CNN. */
  depth: number;
  batch: number;
}

export interface SweepTiming {
  /** Untimed steps before the timed ones, in every run. */
  warmup: number;
  /** Timed steps per run. */
  iterations: number;
  /** Runs per side and cell, interleaved. */
  rounds: number;
  seed: number;
  /**
   * Untimed runs of the first cell on every side before the sweep, reported as round 0, so that
   * the JavaScript engine has compiled our step and both sides' thread pools are running when
   * the first timed run starts. Default 0 here; `bench:peer` passes 1 unless set otherwise.
   */
  sweepWarmup?: number;
}

/** Our engine: the interface the sweep runs it through. */
export interface OurSide {
  /** Backend name for the report, such as "wasm". */
  readonly backend: string;
  /** Threads of the project's WebAssembly kernels (1 off the wasm backend); absent when unknown. */
  readonly kernelThreads?: number;
  /** The engine of our matrix products (`describeBlas`), with OpenBLAS's kernels; absent when unknown. */
  readonly blas?: string;
  /** Threads that factor and invert the ML objective's matrices (`lapackThreadsStatus`); absent when unknown. */
  readonly lapackThreads?: number;
  /** Hyper-parameters our step uses for `cell`, sent to the peer so both compute the same step. */
  hyperparameters?(cell: PeerCell): Partial<PeerHyperparameters>;
  /** Runs `warmup + iterations` steps of a fresh session and returns the timed ones, ms each. */
  run(cell: PeerCell, timing: { warmup: number; iterations: number; seed: number }): Promise<SideRun>;
}

export interface SideRun {
  samplesMs: number[];
  lastLoss: number | null;
}

export type RunOutcome =
  | { status: 'completed'; round: number; samplesMs: number[]; medianMs: number; lastLoss: number | null; threads?: number }
  | { status: 'errored'; round: number; message: string };

/** Every run of one side of a cell: ours, or the peer at one thread count. */
export interface SeriesResult {
  /** "ours", or "peer-1t", "peer-2t", …. */
  series: string;
  /** Requested peer threads; absent for ours. */
  threads?: number;
  runs: RunOutcome[];
  /** Median of the pooled samples of every completed run, or null when none completed. */
  medianMs: number | null;
}

export interface CellComparison {
  /** Stable id such as "fc/ssm/28x28x1/L2/B100". */
  cellId: string;
  cell: PeerCell;
  ours: SeriesResult;
  /** One series per peer thread count, in the requested order; empty without a peer. */
  peer: SeriesResult[];
  /** The peer's lowest median over thread counts, or null. */
  betterPeer: { threads: number; medianMs: number } | null;
  /** ours / better peer figure, or null. */
  ratio: number | null;
}

export type SweepEvent =
  | { type: 'peer-started'; hello: HelloMessage; command: string }
  | { type: 'peer-unavailable'; message: string }
  | { type: 'run-start'; cellId: string; series: string; round: number }
  | { type: 'run-complete'; cellId: string; series: string; round: number; medianMs: number }
  | { type: 'run-error'; cellId: string; series: string; round: number; message: string };

export interface SweepOptions {
  cells: PeerCell[];
  timing: SweepTiming;
  /** Peer thread counts, each run in every round; the peer is left out when `peerCommand` is null. */
  peerThreads: number[];
  peerCommand: PeerCommand | null;
  /** Time allowed for one peer run, ms. */
  runTimeoutMs: number;
  peerProcessOptions?: Partial<PeerProcessOptions>;
  onEvent?: (event: SweepEvent) => void;
}

export interface SweepResult {
  comparisons: CellComparison[];
  /** The peer's hello, when it started at least once. */
  peerHello: HelloMessage | null;
  /** Reason the peer stopped being used (start failure or too many crashes), or null. */
  peerUnavailable: string | null;
}

/** Returns the stable id of a cell, such as "cnn/dsm/28x28x1/L6/B100". */
export function cellId(cell: PeerCell): string {
  return `${cell.arch}/${cell.objective}/${cell.imageShape.join('x')}/L${cell.depth}/B${cell.batch}`;
}

/** After this many peer crashes or time-outs in one sweep, the peer is no longer restarted. */
const MAX_PEER_RESTARTS = 3;

/** Starts the peer on first use and again after a crash, up to `MAX_PEER_RESTARTS` times. */
class PeerSupervisor {
  private peer: PeerProcess | null = null;
  private restarts = 0;
  /** Set when the peer cannot be started (again); every later run fails with it. */
  private unavailable: string | null = null;
  hello: HelloMessage | null = null;

  constructor(
    private readonly command: PeerCommand,
    private readonly options: Partial<PeerProcessOptions> | undefined,
    private readonly emit: (event: SweepEvent) => void,
  ) {}

  get unavailableReason(): string | null {
    return this.unavailable;
  }

  async acquire(): Promise<PeerProcess> {
    if (this.unavailable !== null) throw new Error(this.unavailable);
    if (this.peer !== null && this.peer.usable) return this.peer;

    if (this.peer !== null) {
      this.restarts += 1;
      if (this.restarts > MAX_PEER_RESTARTS) {
        this.unavailable = `the peer was not restarted after ${MAX_PEER_RESTARTS} crashes or time-outs`;
        this.emit({ type: 'peer-unavailable', message: this.unavailable });
        throw new Error(this.unavailable);
      }
    }
    try {
      this.peer = await PeerProcess.start(this.command, this.options);
    } catch (error) {
      this.unavailable = `the peer could not be started: ${(error as Error).message}`;
      this.emit({ type: 'peer-unavailable', message: this.unavailable });
      throw new Error(this.unavailable);
    }
    this.hello = this.peer.hello;
    this.emit({ type: 'peer-started', hello: this.peer.hello, command: describePeerCommand(this.command) });
    return this.peer;
  }

  async close(): Promise<void> {
    if (this.peer !== null) await this.peer.shutdown();
  }
}

function summarise(series: string, runs: RunOutcome[], threads?: number): SeriesResult {
  const pooled = runs.flatMap((run) => (run.status === 'completed' ? run.samplesMs : []));
  const result: SeriesResult = { series, runs, medianMs: pooled.length > 0 ? median(pooled) : null };
  if (threads !== undefined) result.threads = threads;
  return result;
}

/**
 * Runs the interleaved sweep and returns one comparison per cell.
 *
 * Plan: first `timing.sweepWarmup` untimed runs of the first cell on every side (round 0), then
 * per cell: 1. for each round, run our side, then the peer once per thread count;
 * 2. pool each series' timed samples and take the median; 3. keep the peer's better figure and
 * the ratio ours / peer. A failed run is recorded as `errored` with its message and the sweep
 * goes on. Cost: (cells × rounds + sweepWarmup) × (1 + thread counts) runs of warmup +
 * iterations steps each.
 */
export async function runInterleavedSweep(ourSide: OurSide, options: SweepOptions): Promise<SweepResult> {
  const emit = options.onEvent ?? (() => undefined);
  const supervisor = options.peerCommand === null
    ? null
    : new PeerSupervisor(options.peerCommand, options.peerProcessOptions, emit);
  const { warmup, iterations, seed, rounds } = options.timing;
  const comparisons: CellComparison[] = [];

  const runOurs = (cell: PeerCell, round: number): Promise<RunOutcome> =>
    timeRun(cellId(cell), 'ours', round, emit, async () => {
      const run = await ourSide.run(cell, { warmup, iterations, seed });
      return { samplesMs: run.samplesMs, lastLoss: run.lastLoss };
    });
  const runPeer = async (peers: PeerSupervisor, cell: PeerCell, threads: number, round: number): Promise<RunOutcome> => {
    // A peer that cannot start was reported once by a 'peer-unavailable' event.
    const unavailable = peers.unavailableReason;
    if (unavailable !== null) return { status: 'errored', round, message: unavailable };
    const hyper = ourSide.hyperparameters?.(cell);
    return timeRun(cellId(cell), `peer-${threads}t`, round, emit, async () => {
      const peer = await peers.acquire();
      const result = await peer.run({
        arch: cell.arch,
        objective: cell.objective,
        imageShape: cell.imageShape,
        L: cell.depth,
        batch: cell.batch,
        warmup,
        iterations,
        threads,
        seed,
        ...(hyper === undefined ? {} : { hyper }),
      }, options.runTimeoutMs);
      return { samplesMs: result.samplesMs, lastLoss: result.lastLoss, threads: result.threads };
    });
  };

  try {
    const first = options.cells[0];
    for (let run = 1; first !== undefined && run <= (options.timing.sweepWarmup ?? 0); run += 1) {
      await runOurs(first, 0);
      if (supervisor === null) continue;
      for (const threads of options.peerThreads) await runPeer(supervisor, first, threads, 0);
    }

    for (const cell of options.cells) {
      const id = cellId(cell);
      const ourRuns: RunOutcome[] = [];
      const peerRuns = options.peerThreads.map(() => [] as RunOutcome[]);
      for (let round = 1; round <= rounds; round += 1) {
        ourRuns.push(await runOurs(cell, round));
        if (supervisor === null) continue;
        for (const [index, threads] of options.peerThreads.entries()) peerRuns[index]!.push(await runPeer(supervisor, cell, threads, round));
      }

      const ours = summarise('ours', ourRuns);
      const peer = supervisor === null
        ? []
        : options.peerThreads.map((threads, index) => summarise(`peer-${threads}t`, peerRuns[index]!, threads));
      const betterPeer = betterPeerFigure(peer.map((series) => ({ threads: series.threads!, medianMs: series.medianMs })));
      comparisons.push({
        cellId: id,
        cell,
        ours,
        peer,
        betterPeer,
        ratio: ratioOursOverPeer(ours.medianMs, betterPeer?.medianMs ?? null),
      });
    }
  } finally {
    await supervisor?.close();
  }

  return {
    comparisons,
    peerHello: supervisor?.hello ?? null,
    peerUnavailable: supervisor?.unavailableReason ?? null,
  };
}

async function timeRun(
  id: string,
  series: string,
  round: number,
  emit: (event: SweepEvent) => void,
  execute: () => Promise<SideRun & { threads?: number }>,
): Promise<RunOutcome> {
  emit({ type: 'run-start', cellId: id, series, round });
  try {
    const run = await execute();
    const medianMs = median(run.samplesMs);
    emit({ type: 'run-complete', cellId: id, series, round, medianMs });
    const outcome: RunOutcome = { status: 'completed', round, samplesMs: run.samplesMs, medianMs, lastLoss: run.lastLoss };
    if (run.threads !== undefined) outcome.threads = run.threads;
    return outcome;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    emit({ type: 'run-error', cellId: id, series, round, message });
    return { status: 'errored', round, message };
  }
}
