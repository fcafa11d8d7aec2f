/**
 * Operation counts of tfjs kernels and of whole training steps: for the rates of `bench-flops`
 * and for the operation counts that runtime cells record.
 */
import * as tf from '@tensorflow/tfjs-core';

import { javascriptFactorizationCount } from '../tensor/linalg.js';
import { lapackOperationCount } from '../tensor/native-blas.js';
import { sumOfProductsOperationCount } from '../tensor/wasm-blas-kernel.js';

/** The name and shapes of one kernel launch that the count reads, as `tf.profile` lists them. */
export interface ProfiledKernel {
  name: string;
  inputShapes: number[][];
  outputShapes: number[][];
}

/** The kernels that `kernelOperations` counts. Every other kernel counts 0. */
const COUNTED_KERNELS = ['BatchMatMul', '_FusedMatMul', 'Conv2D'];

/**
 * Returns the floating-point operations of one kernel launch by the usual counts:
 * BatchMatMul and _FusedMatMul 2·batch·m·k·n (bias and activation not counted), Conv2D
 * 2·(output size)·Kh·Kw·Cin, and 0 for every other kernel and for empty outputs.
 */
export function kernelOperations(kernel: ProfiledKernel): number {
  const output = kernel.outputShapes[0] ?? [];
  const outputSize = sizeOf(output);
  if (outputSize === 0) return 0;
  if (kernel.name === 'BatchMatMul' || kernel.name === '_FusedMatMul') {
    // The output is [..., m, n], and A contains m·k values per batch entry. A transpose flag only
    // swaps m and k in A's shape, so the count does not need it.
    const a = kernel.inputShapes[0];
    const rows = output[output.length - 2];
    const inner = sizeOf(a) / sizeOf(a.slice(0, -2)) / rows;
    return 2 * outputSize * inner;
  }
  if (kernel.name === 'Conv2D') {
    const [kernelHeight, kernelWidth, inputChannels] = kernel.inputShapes[1];
    return 2 * outputSize * kernelHeight * kernelWidth * inputChannels;
  }
  return 0;
}

function sizeOf(shape: number[]): number {
  return shape.reduce((product, dimension) => product * dimension, 1);
}

/** The counted floating-point operations of one training step. */
export interface StepOperations {
  /**
   * Operations of the step's matrix products (2·m·k·n each), convolutions (2·output size·Kh·Kw·Cin)
   * and LAPACK calls (sgetrf 2n³/3, sgetri 4n³/3, sgetrs 2n²c). Element-wise work is not counted.
   */
  perStep: number;
  /** The part of `perStep` in LAPACK calls: the O(D³) log-determinants and inverses of ML and SML. */
  lapackPerStep: number;
  /**
   * True when the step factored a matrix in float64 JavaScript (no OpenBLAS): that work runs
   * outside tfjs kernels and LAPACK, so `perStep` leaves part of it out.
   *
   * NOTE: Glow's 1×1 convolutions factor their C×C weights in JavaScript even with OpenBLAS, so
   * every Glow ML count is partial, although that work is a few thousand operations.
   */
  partial: boolean;
}

/** Whether `countStepOperations` is running. Its kernel wrappers would count twice if it nested. */
let counting = false;

/**
 * Runs `step` once and counts its operations: the matrix products and convolutions of the tfjs
 * kernels it launched (`kernelOperations`), the LAPACK calls it made and the products OpenBLAS
 * summed into one output outside the kernels (`sumOfProducts`).
 *
 * For the step, the counted kernels of every registered backend are replaced by wrappers that add
 * up their operations, and the originals come back afterwards, also when `step` throws. The count
 * costs a few shape reads per product, where `tf.profile` would keep a record of every kernel:
 * a Glow step launched over a million, more than `tf.profile` can summarise. Rejects with the
 * error of `step`, and when a count is already running. Work done on other threads (the worker
 * threads of `workers: 2`) is not seen, so do not count such steps; a factorisation in
 * JavaScript sets `partial`.
 */
export async function countStepOperations(step: () => Promise<unknown>): Promise<StepOperations> {
  if (counting) throw new Error('countStepOperations: another count is already running. Await it before counting the next step.');
  counting = true;
  let kernelTotal = 0;
  const originals = registeredKernels(COUNTED_KERNELS);
  for (const original of originals) {
    tf.unregisterKernel(original.kernelName, original.backendName);
    tf.registerKernel({
      ...original,
      kernelFunc: (args) => {
        const outputs = original.kernelFunc(args);
        kernelTotal += kernelOperations(describeLaunch(original.kernelName, args.inputs, outputs));
        return outputs;
      },
    });
  }

  const lapackBefore = lapackOperationCount();
  const summedBefore = sumOfProductsOperationCount();
  const javascriptBefore = javascriptFactorizationCount();
  try {
    await step();
  } finally {
    for (const original of originals) {
      tf.unregisterKernel(original.kernelName, original.backendName);
      tf.registerKernel(original);
    }
    counting = false;
  }
  const lapackPerStep = lapackOperationCount() - lapackBefore;
  return {
    perStep: kernelTotal + lapackPerStep + (sumOfProductsOperationCount() - summedBefore),
    lapackPerStep,
    partial: javascriptFactorizationCount() !== javascriptBefore,
  };
}

/**
 * Returns the registered kernels of the given names for every backend in the registry, so that a
 * backend the step initialises itself is counted too.
 */
function registeredKernels(names: readonly string[]): tf.KernelConfig[] {
  const backends = Object.keys(tf.engine().registryFactory);
  return backends.flatMap((backend) => names.flatMap((name) => tf.getKernel(name, backend) ?? []));
}

/** Returns the name and shapes of one kernel launch, with inputs in the order the kernel names them. */
function describeLaunch(name: string, inputs: tf.NamedTensorInfoMap, outputs: tf.TensorInfo | tf.TensorInfo[]): ProfiledKernel {
  return {
    name,
    inputShapes: Object.keys(inputs).map((key) => inputs[key]?.shape ?? []),
    outputShapes: (Array.isArray(outputs) ? outputs : [outputs]).map((output) => output.shape),
  };
}
