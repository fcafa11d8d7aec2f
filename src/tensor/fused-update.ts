/**
 * The element-wise work of a parameter update as single passes of WebAssembly SIMD over the
 * wasm backend's tensors (`kernels/fused-update.wat`), for the wasm backend only.
 *
 * As tensor ops, an RMSprop update costs about ten kernels per parameter tensor and the EMA
 * three, each reading and writing all P values and allocating a new tensor. Gradient clipping
 * adds three more. For the FC model's two 784×784 weights these kernels took about 9.5 ms of a
 * 35 ms DSM step in a `tf.profile` of it. The fused kernels read each input once and write each
 * output once. They import the backend's own memory, so no value is copied in or out.
 */
import * as tf from '@tensorflow/tfjs-core';

import { partCount, runInParallel, type KernelCall } from './threads/pool.js';
import { offsetOf, wasmKernels, wasmKernelsAvailable, type WasmBackendInternals } from './wasm-memory.js';

/** The exports of fused-update.wasm; pointers are byte offsets into the backend's memory. */
interface FusedUpdateKernels {
  sum_squares(x: number, n: number): number;
  rmsprop(
    theta: number,
    gradient: number,
    average: number,
    thetaOut: number,
    averageOut: number,
    n: number,
    scale: number,
    weightDecay: number,
    rho: number,
    oneMinusRho: number,
    learningRate: number,
    epsilon: number,
  ): number;
  ema(shadow: number, theta: number, shadowOut: number, n: number, oneMinusDecay: number): void;
}

/** Returns whether the fused kernels can run: the current backend is wasm and exposes its memory. */
export function fusedUpdateAvailable(): boolean {
  return wasmKernelsAvailable();
}

function kernels(caller: string): { backend: WasmBackendInternals; kernels: FusedUpdateKernels } {
  return wasmKernels<FusedUpdateKernels>('fused-update.wasm', caller);
}

function checkSameSize(caller: string, tensors: readonly tf.Tensor[]): void {
  for (const tensor of tensors) {
    if (tensor.size !== tensors[0].size) {
      throw new RangeError(`${caller}: invalid sizes, received tensors of ${tensors[0].size} and ${tensor.size} values; pass tensors of one shape.`);
    }
  }
}

/**
 * Returns Σ x² over every value of `tensors`, squares in float32 and sums in float64. One read
 * of each tensor, split over the kernel threads by whole tensors, whose sums are added in order.
 */
export function sumOfSquares(tensors: readonly tf.Tensor[]): number {
  const caller = 'sumOfSquares';
  const { backend } = kernels(caller);
  const calls: KernelCall[] = tensors.map((tensor) => ({ file: 'fused-update', name: 'sum_squares', args: [offsetOf(backend, tensor, caller), tensor.size] }));
  let total = 0;
  for (const sum of runInParallel(groupBySize(calls, tensors)).flat()) total += sum;
  return total;
}

/** The scalars of one RMSprop update; see src/train/rmsprop.ts. */
export interface RmsPropStep {
  /** Multiplies the gradient before anything else: the clipping factor, or 1. */
  gradientScale: number;
  weightDecay: number;
  rho: number;
  learningRate: number;
  epsilon: number;
}

/**
 * Returns the RMSprop update of one parameter tensor as new tensors θ' and v', from θ, its
 * gradient and its squared-gradient average v (inputs are not changed), and the gradient's sum
 * of squares before scaling, equal to `sumOfSquares([gradient])`. One pass over P values: three
 * reads and two writes each.
 *
 * NOTE: writing θ' over θ would save an allocation (0.53 → 0.43 ms per 784² values, cold caches).
 * It is not done because XNNPACK keeps a packed copy of a product's right operand per tensor:
 * without OpenBLAS, the next step's products would read the old weights.
 */
export function rmsPropUpdate(
  parameter: tf.Tensor,
  gradient: tf.Tensor,
  average: tf.Tensor,
  step: RmsPropStep,
): { parameter: tf.Tensor; average: tf.Tensor; sumOfSquares: number } {
  return updateEach('rmsPropUpdate', [parameter], [gradient], [average], step)[0];
}

/**
 * Returns `rmsPropUpdate` of every parameter tensor, in order. The tensors are split into
 * consecutive groups of nearly equal size, one per kernel thread (see threads/pool.ts), so the
 * results, sums of squares included, equal those of one thread to the bit. O(P) for P values.
 */
export function rmsPropUpdates(
  parameters: readonly tf.Tensor[],
  gradients: readonly tf.Tensor[],
  averages: readonly tf.Tensor[],
  step: RmsPropStep,
): { parameter: tf.Tensor; average: tf.Tensor; sumOfSquares: number }[] {
  return updateEach('rmsPropUpdates', parameters, gradients, averages, step);
}

