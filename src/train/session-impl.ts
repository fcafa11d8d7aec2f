/**
 * The training session: one EBFlow training run that the runner steps and evaluates.
 *
 * One `RandomStream`, seeded with `config.seed`, makes every draw of the run. The order is fixed:
 * model initialisation, synthetic images and, for Glow, the dequantisation noise of the ActNorm
 * initialisation batch first, then per step the data order (at each epoch
 * start, for shuffled data sets), the augmentation, the dequantisation noise and the objective's
 * noise or directions. Evaluations draw their dequantisation noise from the same stream, so a run
 * repeats exactly when its sequence of `step` and `evaluate` calls repeats.
 *
 * A checkpoint (`saveCheckpoint`, `resumeTrainingSession`) stores the parameters, the optimiser
 * and EMA state, the model's buffers, the stream's state, the data order and the counters, so a
 * resumed run continues exactly as the uninterrupted one would.
 */
import * as tf from '@tensorflow/tfjs-core';

import { loadCifar10 } from '../data/cifar10.js';
import type { ImageDataset } from '../data/dataset.js';
import { loadMnist } from '../data/mnist.js';
import { preprocess } from '../data/preprocess.js';
import { createSyntheticDataset, SYNTHETIC_DEFAULT_SIZES } from '../data/synthetic.js';
import { evaluateNllWithInModelPreprocessing } from '../evaluation/dequantized-nll.js';
import { DEFAULT_EVALUATION_BATCH_SIZE, evaluateNll } from '../evaluation/nll.js';
import type { EnergyFlow } from '../models/energy-flow.js';
import { createCnnFlow } from '../models/cnn-flow.js';
import { createFcFlow } from '../models/fc-flow.js';
import { createGlow, GlowFlow } from '../models/glow.js';
import { PreprocessedFlow, withInModelPreprocessing } from '../models/preprocessed-flow.js';
import { getObjective } from '../objectives/index.js';
import type { Objective, ObjectiveOptions, PreparedBatch } from '../objectives/objective.js';
import { RandomStream, type RandomState } from '../random/stream.js';
// tfjs-core's Node entry point registers no gradients; tf.variableGrads needs them.
import '../tensor/register-gradients.js';
import { float32TensorFrom } from '../tensor/wasm-memory.js';
import {
  CheckpointError,
  checkpointMismatches,
  namedModelTensors,
  readCheckpoint,
  writeCheckpoint,
  type CheckpointContents,
  type CheckpointTensor,
  type ExpectedTensor,
  type NamedVariable,
} from './checkpoint.js';
import { Adam, type AdamState } from './adam.js';
import { clipScale, globalNorm } from './clip.js';
import { ParallelGradientEngine } from './parallel/gradient-engine.js';
import { resolveTrainingConfig } from './config.js';
import { ExponentialMovingAverage, type EmaState } from './ema.js';
import { accumulateGradients } from './microbatch.js';
import { RmsProp, type RmsPropState } from './rmsprop.js';
import { epochOfIteration, learningRateForEpoch } from './schedule.js';
import type { NllResult, PhaseTimes, StepResult, TrainingConfig, TrainingSession } from './session.js';

export interface SessionOptions {
  /**
   * The name tfjs registered the caller's backend under, as `tf.getBackend()` returns it ("wasm",
   * "cpu", "tensorflow"). When given, the session checks that tfjs is running on it.
   */
  backend?: string;
  /** A data set to train on in place of the one `config.dataset` names; its image shape must match. */
  dataset?: ImageDataset;
  /** Images per evaluation batch; default 100. */
  evaluationBatchSize?: number;
}

/**
 * A step's result with the values the runner's contract leaves out. `finite` is false when the
 * loss or the gradient norm is not finite, and exactly then the optimiser and EMA updates were
 * skipped.
 */
export interface SessionStepResult extends StepResult {
  /** Global L2 norm of the gradient before clipping (NaN or Infinity when it was not finite). */
  gradientNorm: number;
  /** The learning rate of this iteration. */
  learningRate: number;
}

/** Everything a checkpoint needs to resume a session exactly. */
export interface SessionState {
  /** Training iterations run so far (updated or skipped). */
  iteration: number;
  nonFiniteSteps: number;
  /** The current epoch's data order, or null for unshuffled data. */
  epochOrder: Int32Array | null;
  random: RandomState;
  /** The model's parameters, in `model.variables` order. */
  parameters: Float32Array[];
  /** RMSprop's or Adam's state, as `config.optimizer` names. */
  optimizer: RmsPropState | AdamState;
  ema: EmaState | null;
  /**
   * The model's buffers (spectral-norm vectors), in `namedModelTensors(model).buffers` order.
   * `getState` always fills it; `setState` leaves the buffers unchanged when it is absent.
   */
  buffers?: Float32Array[];
}

