/**
 * The contract between training and the runner: one training run you can step and evaluate.
 *
 * The runner times `step()` calls. Each call runs one full training iteration (preprocessing,
 * objective, backward, optimiser update, EMA update) and returns only after the backend has
 * finished it, so the wall-clock time around the call is the iteration's time.
 */
import type { ObjectiveName } from '../objectives/objective.js';

export type DatasetName = 'mnist' | 'cifar10' | 'synthetic';
export type ArchitectureName = 'fc' | 'cnn' | 'glow';
export type OptimizerName = 'rmsprop' | 'adam';

/** Everything that defines a training run; `resolveTrainingConfig` fills paper defaults. */
export interface TrainingConfig {
  dataset: DatasetName;
  architecture: ArchitectureName;
  objective: ObjectiveName;
  /** Sample shape [H, W, C] for images; D = H·W·C. For `synthetic`, random 8-bit images of this shape. */
  imageShape: [number, number, number];
  /** Number of dense layers for `fc` (the EBFlow paper, Chao et al. 2023, uses 2); ignored by other architectures. */
  depth: number;
  batchSize: number;
  seed: number;
  learningRate: number;
  /** Per-epoch multiplicative learning-rate decay γ, applied for epochs 1 … milestones−1. */
  decay: number;
  milestones: number;
  weightDecay: number;
  /** Global L2-norm gradient clipping threshold, or null for none. */
  gradientClip: number | null;
  /** EMA decay (0.999 in the EBFlow paper), or null to evaluate the raw weights. */
  emaDecay: number | null;
  /** DSM σ, FDSSM ε, SSM slices, λ: see `ObjectiveOptions`. */
  sigma: number;
  epsilon: number;
  slices: number;
  energyWeight: number;
  /** Logit scale α_l of the preprocessing (0.5 FC, 0.75 CNN). */
  logitScale: number;
  /** Residual smooth leaky ReLU (off for MNIST FC, on elsewhere). */
  residual: boolean;
  /**
   * Match after preprocessing: preprocessing outside the model (true, the EBFlow paper's default). With
   * false the scalings and the logit are layers of the model, whose input is the dequantised pixel
   * value in [0, 256); DSM and FDSSM are then rejected.
   */
  matchAfterPreprocessing: boolean;
  /** Use explicit energy derivatives where the model has them. */
  explicitDerivatives: boolean;
  /**
   * Spectral normalisation of every convolution of the CNN. The EBFlow authors' configs turn it on
   * for the CIFAR-10 CNN with ml, ssm and dsm and off otherwise. Must be false for `fc`.
   */
  spectralNorm: boolean;
  /**
   * Threads that compute each step's gradient. With 1 the calling thread computes it. With 2 the
   * batch is split over two worker threads, each with its own tfjs backend, while the calling
   * thread keeps the parameters, the random stream, the optimiser and the EMA. The losses and
   * parameters agree with a run on one thread up to float32 rounding.
   */
  workers: 1 | 2;
  /** The optimiser: PyTorch-style RMSprop (every FC and CNN run) or Adam (β 0.9/0.999, ε 1e-8; the Glow runs). */
  optimizer: OptimizerName;
  /**
   * Rows per gradient computation. Each step splits its batch into microbatches of at most this
   * many rows and sums their gradients weighted by their share of the batch, which gives the
   * full-batch step up to float32 rounding with the memory of one microbatch. Equal to batchSize
   * (no splitting) by default, except for Glow.
   */
  microbatchSize: number;
  /** Glow only: steps [ActNorm → Conv1x1 → AffineCoupling] per block (16 in the EBFlow paper); absent for other architectures. */
  glowBlockSize?: number;
  /** Glow only: hidden channels of every coupling network (512 in the EBFlow paper); absent for other architectures. */
  glowWidth?: number;
  /** Folder of CIFAR-10 binary batches, for `cifar10`. */
  cifarDirectory?: string;
}

/** Milliseconds spent in each phase of one iteration; phases an objective lacks are absent. */
export interface PhaseTimes {
  preprocess?: number;
  prepare?: number;
  forwardBackward?: number;
  update?: number;
}

export interface StepResult {
  /** The loss value of this iteration (may be NaN or ±Infinity: see `finite`). */
  loss: number;
  finite: boolean;
  /** 1-based count of optimiser updates done so far. */
  step: number;
  phases: PhaseTimes;
}

export interface NllResult {
  split: 'validation' | 'test';
  images: number;
  /** Mean negative log-likelihood in nats per image (8-bit convention, exact linear log-dets). */
  nllNats: number;
  /** nllNats / (D · ln 2). */
  bitsPerDim: number;
  /** Images whose log-likelihood was not finite (left out of the mean, counted here). */
  nonFinite: number;
}

export interface TrainingSession {
  readonly config: TrainingConfig;
  /** Runs one training iteration and waits for the backend to finish it. */
  step(): Promise<StepResult>;
  /** Evaluates the NLL with the EMA weights (or raw weights without EMA) on up to `maxImages`. */
  evaluate(split: 'validation' | 'test', maxImages?: number): Promise<NllResult>;
  /** Training iterations per epoch for this data set and batch size. */
  readonly iterationsPerEpoch: number;
  /** Frees every tensor the session owns. */
  dispose(): void;
  /**
   * Writes everything needed to resume the run exactly (parameters, optimiser, EMA, buffers,
   * random stream, data order, step) to one file, atomically. Optional: not every session
   * implements checkpoints.
   */
  saveCheckpoint?(path: string): Promise<void>;
}
