/**
 * The calibration kernel: a fixed piece of work whose time is the gate's unit of time.
 *
 * The gate divides every step time by the kernel's time measured just before that step's block,
 * on the same backend. A CPU that is twice as slow (another model, a lower clock frequency)
 * slows both by about the same factor, so the quotient stays put. The kernel mixes the two kinds of work a
 * training step does. Backend work is a dense matMul chain with an elementwise tanh, like a dense
 * flow's forward pass. Plain-JavaScript float64 work is a small matrix product, like the LU
 * factorisation behind the ML objective's log-determinants and the random draws.
 *
 * The kernel calls tfjs-core directly, never the project's own tensor helpers: if it shared code
 * with the training step, a regression in that code would slow the unit as well and hide itself.
 * Changing any constant here changes the unit, so raise `GATE_MEASUREMENT_VERSION` with it.
 *
 * NOTE: on one loaded 2-vCPU machine and the process-CPU clock, the kernel's median time moved by
 * under 4% between runs, and its block-to-block variation barely followed that of the steps
 * (log correlation 0.0–0.55). Its measured benefit is across machines, not within a run.
 */
import * as tf from '@tensorflow/tfjs-core';

import { RandomStream } from '../random/stream.js';

/** Rows of the backend part's input (a batch). */
const KERNEL_ROWS = 64;
/** Width of the backend part's square weight matrix. */
const KERNEL_WIDTH = 256;
/** matMul + tanh layers per kernel run. */
const KERNEL_LAYERS = 6;
/** Size of the plain-JavaScript part's square float64 matrices. */
const JS_MATRIX_SIZE = 96;

/** The kernel: `run` does the fixed work once and resolves when the backend has finished it. */
export interface CalibrationKernel {
  /** One-line description of the work, for records and docs. */
  readonly description: string;
  /** Runs the kernel once; the caller times it with the sweep's clock. */
  run(): Promise<void>;
  /** Frees the kernel's tensors. */
  dispose(): void;
}

/**
 * Creates the kernel on the current tfjs backend. One run costs KERNEL_LAYERS matMuls of
 * [64 × 256]·[256 × 256] with tanh, 6 × 8.4 MFLOP, plus a 96³ float64 product in JavaScript.
 * It measured about 6 ms in all on the wasm backend of a 2-core AMD EPYC.
 */
export function createCalibrationKernel(): CalibrationKernel {
  const random = new RandomStream(20231001);
  const input = tf.tensor2d(random.normalArray(KERNEL_ROWS * KERNEL_WIDTH), [KERNEL_ROWS, KERNEL_WIDTH]);
  // Weights scaled by 1/√width keep activations of order one through the layers.
  const weights = tf.tidy(() =>
    tf.mul(tf.tensor2d(random.normalArray(KERNEL_WIDTH * KERNEL_WIDTH), [KERNEL_WIDTH, KERNEL_WIDTH]), 1 / Math.sqrt(KERNEL_WIDTH)),
  );
  const left = Float64Array.from(random.normalArray(JS_MATRIX_SIZE * JS_MATRIX_SIZE));
  const right = Float64Array.from(random.normalArray(JS_MATRIX_SIZE * JS_MATRIX_SIZE));
  const product = new Float64Array(JS_MATRIX_SIZE * JS_MATRIX_SIZE);

  return {
    description:
      `${KERNEL_LAYERS} × (matMul [${KERNEL_ROWS}×${KERNEL_WIDTH}]·[${KERNEL_WIDTH}×${KERNEL_WIDTH}] + tanh + add) on the tfjs backend, ` +
      `then a ${JS_MATRIX_SIZE}×${JS_MATRIX_SIZE} float64 matrix product in JavaScript`,
    async run(): Promise<void> {
      const output = tf.tidy(() => {
        let activations: tf.Tensor2D = input;
        for (let layer = 0; layer < KERNEL_LAYERS; layer += 1) {
          activations = tf.add(tf.tanh(tf.matMul(activations, weights)), tf.mul(activations, 0.5));
        }
        return activations;
      });
      // Reading the values back waits for every queued backend operation.
      await output.data();
      output.dispose();
      multiplyInJavaScript(left, right, product, JS_MATRIX_SIZE);
    },
    dispose(): void {
      input.dispose();
      weights.dispose();
    },
  };
}

/** Writes left·right into product (row-major n×n float64), i-k-j loop order. O(n³). */
function multiplyInJavaScript(left: Float64Array, right: Float64Array, product: Float64Array, n: number): void {
  product.fill(0);
  for (let i = 0; i < n; i += 1) {
    for (let k = 0; k < n; k += 1) {
      const factor = left[i * n + k];
      const rowOffset = k * n;
      const outOffset = i * n;
      for (let j = 0; j < n; j += 1) {
        product[outOffset + j] += factor * right[rowOffset + j];
      }
    }
  }
}