/** The session with the members the runner's contract leaves out. */
export interface EbflowTrainingSession extends TrainingSession {
  readonly model: EnergyFlow;
  readonly dataset: ImageDataset;
  /** Training iterations run so far, updated or skipped. */
  readonly iteration: number;
  /** Iterations whose loss or gradient was not finite; their updates were skipped. */
  readonly nonFiniteSteps: number;
  /** The gradient workers when `config.workers` is 2 (their timings and tensor counts), otherwise null. */
  readonly gradientWorkers: ParallelGradientEngine | null;
  step(): Promise<SessionStepResult>;
  getState(): SessionState;
  setState(state: SessionState): void;
  /**
   * Runs `fn` with the weights evaluation uses (the EMA shadows, or the raw weights without EMA)
   * and the model in evaluation mode (spectral-norm vectors fixed), then restores both, also
   * when `fn` throws.
   */
  withEvaluationWeights<T>(fn: (model: EnergyFlow) => T | Promise<T>): Promise<T>;
  /** Returns the session's complete state as checkpoint contents (copies). O(parameters). */
  checkpointContents(): CheckpointContents;
  /**
   * Restores checkpoint contents into this session. Throws a `CheckpointError` listing every
   * difference (config, architecture, tensor names and shapes) when they do not belong to it.
   */
  restoreCheckpoint(contents: CheckpointContents, source?: string): void;
  /** Writes `checkpointContents()` to `path` atomically (see src/train/checkpoint.ts). */
  saveCheckpoint(path: string): Promise<void>;
}

/**
 * Builds the model for `config.architecture`. Each architecture is one line here; every model
 * takes its initial values from `random`. Without MaP the flow is wrapped so that the scalings
 * and the logit are its first layers and its input is the dequantised pixel value.
 */
export function createModel(config: TrainingConfig, random: RandomStream): EnergyFlow {
  const dimension = config.imageShape[0] * config.imageShape[1] * config.imageShape[2];
  let flow: EnergyFlow;
  switch (config.architecture) {
    case 'fc':
      if (config.spectralNorm) {
        throw new RangeError('training session: spectralNorm applies to convolutions, and architecture "fc" has none; set it to false');
      }
      flow = createFcFlow({ dimension, depth: config.depth, residual: config.residual, random });
      break;
    case 'cnn':
      flow = createCnnFlow({ imageShape: config.imageShape, residual: config.residual, spectralNorm: config.spectralNorm, random });
      break;
    case 'glow':
      flow = createGlow({ imageShape: config.imageShape, blockSize: config.glowBlockSize, width: config.glowWidth, random });
      break;
    default:
      throw new RangeError(`training session: unknown architecture ${JSON.stringify(config.architecture)}; use "fc", "cnn" or "glow"`);
  }
  return config.matchAfterPreprocessing ? flow : withInModelPreprocessing(flow, config.logitScale);
}

/** Switches a model with modes (the CNN's spectral normalisation) to training or evaluation mode. */
function setModelTraining(model: EnergyFlow, training: boolean): void {
  (model as EnergyFlow & { setTraining?(training: boolean): void }).setTraining?.(training);
}

/** Frees the model's variables and buffers. */
function disposeModel(model: EnergyFlow): void {
  const disposable = model as EnergyFlow & { dispose?(): void };
  if (disposable.dispose !== undefined) disposable.dispose();
  else model.variables.forEach((v) => v.dispose());
}

/** Loads the data set `config.dataset` names; synthetic images are drawn from `random`. */
export async function loadDataset(config: TrainingConfig, random: RandomStream): Promise<ImageDataset> {
  switch (config.dataset) {
    case 'mnist':
      return loadMnist();
    case 'cifar10':
      return loadCifar10({ directory: config.cifarDirectory });
    case 'synthetic':
      return createSyntheticDataset({
        imageShape: config.imageShape,
        random,
        // At least one full batch per epoch.
        sizes: { train: Math.max(SYNTHETIC_DEFAULT_SIZES.train, config.batchSize) },
      });
    default:
      throw new RangeError(`training session: unknown dataset ${JSON.stringify(config.dataset)}`);
  }
}

/**
 * Creates a training session for `config` (checked again with `resolveTrainingConfig`): builds
 * the model, loads the data, and sets up RMSprop, the EMA and the schedule. The data loading is
 * the slow part (MNIST about 0.3 s, CIFAR-10 about 1 s on the first call of a process).
 */
