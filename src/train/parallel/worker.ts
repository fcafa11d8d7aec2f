/**
 * Entry point of one gradient worker thread (see `gradient-engine.ts`).
 *
 * The worker builds the session's model from the same config once, on its own tfjs backend.
 * Each step it copies the current parameters from shared memory into its variables,
 * differentiates the requested scalar with `tf.variableGrads`, writes the gradients into its
 * shared gradient buffer and replies with the scalar's value. Every tensor of a step is freed
 * before the reply, also when the step fails; failures are sent back as `error` messages.
 */
import { parentPort, workerData } from 'node:worker_threads';

import * as tf from '@tensorflow/tfjs-core';

import { useBackend } from '../../backend/select.js';
import type { EnergyFlow } from '../../models/energy-flow.js';
import { logNormalizerOfLayers } from '../../models/flow-core.js';
import { constantInputEnergyOf } from '../../objectives/derivatives.js';
import { getObjective } from '../../objectives/index.js';
import type { Objective, ObjectiveOptions } from '../../objectives/objective.js';
import { RandomStream } from '../../random/stream.js';
// tfjs-core's Node entry point registers no gradients, and each thread has its own registry.
import '../../tensor/register-gradients.js';
import { createModel } from '../session-impl.js';
import type { GradientTask, StepRequest, WorkerInit, WorkerToSession } from './protocol.js';

const port = parentPort;
if (port === null) {
  throw new Error('gradient worker: this module runs only as a worker thread started by the parallel gradient engine');
}

const init = workerData as WorkerInit;

function send(message: WorkerToSession): void {
  port!.postMessage(message);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

interface WorkerState {
  model: EnergyFlow;
  objective: Objective;
  options: ObjectiveOptions;
  parameters: Float32Array;
  gradients: Float32Array;
}

async function start(): Promise<WorkerState> {
  await useBackend(init.backend);
  const { config, layout } = init;
  // The initial values are overwritten before every step, so any stream will do.
  const model = createModel(config, new RandomStream(config.seed));
  const shapes = model.variables.map((v) => v.shape);
  const matches = shapes.length === layout.shapes.length && shapes.every((shape, i) => shape.join('x') === layout.shapes[i].join('x'));
  if (!matches) {
    throw new Error(
      `gradient worker: the model built from the config has parameter shapes ${JSON.stringify(shapes)}, ` +
        `but the session's model has ${JSON.stringify(layout.shapes)}; the session must build its model with createModel(config)`,
    );
  }
  return {
    model,
    objective: getObjective(config.objective),
    options: {
      sigma: config.sigma,
      epsilon: config.epsilon,
      slices: config.slices,
      energyWeight: config.energyWeight,
      channels: config.imageShape[2],
      explicitDerivatives: config.explicitDerivatives,
    },
    parameters: new Float32Array(init.parameters),
    gradients: new Float32Array(init.gradients),
  };
}

/** Copies the shared parameter values into the model's variables (copies, so later writes cannot reach the backend). */
function assignParameters(state: WorkerState): void {
  const { offsets } = init.layout;
  state.model.variables.forEach((variable, i) => {
    const values = copyOf(state.parameters.subarray(offsets[i], offsets[i] + variable.size));
    const tensor = tf.tensor(values, variable.shape, 'float32');
    variable.assign(tensor);
    tensor.dispose();
  });
}

/**
 * Returns a copy of `view` in unshared memory. `set` copies at memory speed; `slice` measured
 * 10 to 20 times slower on 1.2 million floats (Node 20.20).
 */
function copyOf(view: Float32Array): Float32Array {
  const copy = new Float32Array(view.length);
  copy.set(view);
  return copy;
}

/** Returns the function whose gradient the task requests, and adds the input tensors it creates to `owned`. */
function scalarOf(state: WorkerState, task: GradientTask, owned: tf.Tensor[]): () => tf.Scalar {
  const { model, objective, options } = state;
  switch (task.kind) {
    case 'loss': {
      const x = tf.tensor(task.x.values, task.x.shape, 'float32');
      owned.push(x);
      const prepared: Record<string, tf.Tensor> = {};
      for (const [name, message] of Object.entries(task.prepared)) {
        prepared[name] = tf.tensor(message.values, message.shape, 'float32');
        owned.push(prepared[name]);
      }
      return () => tf.tidy(() => tf.mul(objective.loss(model, x, prepared, options), task.weight) as tf.Scalar);
    }
    case 'maximumLikelihood': {
      const x = task.x === null ? null : tf.tensor(task.x.values, task.x.shape, 'float32');
      if (x !== null) owned.push(x);
      const layers = task.logDetLayers.map((index) => model.layers[index]);
      return () =>
        tf.tidy(() => {
          // logNormalizerOfLayers returns −Σ log|det J_l| over the constant-Jacobian layers given.
          const logNormalizerShare = logNormalizerOfLayers(layers);
          if (x === null) return logNormalizerShare;
          const energySum = tf.sum(constantInputEnergyOf(model, x, options.explicitDerivatives));
          return tf.add(tf.div(energySum, task.batchSize), logNormalizerShare) as tf.Scalar;
        });
    }
    default:
      throw new Error(`gradient worker: unknown task ${JSON.stringify(task)}`);
  }
}

/** Runs one step request and returns the reply. */
function runStep(state: WorkerState, request: StepRequest): WorkerToSession {
  const started = performance.now();
  const owned: tf.Tensor[] = [];
  try {
    assignParameters(state);
    const scalar = scalarOf(state, request.task, owned);
    const { value, grads } = tf.variableGrads(scalar, state.model.variables);
    owned.push(value, ...Object.values(grads));

    const { offsets } = init.layout;
    const reached = new Uint8Array(state.model.variables.length);
    state.model.variables.forEach((variable, i) => {
      const gradient = grads[variable.name];
      const target = state.gradients.subarray(offsets[i], offsets[i] + variable.size);
      if (gradient === undefined) {
        target.fill(0);
      } else {
        target.set(gradient.dataSync() as Float32Array);
        reached[i] = 1;
      }
    });
    const scalarValue = (value.dataSync() as Float32Array)[0];
    owned.forEach((t) => t.dispose());
    owned.length = 0;
    return {
      type: 'done',
      id: request.id,
      value: scalarValue,
      reached,
      workerMs: performance.now() - started,
      tensors: tf.memory().numTensors,
    };
  } finally {
    owned.forEach((t) => t.dispose());
  }
}

try {
  const state = await start();
  port.on('message', (request: StepRequest) => {
    try {
      send(runStep(state, request));
    } catch (error) {
      // NOTE: tfjs 4.22 does not free the tensors a gradient computation made before it threw
      // (about 7 per failed call), so each failed step can leave a few tensors in this worker.
      send({ type: 'error', id: request.id, message: messageOf(error) });
    }
  });
  send({ type: 'ready' });
} catch (error) {
  send({ type: 'error', id: null, message: messageOf(error) });
}
