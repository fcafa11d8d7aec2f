/**
 * The result record: one JSON object per scenario cell, the data every report is built from.
 *
 * Records are versioned data. A record names the scenario (and its hash), the cell's parameters,
 * the code revision, the environment it ran in, the raw per-iteration samples and an outcome.
 * Readers check `schemaVersion` and treat records whose scenario hashes differ as not comparable.
 */
import type { BlasStatus } from '../tensor/native-blas.js';
import type { LapackThreadsStatus } from '../tensor/threads/lapack-threads.js';
import type { KernelThreadStatus } from '../tensor/threads/pool.js';
import type { StepOperations } from './operation-count.js';
import type { CellParameters } from '../scenarios/scenario.js';
import type { NllResult, PhaseTimes, TrainingConfig } from '../train/session.js';

export type { CellParameters };

export const RESULT_SCHEMA_VERSION = 1;

export interface BackendAttempt {
  name: string;
  /** The reason this backend could not be used; absent for the chosen one. */
  error?: string;
}

export interface EnvironmentInfo {
  backend: string;
  /**
   * The engine of dense matrix products and LU factorisations: OpenBLAS with its library, thread
   * count and build, or the backend with the reason. Absent in records written before it existed.
   */
  blas?: BlasStatus;
  /**
   * The threads that run the project's WebAssembly kernels on the wasm backend (see
   * src/tensor/threads/pool.ts). Absent in records written before it existed.
   */
  kernelThreads?: KernelThreadStatus;
  /**
   * The threads that factor and invert the ML objective's matrices (see
   * src/tensor/threads/lapack-threads.ts). Absent in records written before it existed.
   */
  lapackThreads?: LapackThreadsStatus;
  /** Every backend tried before (and including) the chosen one, in order. */
  backendAttempts: BackendAttempt[];
  nodeVersion: string;
  packages: Record<string, string>;
  cpuModel: string;
  cpuCount: number;
  platform: string;
  hostname: string;
  codeRevision: string;
}

export interface TimingSummary {
  /** Warm-up iterations run before the timed ones (excluded from the samples). */
  warmupIterations: number;
  /** Raw per-iteration wall-clock times, ms, in order. */
  samplesMs: number[];
  medianMs: number;
  /** 95% confidence interval of the median (order statistics), ms. */
  medianCiMs: [number, number];
  /**
   * The exact coverage of `medianCiMs` (binomial, order statistics). It is at least 0.95 from 6
   * samples on. With fewer samples the interval is [min, max] and covers less.
   */
  medianCiLevel: number;
  meanMs: number;
  /** Median per phase, ms. */
  phaseMediansMs: PhaseTimes;
}

export interface MemorySummary {
  /** Peak bytes held by tfjs tensors during the cell. */
  peakTensorBytes: number;
  /** Peak resident set size of the process during the cell, bytes. */
  peakRssBytes: number;
  /** The process's lifetime high-water mark of resident memory when the cell ended (resourceUsage maxRSS), bytes. */
  processMaxRssBytes: number;
}

export interface EvaluationPoint {
  /** Optimiser updates done when the evaluation ran. */
  step: number;
  /** Training wall-clock seconds (sum of iteration times) when it ran. */
  trainingSeconds: number;
  result: NllResult;
}

export type CellOutcome =
  | { status: 'completed' }
  | {
      status: 'diverged';
      /** The 1-based training iteration (warm-up included) at which the run of non-finite steps began. */
      step: number;
      /** That iteration's loss as text ("NaN", "Infinity"), or a note when only its gradient was non-finite. */
      firstNonFiniteValue: string;
    }
  | { status: 'errored'; message: string }
  | { status: 'skipped'; reason: string };

/**
 * The final divergences of a 2-D toy model from the KDE oracle on the noisy test points: the
 * metrics of Table 1 of EBFlow (Chao et al., NeurIPS 2023).
 */
export interface ToyMetricValues {
  /** mean_i [ln p*(x_i) − ln q(x_i)], nats: a Monte-Carlo estimate of KL(p*‖q). */
  kl: number;
  /** mean_i [−ln q(x_i) + p*(x_i)·ln p*(x_i)], nats: the quantity the authors' code reports as KL. */
  klReference: number;
  /** mean_i ½‖s*(x_i) − ∇ₓ ln q(x_i)‖²: the Fisher divergence. */
  fisher: number;
}

/** An image a cell wrote next to its record, such as a toy density heat-map. */
export interface ArtifactReference {
  /** Kind of image, such as "density". */
  kind: string;
  /** Path of the file, relative to the folder of the record (the scenario's results folder). */
  path: string;
}

/** Fields a toy cell (2-D or multimodal10) records beyond the common ones. */
export interface ToyRunDetails {
  /** The toy configuration the cell trained with, every field (`Toy2dConfig` or `MultimodalConfig`). */
  config: object;
  /** Iterations whose update was skipped because the loss or the gradient was not finite. */
  skippedSteps: number;
  /** 2-D: the metrics after `step` updates (the last entry is the final model); multimodal10: the test NLL. */
  history: {
    step: number;
    metrics?: ToyMetricValues & { points: number; nonFinite: number };
    nll?: number;
  }[];
  /** Seconds spent building the KDE oracle's values at the evaluation points (2-D only). */
  oracleSeconds?: number;
}

export interface ResultRecord {
  schemaVersion: typeof RESULT_SCHEMA_VERSION;
  scenario: { name: string; hash: string; file: string };
  /** Stable id of the cell within its scenario, such as "mnist/fc/ssm/D784/L2/B100/seed0". */
  cellId: string;
  /** The grid point, present for every cell (also for skipped cells without a config). */
  parameters: CellParameters;
  /**
   * The full training configuration; null for a toy cell (its configuration is `toy.config`) and
   * for a skipped cell whose architecture has no `TrainingConfig` yet (glow).
   */
  config: TrainingConfig | null;
  measure: 'runtime' | 'train';
  environment: EnvironmentInfo;
  startedAt: string;
  finishedAt: string;
  outcome: CellOutcome;
  timing: TimingSummary | null;
  memory: MemorySummary | null;
  /**
   * Runtime cells: the operations of one training step, counted on the last warm-up step, or on
   * one more step after the timed ones without warm-up (see `countStepOperations`). Null when the count could not be taken: a diverged cell, a
   * step on worker threads or a failed count. Absent in train cells, in errored and skipped cells
   * and in records written before it existed.
   */
  operations?: StepOperations | null;
  /** Loss of every timed iteration, in order. */
  losses: number[];
  /** Iterations whose loss was not finite. */
  nonFiniteLosses: number;
  evaluations: EvaluationPoint[];
  /** The last evaluation's result, when the cell trained and evaluated. */
  finalNll: NllResult | null;
  /**
   * The final metrics of a completed 2-D toy cell (NaN, written as null, when they are not
   * finite). Partial because readers may meet records of other tools that leave a value out.
   */
  metrics?: Partial<ToyMetricValues>;
  /** Images the cell wrote next to its record (2-D toy cells: the density heat-map). */
  artifacts?: ArtifactReference[];
  /** Toy cells only: the toy configuration, skipped updates and evaluation history. */
  toy?: ToyRunDetails;
}