export async function createTrainingSession(
  config: TrainingConfig,
  options: SessionOptions = {},
): Promise<EbflowTrainingSession> {
  const resolved = resolveTrainingConfig(config);
  // getBackend() reads the engine's choice without starting one: tf.backend() would start the
  // wasm backend's asynchronous set-up, after which an uncaught error exits the process with status 7.
  if (!tf.getBackend()) {
    throw new Error(
      'training session: no tfjs backend is ready; await selectBackend() from this library ' +
        '(or tf.setBackend(name) and tf.ready()) before creating a session',
    );
  }
  if (options.backend !== undefined && tf.getBackend() !== options.backend) {
    throw new Error(
      `training session: the caller selected backend "${options.backend}" but tfjs runs on "${tf.getBackend()}"; ` +
        `call tf.setBackend("${options.backend}") and await tf.ready() first`,
    );
  }
  const random = new RandomStream(resolved.seed);
  const model = createModel(resolved, random);
  try {
    const dataset = options.dataset ?? (await loadDataset(resolved, random));
    if (!dataset.imageShape.every((size, i) => size === resolved.imageShape[i])) {
      throw new RangeError(
        `training session: the data set's images have shape [${dataset.imageShape.join(', ')}] but the config's imageShape is ` +
          `[${resolved.imageShape.join(', ')}]; make them equal`,
      );
    }
    if (model instanceof GlowFlow) initializeActNorms(model, dataset, random, resolved.logitScale);
    const parallel = resolved.workers === 2 ? await ParallelGradientEngine.create(resolved, model, tf.getBackend()) : null;
    return new Session(resolved, model, dataset, random, options.evaluationBatchSize ?? defaultEvaluationBatchSize(resolved), parallel);
  } catch (error) {
    disposeModel(model);
    throw error;
  }
}

/** Images of the validation split that initialise Glow's ActNorm layers, as in the reference. */
export const ACTNORM_INITIALIZATION_IMAGES = 50;

/**
 * Runs Glow's data-dependent ActNorm initialisation on the first 50 validation images (fewer when
 * the split is smaller), preprocessed as training batches are, with dequantisation noise drawn
 * from `random`. Costs one forward pass on 50 images.
 */
function initializeActNorms(model: GlowFlow, dataset: ImageDataset, random: RandomStream, logitScale: number): void {
  const count = Math.min(ACTNORM_INITIALIZATION_IMAGES, dataset.sizes.validation);
  const indices = Array.from({ length: count }, (_, i) => i);
  const pixels = dataset.batch('validation', indices);
  const [height, width, channels] = dataset.imageShape;
  const pixelTensor = tf.tensor4d(new Float32Array(pixels), [count, height, width, channels]);
  try {
    const { x, logDet } = preprocess(pixelTensor, random, logitScale);
    try {
      model.initialize(x);
    } finally {
      x.dispose();
      logDet.dispose();
    }
  } finally {
    pixelTensor.dispose();
  }
}

/**
 * Creates a session with the config stored in the checkpoint at `path` and restores the
 * checkpoint into it, so stepping it continues the saved run exactly. `options` are those of
 * `createTrainingSession`; pass `dataset` when the data lives elsewhere than the stored config
 * names. Costs a session creation plus reading the file.
 */
export async function resumeTrainingSession(path: string, options: SessionOptions = {}): Promise<EbflowTrainingSession> {
  const contents = await readCheckpoint(path);
  const session = await createTrainingSession(resolveTrainingConfig(contents.config), options);
  try {
    session.restoreCheckpoint(contents, path);
    return session;
  } catch (error) {
    session.dispose();
    throw error;
  }
}

/** A model restored from a checkpoint, for sampling and inpainting. */
export interface CheckpointModel {
  model: EnergyFlow;
  config: TrainingConfig;
  /** The weights the model contains: the EMA shadows or the raw trained parameters. */
  weights: 'ema' | 'raw';
  /** Training iterations the checkpoint had run. */
  iteration: number;
  /** Frees the model's tensors. */
  dispose(): void;
}

/**
 * Loads the model of the checkpoint at `path` without data or optimiser, in evaluation mode.
 * With `weights: 'ema'` (the default) it contains the EMA shadows, as evaluation does, and the raw
 * parameters when the run had no EMA; `'raw'` always loads the raw parameters. Throws a
 * `CheckpointError` when the file is damaged or its tensors do not fit the model its config
 * builds. O(parameters).
 */