function updateEach(
  caller: string,
  parameters: readonly tf.Tensor[],
  gradients: readonly tf.Tensor[],
  averages: readonly tf.Tensor[],
  step: RmsPropStep,
): { parameter: tf.Tensor; average: tf.Tensor; sumOfSquares: number }[] {
  parameters.forEach((parameter, i) => checkSameSize(caller, [parameter, gradients[i], averages[i]]));
  const { backend } = kernels(caller);
  const outputs = parameters.map((parameter) => ({
    parameter: backend.makeOutput(parameter.shape, 'float32'),
    average: backend.makeOutput(parameter.shape, 'float32'),
  }));
  const calls: KernelCall[] = parameters.map((parameter, i) => ({
    file: 'fused-update',
    name: 'rmsprop',
    args: [
      offsetOf(backend, parameter, caller),
      offsetOf(backend, gradients[i], caller),
      offsetOf(backend, averages[i], caller),
      offsetOf(backend, outputs[i].parameter, caller),
      offsetOf(backend, outputs[i].average, caller),
      parameter.size,
      step.gradientScale,
      step.weightDecay,
      step.rho,
      1 - step.rho,
      step.learningRate,
      step.epsilon,
    ],
  }));
  const squares = runInParallel(groupBySize(calls, parameters)).flat();
  return outputs.map((output, i) => ({
    parameter: tf.engine().makeTensorFromTensorInfo(output.parameter),
    average: tf.engine().makeTensorFromTensorInfo(output.average),
    sumOfSquares: squares[i],
  }));
}

/**
 * Returns `emaUpdate` of every shadow tensor, in order, split over the kernel threads as
 * `rmsPropUpdates` splits its tensors. O(P) for P values.
 */
export function emaUpdates(shadows: readonly tf.Tensor[], parameters: readonly tf.Tensor[], oneMinusDecay: number): tf.Tensor[] {
  const caller = 'emaUpdates';
  shadows.forEach((shadow, i) => checkSameSize(caller, [shadow, parameters[i]]));
  const { backend } = kernels(caller);
  const outputs = shadows.map((shadow) => backend.makeOutput(shadow.shape, 'float32'));
  const calls: KernelCall[] = shadows.map((shadow, i) => ({
    file: 'fused-update',
    name: 'ema',
    args: [offsetOf(backend, shadow, caller), offsetOf(backend, parameters[i], caller), offsetOf(backend, outputs[i], caller), shadow.size, oneMinusDecay],
  }));
  runInParallel(groupBySize(calls, shadows));
  return outputs.map((output) => tf.engine().makeTensorFromTensorInfo(output));
}

/**
 * The minimum values per thread for which the update kernels split their tensors over threads.
 * Bound by memory, RMSprop took about 0.9 ns per value and the EMA 0.2 ns, and a handoff costs
 * about 0.06 ms.
 */
const UPDATE_VALUES_PER_THREAD = 131_072;

/**
 * Splits `calls` (one per tensor) into consecutive groups, one per kernel thread, each ending
 * where the running size of `tensors` first reaches its share of the total.
 *
 * NOTE: a tensor is never split, because that would change the rounding of its sum of squares.
 * So one tensor much larger than the rest leaves the threads unbalanced.
 */
function groupBySize(calls: KernelCall[], tensors: readonly tf.Tensor[]): KernelCall[][] {
  const total = tensors.reduce((sum, tensor) => sum + tensor.size, 0);
  const parts = partCount(total, UPDATE_VALUES_PER_THREAD);
  const groups: KernelCall[][] = [[]];
  let running = 0;
  calls.forEach((call, i) => {
    // A new group needs enough values left to be worth a handoff.
    if (running >= (total * groups.length) / parts && groups.length < parts && total - running >= UPDATE_VALUES_PER_THREAD) groups.push([]);
    groups[groups.length - 1].push(call);
    running += tensors[i].size;
  });
  return groups;
}

/**
 * Returns the moved shadow s − (1 − d)·(s − θ) as a new tensor (inputs are not changed). One
 * pass over P values: two reads and one write each.
 */
export function emaUpdate(shadow: tf.Tensor, parameter: tf.Tensor, oneMinusDecay: number): tf.Tensor {
  const caller = 'emaUpdate';
  checkSameSize(caller, [shadow, parameter]);
  const { backend, kernels: k } = kernels(caller);
  const shadowOut = backend.makeOutput(shadow.shape, 'float32');
  k.ema(offsetOf(backend, shadow, caller), offsetOf(backend, parameter, caller), offsetOf(backend, shadowOut, caller), shadow.size, oneMinusDecay);
  return tf.engine().makeTensorFromTensorInfo(shadowOut);
}
