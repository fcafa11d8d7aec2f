/**
 * The library entry point of ebflow-bench: flows, objectives, preprocessing, training and
 * evaluation, for use without the benchmark runner.
 *
 * `import * as ebflow from 'ebflow-bench'` (or from `dist/src/index.js` in a checkout) loads
 * tfjs-core with its gradients registered. Pass tensors made with the same tfjs-core instance;
 * `ebflow.tf` is that instance. Call `await ebflow.selectBackend()` once before the first tensor.
 */
export * as tf from '@tensorflow/tfjs-core';

export { backendRequestFromEnv, selectBackend, useBackend, type BackendSelection } from './backend/select.js';
export { kernelThreadStatus, type KernelThreadStatus } from './tensor/threads/pool.js';
export { lapackThreadsStatus, type LapackThreadsStatus } from './tensor/threads/lapack-threads.js';
export { logAbsDet, sumLogAbsDet } from './tensor/linalg.js';
export { RandomStream, type RandomState } from './random/stream.js';

export type { FlowLayer, LayerForward } from './layers/layer.js';
export type { EnergyDerivatives, EnergyFlow } from './models/energy-flow.js';
export { createFcFlow, FcFlow, type FcFlowOptions } from './models/fc-flow.js';
export { createCnnFlow, CnnFlow, type CnnFlowOptions } from './models/cnn-flow.js';
export { createGlow, GlowFlow, type GlowOptions } from './models/glow.js';

export { OBJECTIVE_NAMES, type Objective, type ObjectiveName, type ObjectiveOptions } from './objectives/objective.js';
export { getObjective } from './objectives/index.js';

export { dequantizedInverse, preprocess, toPixels } from './data/preprocess.js';
export { loadMnist } from './data/mnist.js';
export { loadCifar10 } from './data/cifar10.js';

export { resolveTrainingConfig } from './train/config.js';
export type { NllResult, StepResult, TrainingConfig, TrainingSession } from './train/session.js';
export { createTrainingSession, loadCheckpointModel, resumeTrainingSession } from './train/session-impl.js';
export { bitsPerDimension, evaluateNll } from './evaluation/nll.js';