export async function loadCheckpointModel(path: string, options: { weights?: 'ema' | 'raw' } = {}): Promise<CheckpointModel> {
  const contents = await readCheckpoint(path);
  const config = resolveTrainingConfig(contents.config);
  const model = createModel(config, new RandomStream(config.seed));
  try {
    const { parameters, buffers } = namedModelTensors(model);
    const expected: ExpectedTensor[] = [
      ...parameters.map(({ name, variable }) => ({ group: 'parameter' as const, name, shape: variable.shape })),
      ...buffers.map(({ name, variable }) => ({ group: 'buffer' as const, name, shape: variable.shape })),
    ];
    const relevant = { ...contents, tensors: contents.tensors.filter((t) => t.group === 'parameter' || t.group === 'buffer') };
    const problems = checkpointMismatches(relevant, { config: contents.config, architecture: model.architecture, tensors: expected });
    if (problems.length > 0) {
      throw new CheckpointError(path, 'mismatch', `checkpoint ${path} does not fit the model its config builds: ${problems.join('; ')}`);
    }

    const useEma = (options.weights ?? 'ema') === 'ema' && contents.tensors.some((t) => t.group === 'ema');
    const group = useEma ? 'ema' : 'parameter';
    for (const { name, variable } of parameters) {
      assignValues(variable, findTensor(contents, group, name, path).values);
    }
    for (const { name, variable } of buffers) {
      assignValues(variable, findTensor(contents, 'buffer', name, path).values);
    }
    setModelTraining(model, false);
    return { model, config, weights: useEma ? 'ema' : 'raw', iteration: contents.counters.iteration, dispose: () => disposeModel(model) };
  } catch (error) {
    disposeModel(model);
    throw error;
  }
}

function findTensor(contents: CheckpointContents, group: CheckpointTensor['group'], name: string, source: string): CheckpointTensor {
  const tensor = contents.tensors.find((t) => t.group === group && t.name === name);
  if (tensor === undefined) {
    throw new CheckpointError(source, 'mismatch', `checkpoint ${source} has no ${group} tensor "${name}"; it was written for another model`);
  }
  return tensor;
}

function assignValues(variable: tf.Variable, values: Float32Array | Int32Array): void {
  const tensor = tf.tensor(Float32Array.from(values), variable.shape, 'float32');
  variable.assign(tensor);
  tensor.dispose();
}

/**
 * The per-parameter arrays of each optimiser's state and the suffix their checkpoint names add
 * to the parameter's name. The squared-gradient averages (RMSprop's, Adam's v) keep the bare name.
 */
const OPTIMIZER_SLOTS = {
  rmsprop: [{ field: 'squareAverages', suffix: '' }],
  adam: [
    { field: 'squareAverages', suffix: '' },
    { field: 'firstMoments', suffix: '.adam.firstMoment' },
  ],
} as const;

/** Builds the optimiser state of `config.optimizer` from the arrays `arraysFor(suffix)` returns. */
function optimizerStateOf(config: TrainingConfig, updates: number, arraysFor: (suffix: string) => Float32Array[]): RmsPropState | AdamState {
  if (config.optimizer === 'adam') {
    return { updates, squareAverages: arraysFor(''), firstMoments: arraysFor('.adam.firstMoment') };
  }
  return { updates, squareAverages: arraysFor('') };
}

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
function now(): number {
  return performance.now();
}

class Session implements EbflowTrainingSession {
  readonly iterationsPerEpoch: number;
  private readonly objective: Objective;
  private readonly objectiveOptions: ObjectiveOptions;
  private readonly optimizer: RmsProp | Adam;
  private readonly ema: ExponentialMovingAverage | null;
  private readonly shuffle: boolean;
  /** The checkpoint names of the model's parameters (in `model.variables` order) and buffers. */
  private readonly named: { parameters: NamedVariable[]; buffers: NamedVariable[] };
  private epochOrder: Int32Array | null = null;
  private iterationCount = 0;
  private nonFiniteCount = 0;
  private busy = false;
  private disposed = false;

  constructor(
    readonly config: TrainingConfig,
    readonly model: EnergyFlow,
    readonly dataset: ImageDataset,
    private readonly random: RandomStream,
    private readonly evaluationBatchSize: number,
    /** The gradient workers when `config.workers` is 2, otherwise null. */
    readonly gradientWorkers: ParallelGradientEngine | null = null,
  ) {
    // Drop the last partial batch, so every step has B images. MNIST's 50,000 and CIFAR-10's
    // 40,000 training images divide evenly into the reference's batches of 100.
    this.iterationsPerEpoch = Math.floor(dataset.sizes.train / config.batchSize);
    if (this.iterationsPerEpoch < 1) {
      throw new RangeError(
        `training session: batchSize ${config.batchSize} exceeds the ${dataset.sizes.train} training images of ${dataset.name}; use a smaller batch`,
      );
    }
    this.objective = getObjective(config.objective);
    this.objectiveOptions = {
      sigma: config.sigma,
      epsilon: config.epsilon,
      slices: config.slices,
      energyWeight: config.energyWeight,
      channels: config.imageShape[2],
      explicitDerivatives: config.explicitDerivatives,
    };
    // The reference shuffles CIFAR-10's training images every epoch and keeps MNIST in file order.
    this.shuffle = config.dataset === 'cifar10';
    const optimizerOptions = { learningRate: learningRateForEpoch(1, config), weightDecay: config.weightDecay };
    this.optimizer = config.optimizer === 'adam' ? new Adam(model.variables, optimizerOptions) : new RmsProp(model.variables, optimizerOptions);
    this.ema = config.emaDecay === null ? null : new ExponentialMovingAverage(model.variables, config.emaDecay);
    this.named = namedModelTensors(model);
  }

