/**
 * Operation counts of tfjs kernels and of whole training steps: for the rates of `bench-flops`
 * and for the operation counts that runtime cells record.
 */
import * as tf from '@tensorflow/tfjs-core';

import { javascriptFactorizationCount } from '../tensor/linalg.js';
import { lapackOperationCount } from '../tensor/native-blas.js';
import { sumOfProductsOperationCount } from '../tensor/wasm-blas-kernel.js';

/** The fields of one kernel in `tf.profile`'s result that the count reads. */
export interface ProfiledKernel {
  name: string;
  inputShapes: number[][];
  outputShapes: number[][];
}

/**
 * Returns the floating-point operations of one profiled kernel by the usual counts:
 * BatchMatMul and _FusedMatMul 2·batch·m·k·n (bias and activation not counted), Conv2D
 * 2·(output size)·Kh·Kw·Cin, and 0 for every other kernel.
 */
export function kernelOperations(kernel: ProfiledKernel): number {
  const outputSize = sizeOf(kernel.outputShapes[0] ?? []);
  if (kernel.name === 'BatchMatMul' || kernel.name === '_FusedMatMul') {
    const [a, b] = kernel.inputShapes;
    const batchA = sizeOf(a.slice(0, -2));
    const batchB = sizeOf(b.slice(0, -2));
    // Per batch entry A contains m·k values, B k·n and the output m·n, so k² = (m·k)(k·n)/(m·n).
    const inner = Math.sqrt(((sizeOf(a) / batchA) * (sizeOf(b) / batchB) * Math.max(batchA, batchB)) / outputSize);
    return 2 * outputSize * Math.round(inner);
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
   */
  partial: boolean;
}

/**
 * Runs `step` once under `tf.profile` and counts its operations: the tfjs kernels it launched,
 * the LAPACK calls it made and the products OpenBLAS summed into one output outside the kernels
 * (`sumOfProducts`). Costs one step plus the profiler's bookkeeping per kernel. Work
 * done on other threads (the worker threads of `workers: 2`) is not seen, so do not count such
 * steps; a factorisation in JavaScript sets `partial`.
 */
export async function countStepOperations(step: () => Promise<unknown>): Promise<StepOperations> {
  const lapackBefore = lapackOperationCount();
  const summedBefore = sumOfProductsOperationCount();
  const javascriptBefore = javascriptFactorizationCount();
  const profile = await tf.profile(async () => {
    await step();
  });
  const kernelTotal = profile.kernels.reduce((sum, kernel) => sum + kernelOperations(kernel), 0);
  const lapackPerStep = lapackOperationCount() - lapackBefore;
  return {
    perStep: kernelTotal + lapackPerStep + (sumOfProductsOperationCount() - summedBefore),
    lapackPerStep,
    partial: javascriptFactorizationCount() !== javascriptBefore,
  };
}
