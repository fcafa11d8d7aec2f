/**
 * Messages between the training session's thread and its gradient workers.
 *
 * Parameters and gradients travel through shared memory: the session writes every parameter
 * into one `SharedArrayBuffer` before a step, and each worker writes its gradient into a
 * `SharedArrayBuffer` of its own, so neither is copied through a message. The batch slices are
 * small (B·D floats) and travel as transferred `ArrayBuffer`s.
 */
import type { TrainingConfig } from '../session.js';

/** The position of each parameter in the shared parameter and gradient buffers, in `model.variables` order. */
export interface ParameterLayout {
  /** Start of each parameter, in float32 elements. */
  offsets: number[];
  shapes: number[][];
  /** Total float32 elements of all parameters. */
  size: number;
}

/** The data a worker starts with (`workerData`). */
export interface WorkerInit {
  config: TrainingConfig;
  /** The tfjs backend name the session runs on ("wasm", "cpu", "tensorflow"). */
  backend: string;
  layout: ParameterLayout;
  /** Float32 parameter values, written by the session before each step; the worker only reads. */
  parameters: SharedArrayBuffer;
  /** Float32 gradient values, written by this worker; the session only reads after `done`. */
  gradients: SharedArrayBuffer;
}

/** A float32 tensor sent by value. */
export interface TensorMessage {
  shape: number[];
  values: Float32Array;
}

/**
 * The scalar a worker differentiates in one step. Every scalar is already multiplied by its share of the total,
 * so the session adds the workers' values and gradients without weights.
 * - `loss`: `weight` times the objective's loss on a slice of the batch (with the matching
 *   slices of the prepared tensors), where `weight` is the slice's fraction of the batch;
 * - `maximumLikelihood`: a share of ML's loss mean_b E(x_b) + log Z(θ), namely Σ_{rows sent} E / B
 *   plus −Σ log|det J_l| over the constant-Jacobian layers `logDetLayers` (indices into
 *   `model.layers`). The workers' shares partition both the rows and those layers.
 */
export type GradientTask =
  | { kind: 'loss'; x: TensorMessage; prepared: Record<string, TensorMessage>; weight: number }
  | { kind: 'maximumLikelihood'; x: TensorMessage | null; batchSize: number; logDetLayers: number[] };

export interface StepRequest {
  type: 'step';
  id: number;
  task: GradientTask;
}

export type SessionToWorker = StepRequest;

export type WorkerToSession =
  | { type: 'ready' }
  | {
      type: 'done';
      id: number;
      /** The differentiated scalar's value. */
      value: number;
      /** 1 where the gradient buffer contains the parameter's gradient, 0 where the task does not reach it (zeros written). */
      reached: Uint8Array;
      /** Milliseconds the worker spent from receiving the request to posting this reply. */
      workerMs: number;
      /** `tf.memory().numTensors` after the step, for leak checks. */
      tensors: number;
    }
  | { type: 'error'; id: number | null; message: string };

/** Builds the layout of `shapes`, packed in order. */
export function parameterLayout(shapes: readonly (readonly number[])[]): ParameterLayout {
  const offsets: number[] = [];
  let size = 0;
  for (const shape of shapes) {
    offsets.push(size);
    size += shape.reduce((product, n) => product * n, 1);
  }
  return { offsets, shapes: shapes.map((shape) => [...shape]), size };
}