  get iteration(): number {
    return this.iterationCount;
  }

  get nonFiniteSteps(): number {
    return this.nonFiniteCount;
  }

  /**
   * Runs one training iteration and resolves once the backend has finished it.
   *
   * 1. Preprocess: pick the batch (a new epoch sets the learning rate and, for CIFAR-10, draws
   *    a new order), augment, dequantise, scale and logit, without gradients.
   * 2. Prepare: the objective draws its noise, directions or samples.
   * 3. Forward and backward: `tf.variableGrads` of the loss, one microbatch at a time when
   *    `microbatchSize` is below the batch size; the loss value is read back.
   * 4. Update: the global gradient norm is read back. When the loss and the norm are finite,
   *    the gradient is clipped (if configured) and applied by RMSprop or Adam, and the EMA moves.
   *    Otherwise the update is skipped and counted, and no non-finite value is zeroed. Without
   *    clipping, RMSprop's fused pass computes the norm along with the update, which it keeps
   *    only when both are finite.
   * On backends that run kernels asynchronously (webgl, tfjs-node), phases 1 and 2 measure only
   * the dispatch time. Phases 3 and 4 end with a read-back, so the total is complete.
   */
  async step(): Promise<SessionStepResult> {
    this.checkUsable('step');
    this.busy = true;
    const owned: tf.Tensor[] = [];
    try {
      const phases: PhaseTimes = {};

      // 1. Preprocess.
      let start = now();
      const learningRate = this.startIterationBookkeeping();
      const x = this.trainingBatch();
      owned.push(x);
      phases.preprocess = now() - start;

      // 2. Prepare.
      start = now();
      const prepared: PreparedBatch = tf.tidy(() => this.objective.prepare(this.model, x, this.random, this.objectiveOptions));
      owned.push(...Object.values(prepared));
      phases.prepare = now() - start;

      // 3. Forward and backward.
      start = now();
      const { loss, gradients } = await this.forwardBackward(x, prepared, owned);
      phases.forwardBackward = now() - start;

      // 4. Update. Without clipping, RMSprop's fused pass also returns the norm.
      start = now();
      const acceptNorm = (norm: number): boolean => Number.isFinite(loss) && Number.isFinite(norm);
      const checked =
        this.config.gradientClip === null && this.optimizer instanceof RmsProp ? this.optimizer.applyWithNorm(gradients, acceptNorm) : null;
      let gradientNorm: number;
      let finite: boolean;
      if (checked !== null) {
        gradientNorm = checked.norm;
        finite = checked.applied;
      } else {
        const norm = globalNorm(gradients);
        owned.push(norm);
        gradientNorm = (await norm.data())[0];
        finite = acceptNorm(gradientNorm);
        if (finite) {
          this.optimizer.apply(gradients, this.config.gradientClip === null ? 1 : clipScale(gradientNorm, this.config.gradientClip));
        }
      }
      if (finite) {
        this.ema?.update();
        await this.waitForBackend();
      } else {
        this.nonFiniteCount += 1;
      }
      phases.update = now() - start;

      this.iterationCount += 1;
      return {
        loss,
        finite,
        step: this.optimizer.updateCount,
        phases,
        gradientNorm,
        learningRate,
      };
    } finally {
      owned.forEach((t) => t.dispose());
      this.busy = false;
    }
  }

  /**
   * Returns the loss and one gradient per model variable (zeros where the loss does not reach
   * it), computed on this thread or, with `workers` 2, by the gradient workers. The gradients
   * are added to `owned`.
   */
  private async forwardBackward(x: tf.Tensor, prepared: PreparedBatch, owned: tf.Tensor[]): Promise<{ loss: number; gradients: tf.Tensor[] }> {
    if (this.gradientWorkers !== null) {
      const { loss, gradients } = await this.gradientWorkers.computeGradients(x, prepared);
      owned.push(...gradients);
      return { loss, gradients };
    }
    if (this.config.microbatchSize < x.shape[0]) {
      const lossOf = (rows: tf.Tensor, preparedRows: PreparedBatch): tf.Scalar =>
        this.objective.loss(this.model, rows, preparedRows, this.objectiveOptions);
      const { loss, gradients } = await accumulateGradients(lossOf, this.model.variables, x, prepared, this.config.microbatchSize);
      owned.push(...gradients);
      return { loss, gradients };
    }

    const { value, grads } = tf.variableGrads(
      () => this.objective.loss(this.model, x, prepared, this.objectiveOptions),
      this.model.variables,
    );
    owned.push(value, ...Object.values(grads));
    const loss = (await value.data())[0];
    const gradients = this.model.variables.map((v) => {
      const gradient = grads[v.name];
      if (gradient !== undefined) return gradient;
      // tf.variableGrads leaves out variables the loss does not reach: their gradient is zero.
      const zero = tf.zerosLike(v);
      owned.push(zero);
      return zero;
    });
    return { loss, gradients };
  }

