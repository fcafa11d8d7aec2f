/**
 * The training loop shared by the toy experiments. Each iteration perturbs a batch (the first
 * one also initialises ActNorm), takes the objective's gradient in row chunks, skips the update
 * when it is not finite, clips by global norm, updates with Adam and then the EMA. Evaluations
 * run with the EMA weights at fixed steps.
 *
 * Differences from the authors' toy loop, chosen deliberately:
 * - ActNorm is initialised from the first perturbed training batch for every objective. The
 *   authors' SML initialises it from its first energy pass over the mixed batch [x; x̂], whose
 *   samples x̂ were drawn through the uninitialised ActNorm.
 * - The EMA shadows are taken after that initialisation. The authors' shadows start at ActNorm's
 *   pre-initialisation values (loc 0, scale 1) and catch up within a few dozen updates through
 *   the EMA's (1 + n)/(10 + n) warm-up.
 * - A step is skipped, and counted, when the loss or the gradient norm is not finite. The
 *   authors skip a step on a NaN loss only.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { RandomStream } from '../random/stream.js';
import { clipByGlobalNorm, globalNorm } from '../train/clip.js';
import { ExponentialMovingAverage } from '../train/ema.js';
import { Adam } from '../train/adam.js';
import type { BatchSampler } from './datasets.js';
import type { ToyBatch, ToyObjective, ToyObjectiveSettings } from './objectives.js';
import type { ToyFlow } from './toy-flow.js';

export interface ToyLoopOptions<Evaluation> {
  model: ToyFlow;
  objective: ToyObjective;
  settings: ToyObjectiveSettings;
  sampler: BatchSampler;
  /** The run's stream: perturbation noise, directions and model samples come from it. */
  random: RandomStream;
  iterations: number;
  learningRate: number;
  /** Maximum global gradient norm; 0 turns clipping off. */
  gradientClip: number;
  /** EMA decay, or null for no EMA (evaluations then use the live weights). */
  emaDecay: number | null;
  /** Adam's weight decay λ (default 0) and whether it is decoupled (AdamW). */
  weightDecay?: number;
  decoupledWeightDecay?: boolean;
  /** Largest number of rows per gradient pass; larger batches are split and their gradients averaged. */
  chunkRows: number;
  /**
   * Evaluate after every `evaluateEvery` updates and after the last one; with a positive value
   * also once before the first update (after ActNorm's initialisation). 0: after the last only.
   */
  evaluateEvery: number;
  /**
   * Computes an evaluation after `step` updates and `iteration` iterations (skipped ones
   * included); called with the EMA weights in place.
   */
  evaluate(step: number, iteration: number): Evaluation;
  /** Called after every iteration, for progress output. */
  onStep?(progress: ToyStepProgress): void;
}

export interface ToyStepProgress {
  /** 1-based iteration. */
  iteration: number;
  loss: number;
  skipped: boolean;
  /** Wall-clock time of the iteration, ms (batch, prepare, gradient, update, EMA; no evaluation). */
  milliseconds: number;
}

export interface ToyLoopResult<Evaluation> {
  /** The loss of every iteration (NaN or ±Infinity for skipped ones). */
  losses: number[];
  /** Iterations whose update was skipped because the loss or the gradient was not finite. */
  skippedSteps: number;
  /** Wall-clock time of every iteration, ms. */
  iterationMs: number[];
  /** `step` counts the updates applied, `iteration` the iterations run (skipped ones included). */
  evaluations: { step: number; iteration: number; value: Evaluation }[];
}

/**
 * Runs the loop. Every iteration costs the objective's forward and backward passes on B rows,
 * O(P) for the optimiser and EMA, and B·D normal draws for the perturbation.
 */