  /**
   * Evaluates the NLL with the EMA weights (raw weights without EMA) on up to `maxImages` images,
   * with the model in evaluation mode. Without MaP the model's own chain replaces the external
   * preprocessing; the NLL's definition is the same.
   */
  async evaluate(split: 'validation' | 'test', maxImages?: number): Promise<NllResult> {
    this.checkUsable('evaluate');
    if (split !== 'validation' && split !== 'test') {
      throw new RangeError(`training session: evaluate() takes split "validation" or "test", received ${JSON.stringify(split)}`);
    }
    return this.withEvaluationWeights((model) => {
      const common = { dataset: this.dataset, split, maxImages, random: this.random, batchSize: this.evaluationBatchSize };
      if (model instanceof PreprocessedFlow) {
        return evaluateNllWithInModelPreprocessing({ ...common, model });
      }
      return evaluateNll({ ...common, model, logitScale: this.config.logitScale });
    });
  }

  async withEvaluationWeights<T>(fn: (model: EnergyFlow) => T | Promise<T>): Promise<T> {
    this.checkUsable('withEvaluationWeights');
    this.busy = true;
    setModelTraining(this.model, false);
    try {
      const run = async (): Promise<T> => fn(this.model);
      return this.ema === null ? await run() : await this.ema.withShadowWeights(run);
    } finally {
      setModelTraining(this.model, true);
      this.busy = false;
    }
  }

  getState(): SessionState {
    this.checkUsable('getState');
    return {
      iteration: this.iterationCount,
      nonFiniteSteps: this.nonFiniteCount,
      epochOrder: this.epochOrder === null ? null : Int32Array.from(this.epochOrder),
      random: this.random.getState(),
      parameters: this.model.variables.map((v) => Float32Array.from(v.dataSync() as Float32Array)),
      optimizer: this.optimizer.getState(),
      ema: this.ema === null ? null : this.ema.getState(),
      buffers: this.named.buffers.map(({ variable }) => Float32Array.from(variable.dataSync() as Float32Array)),
    };
  }

  /**
   * Restores a state from `getState()`: every check runs before anything changes, then the
   * optimiser, EMA, parameters, buffers, stream, data order and counters are set.
   */
  setState(state: SessionState): void {
    this.checkUsable('setState');
    this.checkState(state);

    // Each optimiser checks that the state has its own fields and rejects another's.
    (this.optimizer as { setState(optimizerState: RmsPropState | AdamState): void }).setState(state.optimizer);
    if (this.ema !== null && state.ema !== null) this.ema.setState(state.ema);
    this.model.variables.forEach((v, i) => assignValues(v, state.parameters[i]));
    state.buffers?.forEach((values, i) => assignValues(this.named.buffers[i].variable, values));
    this.random.setState(state.random);

    this.epochOrder = state.epochOrder === null ? null : Int32Array.from(state.epochOrder);
    this.iterationCount = state.iteration;
    this.nonFiniteCount = state.nonFiniteSteps;
    this.optimizer.learningRate = learningRateForEpoch(epochOfIteration(this.iterationCount, this.iterationsPerEpoch), this.config);
  }

  /** Throws a RangeError naming the first field of `state` that does not fit this session. */
  private checkState(state: SessionState): void {
    if (!Number.isInteger(state.iteration) || state.iteration < 0) {
      throw new RangeError(`training session: state.iteration must be a non-negative integer, received ${state.iteration}`);
    }
    if (!Number.isInteger(state.nonFiniteSteps) || state.nonFiniteSteps < 0) {
      throw new RangeError(`training session: state.nonFiniteSteps must be a non-negative integer, received ${state.nonFiniteSteps}`);
    }
    if ((state.ema === null) !== (this.ema === null)) {
      throw new RangeError(
        `training session: the state ${state.ema === null ? 'has no' : 'has an'} EMA but this session's emaDecay is ${this.config.emaDecay}; ` +
          'restore it into a session with the same config',
      );
    }

    const variables = this.model.variables;
    if (state.parameters.length !== variables.length || state.parameters.some((p, i) => p.length !== variables[i].size)) {
      throw new RangeError('training session: state.parameters do not match this model\'s variables; restore it into a session with the same config');
    }
    const buffers = this.named.buffers.map(({ variable }) => variable);
    if (state.buffers !== undefined && (state.buffers.length !== buffers.length || state.buffers.some((b, i) => b.length !== buffers[i].size))) {
      throw new RangeError(
        `training session: state.buffers contain ${state.buffers.length} arrays but the model has ${buffers.length} buffers of other sizes; ` +
          'restore it into a session with the same config',
      );
    }
    if (state.epochOrder !== null && state.epochOrder.length !== this.dataset.sizes.train) {
      throw new RangeError(
        `training session: state.epochOrder has ${state.epochOrder.length} entries but the training split has ${this.dataset.sizes.train} images; ` +
          'restore it into a session with the same data set',
      );
    }
  }

  checkpointContents(): CheckpointContents {
    const state = this.getState();
    const tensors: CheckpointTensor[] = [];
    const { parameters, buffers } = this.named;
    parameters.forEach(({ name, variable }, i) => {
      tensors.push({ group: 'parameter', name, shape: [...variable.shape], values: state.parameters[i] });
    });
    for (const { field, suffix } of OPTIMIZER_SLOTS[this.config.optimizer]) {
      const arrays = (state.optimizer as unknown as Record<string, Float32Array[]>)[field];
      parameters.forEach(({ name, variable }, i) => {
        tensors.push({ group: 'optimizer', name: name + suffix, shape: [...variable.shape], values: arrays[i] });
      });
    }
    if (state.ema !== null) {
      const shadows = state.ema.shadows;
      parameters.forEach(({ name, variable }, i) => tensors.push({ group: 'ema', name, shape: [...variable.shape], values: shadows[i] }));
    }
    buffers.forEach(({ name, variable }, i) => {
      tensors.push({ group: 'buffer', name, shape: [...variable.shape], values: (state.buffers as Float32Array[])[i] });
    });
    if (state.epochOrder !== null) {
      tensors.push({ group: 'dataOrder', name: 'order', shape: [state.epochOrder.length], values: state.epochOrder });
    }
    return {
      config: this.config,
      architecture: this.model.architecture,
      counters: {
        iteration: state.iteration,
        nonFiniteSteps: state.nonFiniteSteps,
        optimizerUpdates: state.optimizer.updates,
        emaUpdates: state.ema === null ? null : state.ema.updates,
        random: state.random,
      },
      tensors,
    };
  }

  /**
   * Checks `contents` against this session and restores it.
   *
   * 1. Collect every difference: config values, architecture, tensor names and shapes, and the
   *    data order's length; throw one `CheckpointError` listing them all.
   * 2. Rebuild a `SessionState` from the named tensors and apply it with `setState`.
   */
  restoreCheckpoint(contents: CheckpointContents, source = 'checkpoint'): void {
    this.checkUsable('restoreCheckpoint');

    // 1. Differences.
    const { parameters, buffers } = this.named;
    const expected: ExpectedTensor[] = [];
    const groups: ('parameter' | 'ema')[] = this.ema === null ? ['parameter'] : ['parameter', 'ema'];
    for (const group of groups) {
      for (const { name, variable } of parameters) expected.push({ group, name, shape: [...variable.shape] });
    }
    for (const { suffix } of OPTIMIZER_SLOTS[this.config.optimizer]) {
      for (const { name, variable } of parameters) expected.push({ group: 'optimizer', name: name + suffix, shape: [...variable.shape] });
    }
    for (const { name, variable } of buffers) expected.push({ group: 'buffer', name, shape: [...variable.shape] });
    const problems = checkpointMismatches(contents, { config: this.config, architecture: this.model.architecture, tensors: expected });
    const order = contents.tensors.find((t) => t.group === 'dataOrder');
    if (order !== undefined && (!(order.values instanceof Int32Array) || order.values.length !== this.dataset.sizes.train)) {
      problems.push(
        `checkpoint's data order has ${order.values.length} ${order.values instanceof Int32Array ? 'int32' : 'float32'} entries, ` +
          `this session's training split has ${this.dataset.sizes.train} images`,
      );
    }
    if (problems.length > 0) {
      throw new CheckpointError(
        source,
        'mismatch',
        `checkpoint ${source} does not match this session: ${problems.join('; ')}. ` +
          "Restore it into a session created with the checkpoint's config (resumeTrainingSession does that)",
      );
    }

    // 2. The state.
    const valuesOf = (group: CheckpointTensor['group'], name: string): Float32Array =>
      findTensor(contents, group, name, source).values as Float32Array;
    const counters = contents.counters;
    this.setState({
      iteration: counters.iteration,
      nonFiniteSteps: counters.nonFiniteSteps,
      epochOrder: order === undefined ? null : (order.values as Int32Array),
      random: counters.random,
      parameters: parameters.map(({ name }) => valuesOf('parameter', name)),
      optimizer: optimizerStateOf(this.config, counters.optimizerUpdates, (suffix) => parameters.map(({ name }) => valuesOf('optimizer', name + suffix))),
      ema:
        this.ema === null
          ? null
          : { updates: counters.emaUpdates ?? Number.NaN, shadows: parameters.map(({ name }) => valuesOf('ema', name)) },
      buffers: buffers.map(({ name }) => valuesOf('buffer', name)),
    });
  }