export async function runToyLoop<Evaluation>(options: ToyLoopOptions<Evaluation>): Promise<ToyLoopResult<Evaluation>> {
  const { model, objective, settings, sampler, random, iterations } = options;
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new RangeError(`runToyLoop: iterations must be a positive integer, received ${iterations}`);
  }
  if (!Number.isInteger(options.chunkRows) || options.chunkRows < 1) {
    throw new RangeError(`runToyLoop: chunkRows must be a positive integer, received ${options.chunkRows}`);
  }
  if (!(options.gradientClip >= 0)) {
    throw new RangeError(`runToyLoop: gradientClip must be ≥ 0 (0 turns clipping off), received ${options.gradientClip}`);
  }
  const optimizer = new Adam(model.variables, {
    learningRate: options.learningRate,
    weightDecay: options.weightDecay ?? 0,
    decoupledWeightDecay: options.decoupledWeightDecay ?? false,
  });
  let ema: ExponentialMovingAverage | null = null;
  const result: ToyLoopResult<Evaluation> = { losses: [], skippedSteps: 0, iterationMs: [], evaluations: [] };

  const evaluate = async (step: number, iteration: number): Promise<void> => {
    const value = ema === null ? options.evaluate(step, iteration) : await ema.withShadowWeights(() => options.evaluate(step, iteration));
    result.evaluations.push({ step, iteration, value });
  };

  try {
    for (let iteration = 1; iteration <= iterations; iteration++) {
      const started = performance.now();

      // 1. Perturbed batch, and on the first batch the data-dependent initialisation.
      const batch = drawBatch(sampler, random, settings.noiseStd, model.dimension);
      if (!model.initialized) model.initializeFromData(batch.points);
      let initialEvaluationMs = 0;
      if (iteration === 1) {
        if (options.emaDecay !== null) ema = new ExponentialMovingAverage(model.variables, options.emaDecay);
        if (options.evaluateEvery > 0) {
          const evaluationStarted = performance.now();
          await evaluate(0, 0);
          initialEvaluationMs = performance.now() - evaluationStarted;
        }
      }

      // 2. The objective's own draws, then the gradient.
      Object.assign(batch, objective.prepare(model, batch, random, settings));
      const { loss, gradients } = chunkedGradients(model, objective, batch, settings, options.chunkRows);
      tf.dispose(Object.values(batch));

      // 3. Skip non-finite steps; otherwise clip, update and average.
      const norm = globalNorm(gradients);
      const normValue = norm.dataSync()[0];
      const skipped = !Number.isFinite(loss) || !Number.isFinite(normValue);
      if (skipped) {
        result.skippedSteps += 1;
      } else {
        const clipped = options.gradientClip > 0 ? clipByGlobalNorm(gradients, options.gradientClip, norm) : gradients;
        optimizer.apply(clipped);
        if (clipped !== gradients) tf.dispose(clipped);
        ema?.update();
      }
      tf.dispose([norm, ...gradients]);

      const milliseconds = performance.now() - started - initialEvaluationMs;
      result.losses.push(loss);
      result.iterationMs.push(milliseconds);
      options.onStep?.({ iteration, loss, skipped, milliseconds });

      const evaluateNow = (options.evaluateEvery > 0 && iteration % options.evaluateEvery === 0) || iteration === iterations;
      if (evaluateNow) await evaluate(optimizer.updateCount, iteration);
    }
  } finally {
    optimizer.dispose();
    ema?.dispose();
  }
  return result;
}

/** Draws a batch x = data + std·n (n drawn only when std > 0) as `points` and `noise` tensors. */
function drawBatch(sampler: BatchSampler, random: RandomStream, noiseStd: number, dimension: number): ToyBatch {
  const clean = sampler.next();
  const rows = clean.length / dimension;
  if (!(noiseStd > 0)) return { points: tf.tensor2d(clean, [rows, dimension]) };
  const noise = random.normalArray(clean.length);
  const perturbed = new Float32Array(clean.length);
  for (let k = 0; k < clean.length; k++) perturbed[k] = clean[k] + noiseStd * noise[k];
  return { points: tf.tensor2d(perturbed, [rows, dimension]), noise: tf.tensor2d(noise, [rows, dimension]) };
}

/**
 * Returns the batch loss and its θ-gradient, one tensor per model variable, owned by the caller.
 * Both are computed over row chunks of at most `chunkRows` and combined with weights rows/B,
 * which is exact because every toy loss is a mean over rows.
 */
function chunkedGradients(
  model: ToyFlow,
  objective: ToyObjective,
  batch: ToyBatch,
  settings: ToyObjectiveSettings,
  chunkRows: number,
): { loss: number; gradients: tf.Tensor[] } {
  const rows = batch.points.shape[0];
  const variables = model.variables;
  let total: tf.Tensor[] | null = null;
  let loss = 0;
  for (let start = 0; start < rows; start += chunkRows) {
    const size = Math.min(chunkRows, rows - start);
    const weight = size / rows;
    const chunk = size === rows ? batch : sliceRows(batch, start, size);
    const { value, grads } = tf.variableGrads(() => objective.loss(model, chunk, settings), variables);
    loss += weight * value.dataSync()[0];
    const current = variables.map((variable) => grads[variable.name] ?? tf.zerosLike(variable));
    const previous: tf.Tensor[] | null = total;
    total = tf.tidy(() =>
      current.map((gradient, i) => {
        const weighted = tf.mul(gradient, weight);
        return previous === null ? weighted : tf.add(previous[i], weighted);
      }),
    );
    tf.dispose([value, ...current, ...Object.values(grads), ...(previous ?? [])]);
    if (chunk !== batch) tf.dispose(Object.values(chunk));
  }
  return { loss, gradients: total ?? [] };
}

function sliceRows(batch: ToyBatch, start: number, size: number): ToyBatch {
  const chunk: ToyBatch = {};
  for (const [key, tensor] of Object.entries(batch)) chunk[key] = tf.slice(tensor, start, size);
  return chunk;
}