  async saveCheckpoint(path: string): Promise<void> {
    this.checkUsable('saveCheckpoint');
    await writeCheckpoint(path, this.checkpointContents());
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    // Terminating the workers finishes in the background; no step can run after this point.
    void this.gradientWorkers?.dispose();
    this.optimizer.dispose();
    this.ema?.dispose();
    disposeModel(this.model);
  }

  /** At the first iteration of an epoch, sets the epoch's learning rate and data order. */
  private startIterationBookkeeping(): number {
    const positionInEpoch = this.iterationCount % this.iterationsPerEpoch;
    if (positionInEpoch === 0 || (this.shuffle && this.epochOrder === null)) {
      const epoch = epochOfIteration(this.iterationCount, this.iterationsPerEpoch);
      this.optimizer.learningRate = learningRateForEpoch(epoch, this.config);
      if (this.shuffle) this.epochOrder = this.random.permutation(this.dataset.sizes.train);
    }
    return this.optimizer.learningRate;
  }

  /** Returns the preprocessed batch of this iteration, shaped for the model. */
  private trainingBatch(): tf.Tensor {
    const batchSize = this.config.batchSize;
    const first = (this.iterationCount % this.iterationsPerEpoch) * batchSize;
    const indices =
      this.epochOrder === null
        ? Array.from({ length: batchSize }, (_, i) => first + i)
        : this.epochOrder.subarray(first, first + batchSize);
    const augmentation = this.dataset.augmentsTraining ? this.random : undefined;
    const pixels = this.dataset.batch('train', indices, augmentation);
    const [height, width, channels] = this.dataset.imageShape;
    if (pixels.length !== batchSize * height * width * channels) {
      throw new Error(
        `training session: the data set returned ${pixels.length} pixel values for ${batchSize} images of ` +
          `${height}×${width}×${channels}; its batch() must return one value per pixel and channel`,
      );
    }
    if (!this.config.matchAfterPreprocessing) {
      // The model contains the scalings and the logit, so its input is the dequantised pixel
      // value, with the same uniform draws `preprocess` would take.
      return tf.tidy(() => {
        const pixelTensor = float32TensorFrom([batchSize, height, width, channels], (values) => values.set(pixels));
        const noise = float32TensorFrom(pixelTensor.shape, (values) => this.random.fillUniform(values));
        const dequantised = tf.add(pixelTensor, noise);
        return tf.reshape(dequantised, [batchSize, ...this.model.sampleShape]);
      });
    }
    return tf.tidy(() => {
      // The pixels are written into the tensor's memory directly, with no array in between.
      const pixelTensor = float32TensorFrom([batchSize, height, width, channels], (values) => values.set(pixels));
      const { x } = preprocess(pixelTensor, this.random, this.config.logitScale);
      return tf.reshape(x, [batchSize, ...this.model.sampleShape]);
    });
  }

  /**
   * Waits until the backend has run every queued kernel, by reading back one value computed
   * after the last update. Backends run kernels in order, so this value comes last.
   */
  private async waitForBackend(): Promise<void> {
    const variables = this.model.variables;
    const probe = tf.tidy(() => tf.slice(tf.reshape(variables[variables.length - 1], [-1]), 0, 1));
    try {
      await probe.data();
    } finally {
      probe.dispose();
    }
  }

  private checkUsable(method: string): void {
    if (this.disposed) {
      throw new Error(`training session: ${method}() called after dispose(); create a new session`);
    }
    if (this.busy) {
      throw new Error(`training session: ${method}() called while another step() or evaluate() is running; await it first`);
    }
  }
}

/**
 * Returns the evaluation batch size: 100 images, or the training microbatch for models (Glow)
 * whose activations for 100 images exceed the wasm backend's 4 GB memory.
 */
function defaultEvaluationBatchSize(config: TrainingConfig): number {
  return config.microbatchSize < config.batchSize ? config.microbatchSize : DEFAULT_EVALUATION_BATCH_SIZE;
}
