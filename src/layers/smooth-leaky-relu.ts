/**
 * The smooth leaky ReLU, the only non-linearity of EBFlow's FC and CNN models:
 *   f(x)  = α·x + (1−α)·softplus(x) [+ x when residual]
 *   f′(x) = α + (1−α)·σ(x)          [+ 1 when residual]
 * applied element-wise. Its Jacobian is diagonal and depends on x, so its log-det Σ ln f′(x_i)
 * is part of the energy. f′ lies in (α, 1), or (1+α, 2) with the residual term, so ln f′ is
 * always finite.
 */
import * as tf from '@tensorflow/tfjs-core';

import { sigmoid, smoothLeakyRelu, softplus } from '../tensor/elementwise.js';
import { movePointer, runByRows } from '../tensor/threads/pool.js';
import { offsetOf, wasmKernels, wasmKernelsAvailable } from '../tensor/wasm-memory.js';
import type { FlowLayer, LayerForward } from './layer.js';

/** The slope of the negative side used by every shipped configuration. */
export const DEFAULT_SLR_ALPHA = 0.3;
/** Newton iterations of the inverse; fixed, with no convergence test, as in the authors' PyTorch code. */
export const NEWTON_ITERATIONS = 100;
/** Lower bound on f′ in the Newton step, as in the authors' PyTorch code. */
export const NEWTON_SLOPE_FLOOR = 0.01;

export interface SmoothLeakyReluOptions {
  /** A short name for messages, such as "slr[0]". */
  name: string;
  /** α in (0, 1): the slope for x → −∞ (without the residual term). */
  alpha?: number;
  /** Adds x to the output (slope range (1+α, 2) instead of (α, 1)). */
  residual: boolean;
}

export class SmoothLeakyReluLayer implements FlowLayer {
  readonly name: string;
  readonly constantJacobian = false;
  readonly variables: tf.Variable[] = [];
  readonly alpha: number;
  readonly residual: boolean;

  constructor(options: SmoothLeakyReluOptions) {
    const alpha = options.alpha ?? DEFAULT_SLR_ALPHA;
    if (!(alpha > 0 && alpha < 1)) {
      throw new Error(`SmoothLeakyReluLayer "${options.name}": alpha must lie in (0, 1), received ${alpha}`);
    }
    this.name = options.name;
    this.alpha = alpha;
    this.residual = options.residual;
  }

  /** Maps x [B, …] to f(x) with log-det Σ_i ln f′(x_i) per sample, shape [B]. O(BD). */
  forward(x: tf.Tensor): LayerForward {
    return tf.tidy(() => {
      const { y, logSlope } = smoothLeakyRelu(x, this.alpha, this.residual);
      const perSample = tf.reshape(logSlope, [x.shape[0], -1]);
      return { y, logDet: tf.sum(perSample, 1) as tf.Tensor1D };
    });
  }

  /**
   * Inverts f element-wise with 100 Newton steps x ← x − (f(x) − y)/max(f′(x), 0.01) from
   * x₀ = y, as the authors' PyTorch code does, and returns the result as a new float32 tensor,
   * never differentiated. On the wasm backend a WebAssembly kernel iterates in float32, as
   * PyTorch does, four values at a time. Other backends iterate in float64 in JavaScript
   * (`invertSmoothLeakyReluScalar`). Both stop a value early once its next iterate is known to
   * repeat. O(BD) exponentials and logarithms per step, at most 100 steps.
   */
  inverse(y: tf.Tensor): tf.Tensor {
    if (wasmKernelsAvailable() && y.dtype === 'float32') return invertOnWasm(y, this.alpha, this.residual);
    const values = y.dataSync();
    const result = new Float32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      result[i] = invertSmoothLeakyReluScalar(values[i], this.alpha, this.residual);
    }
    return tf.tensor(result, y.shape, 'float32');
  }
}

/**
 * Returns x with f(x) = y element-wise after `steps` float32 Newton steps from x = y (see
 * `SmoothLeakyReluLayer.inverse`). The "inverse" kernel of kernels/elementwise.wat computes it on
 * the wasm backend, and pads a size that is not a multiple of 4 with zeros. O(BD) exponentials
 * and logarithms per step.
 */
export function invertOnWasm(y: tf.Tensor, alpha: number, residual: boolean, steps = NEWTON_ITERATIONS): tf.Tensor {
  const caller = 'SmoothLeakyReluLayer.inverse';
  const count = y.size;
  const padded = Math.ceil(count / 4) * 4;
  return tf.tidy(() => {
    const input = padded === count ? y : tf.concat([tf.reshape(y, [count]), tf.zeros([padded - count])]);
    const { backend, kernels } = wasmKernels<SlrKernels>('elementwise.wasm', caller);
    // The result, then scratch arrays: the iterate, the three before it, and the list of vectors
    // (4 values each) still moving.
    const [out, iterate, earlier, active] = [padded, padded, 3 * padded, padded / 4].map((size) =>
      tf.engine().makeTensorFromTensorInfo(backend.makeOutput([size], 'float32')),
    );
    const at = (tensor: tf.Tensor): number => offsetOf(backend, tensor, caller);
    kernels.inverse(at(input), at(out!), at(iterate!), at(earlier!), at(active!), padded, 1 - alpha, residual ? alpha + 1 : alpha, NEWTON_SLOPE_FLOOR, steps);
    return tf.reshape(padded === count ? out! : tf.slice(out!, 0, count), y.shape);
  });
}

/**
 * Returns x with f(x) = target by the Newton iteration of the authors' PyTorch code (100 steps,
 * slope floor 0.01, start at the target), in float64. A non-finite target gives a non-finite
 * result.
 *
 * The step is a fixed function of x, so once an iterate repeats, the rest of the 100 steps is
 * known. The loop stops at a fixed point (step exactly 0), or at a 2-cycle between neighbouring
 * floats, and returns the iterate that step 100 would reach. Most targets settle within 10 steps.
 */
export function invertSmoothLeakyReluScalar(target: number, alpha: number, residual: boolean): number {
  let previous = Number.NaN;
  let current = target;
  for (let step = 0; step < NEWTON_ITERATIONS; step++) {
    const next = newtonStep(current, target, alpha, residual);
    if (next === current) return current;
    if (next === previous) {
      // Iterates step−1, step, step+1, … alternate between `previous` and `current`.
      return (NEWTON_ITERATIONS - (step - 1)) % 2 === 0 ? previous : current;
    }
    previous = current;
    current = next;
  }
  return current;
}

/** Returns one Newton step x − (f(x) − target)/max(f′(x), 0.01) for the SLR, in float64. */
export function newtonStep(x: number, target: number, alpha: number, residual: boolean): number {
  const linearSlope = residual ? alpha + 1 : alpha;
  // One exponential serves both softplus and the logistic function.
  const decay = Math.exp(-Math.abs(x));
  const softplusValue = Math.max(x, 0) + Math.log1p(decay);
  const logistic = x >= 0 ? 1 / (1 + decay) : decay / (1 + decay);
  const value = linearSlope * x + (1 - alpha) * softplusValue;
  const slope = linearSlope + (1 - alpha) * logistic;
  return x - (value - target) / Math.max(slope, NEWTON_SLOPE_FLOOR);
}

/** f, ln f′ and the derivatives f′, f″, f‴ of the smooth leaky ReLU at h, element-wise. */
export interface SmoothLeakyReluTerms {
  /** f(h). */
  y: tf.Tensor;
  /** f′(h) = α + (1−α)σ(h) [+1]. */
  slope: tf.Tensor;
  /** ln f′(h). */
  logSlope: tf.Tensor;
  /** f″(h) = (1−α)σ(h)(1−σ(h)). */
  curvature: tf.Tensor;
  /** f‴(h) = (1−α)σ(h)(1−σ(h))(1−2σ(h)); present when requested. */
  thirdDerivative?: tf.Tensor;
}

/**
 * Returns f(h), f′(h), ln f′(h), f″(h) and optionally f‴(h), all from one σ(h) and one
 * softplus(h). Every op is differentiable to any order, so explicit score formulas built from
 * these terms can be differentiated again in θ. O(BD).
 */
export function smoothLeakyReluTerms(
  h: tf.Tensor,
  alpha: number,
  residual: boolean,
  withThirdDerivative: boolean,
): SmoothLeakyReluTerms {
  return tf.tidy(() => {
    const linearSlope = residual ? alpha + 1 : alpha;
    const logistic = sigmoid(h);
    const y = tf.add(tf.mul(h, linearSlope), tf.mul(softplus(h), 1 - alpha));
    const slope = tf.add(tf.mul(logistic, 1 - alpha), linearSlope);
    const logSlope = tf.log(slope);
    // σ(1−σ) = σ − σ², the logistic function's derivative.
    const logisticDerivative = tf.sub(logistic, tf.square(logistic));
    const curvature = tf.mul(logisticDerivative, 1 - alpha);
    if (!withThirdDerivative) {
      return { y, slope, logSlope, curvature };
    }
    const thirdDerivative = tf.mul(curvature, tf.sub(1, tf.mul(logistic, 2)));
    return { y, slope, logSlope, curvature, thirdDerivative };
  });
}

/**
 * The terms the explicit score formulas of the FC and CNN models need from one smooth leaky ReLU
 * at its input h [B, …]. These are f(h) and ln f′(h) summed per sample, with `derivatives` also
 * f′(h) and f″/f′, and with `curvature` also f‴/f′ − (f″/f′)², the second derivative of ln f′.
 */
export interface SmoothLeakyReluStage {
  y: tf.Tensor;
  /** Σ ln f′(h) over each sample's elements, shape [B], nats. */
  rowLogSlope: tf.Tensor1D;
  slope?: tf.Tensor;
  /** f″(h)/f′(h). */
  curvatureRatio?: tf.Tensor;
  /** f‴/f′ − (f″/f′)². */
  logSlopeCurvature?: tf.Tensor;
}

/** The terms `smoothLeakyReluStage` returns besides y and the row sums of ln f′. */
export interface StageTerms {
  /** f′ and f″/f′. */
  derivatives: boolean;
  /** f‴/f′ − (f″/f′)²; needs `derivatives`. */
  curvature: boolean;
}

/** Smallest α the fused stage takes: α⁴ = 10⁻²⁴ is far above float32's smallest normal number. */
const FUSED_MINIMUM_ALPHA = 1e-6;

/** 'fused': one WebAssembly SIMD pass (wasm backend only); 'composed': tensor ops; 'auto' picks. */
export type StageImplementation = 'auto' | 'fused' | 'composed';

/**
 * Returns the terms of `SmoothLeakyReluStage` at h, differentiable once in h (and so in θ
 * through h): what the explicit derivatives and the constant-input energies need, not more.
 * 'auto' fuses on the wasm backend when each sample has a multiple of 4 elements and α ≥ 10⁻⁶:
 * one pass with one exponential and 1¼ logarithms per element (`kernels/elementwise.wat`), and
 * one pass for the gradient, instead of dozens of tensor ops each writing a new [B, D] tensor
 * (an FC DSM step at D = 784 went from 205 to 116 kernels).
 * 'composed' builds the terms from `smoothLeakyReluTerms`, whose ops are differentiable to any
 * order. O(BD) either way.
 *
 * NOTE: the fused stage is differentiable once; a second derivative through it raises an error.
 */
export function smoothLeakyReluStage(
  h: tf.Tensor,
  alpha: number,
  residual: boolean,
  terms: StageTerms,
  implementation: StageImplementation = 'auto',
): SmoothLeakyReluStage {
  if (terms.curvature && !terms.derivatives) {
    throw new Error('smoothLeakyReluStage: terms.curvature needs terms.derivatives; set both');
  }
  const rowSize = h.shape[0] === 0 ? 0 : h.size / h.shape[0];
  const unmet = [
    wasmKernelsAvailable() ? null : `the wasm backend (active: ${tf.getBackend()})`,
    h.dtype === 'float32' ? null : `float32 input (received ${h.dtype})`,
    rowSize % 4 === 0 ? null : `rows of a multiple of 4 values (received ${rowSize} per row)`,
    // The kernel multiplies four slopes f′ > α before one logarithm; α⁴ must stay a normal float32.
    alpha >= FUSED_MINIMUM_ALPHA ? null : `alpha ≥ ${FUSED_MINIMUM_ALPHA} (received ${alpha})`,
  ].filter((condition) => condition !== null);
  const fusable = unmet.length === 0;
  if (implementation === 'fused' && !fusable) {
    throw new Error(`smoothLeakyReluStage: the fused kernel needs ${unmet.join(' and ')}; use 'auto' or 'composed'`);
  }
  return implementation !== 'composed' && fusable
    ? fusedStage(h, alpha, residual, terms)
    : composedStage(h, alpha, residual, terms);
}

function composedStage(h: tf.Tensor, alpha: number, residual: boolean, terms: StageTerms): SmoothLeakyReluStage {
  return tf.tidy((): tf.TensorContainer => {
    if (!terms.derivatives) {
      const { y, logSlope } = smoothLeakyRelu(h, alpha, residual);
      return { y, rowLogSlope: tf.sum(tf.reshape(logSlope, [h.shape[0], -1]), 1) };
    }
    const all = smoothLeakyReluTerms(h, alpha, residual, terms.curvature);
    const curvatureRatio = tf.div(all.curvature, all.slope);
    const stage: SmoothLeakyReluStage = {
      y: all.y,
      rowLogSlope: tf.sum(tf.reshape(all.logSlope, [h.shape[0], -1]), 1) as tf.Tensor1D,
      slope: all.slope,
      curvatureRatio,
    };
    if (all.thirdDerivative !== undefined) {
      stage.logSlopeCurvature = tf.sub(tf.div(all.thirdDerivative, all.slope), tf.square(curvatureRatio));
    }
    return { ...stage };
  }) as unknown as SmoothLeakyReluStage;
}

/** The smooth leaky ReLU exports of elementwise.wasm; tensors are byte offsets, 0 for an absent one. */
interface SlrKernels {
  forward(input: number, y: number, slope: number, ratio: number, logCurvature: number, sigma: number, rowLog: number, rows: number, rowSize: number, a: number, c: number): void;
  backward(sigma: number, dy: number, dSlope: number, dRatio: number, dLogCurvature: number, dRow: number, dh: number, rows: number, rowSize: number, a: number, c: number): void;
  inverse(target: number, out: number, iterate: number, earlier: number, active: number, count: number, a: number, c: number, floor: number, steps: number): void;
}

/**
 * tfjs-core's Engine.runKernelFunc (4.22.0), which `tf.customGrad` calls for one output. It
 * takes several outputs and hands their upstream gradients to `backwardsFunc` as an array,
 * with zeros for outputs the loss does not use.
 */
interface CustomKernelEngine {
  runKernelFunc(invocation: {
    forwardFunc: (backend: unknown, save?: tf.GradSaveFunc) => tf.Tensor[];
    backwardsFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => { h: () => tf.Tensor };
    inputs: { h: tf.Tensor };
  }): tf.Tensor[];
}

/**
 * The minimum values per thread for which the stage's kernels split their rows over threads
 * (see threads/pool.ts). A handoff to a worker costs about 0.05–0.1 ms. The forward kernel
 * takes about 5.5 ns per value (one exponential, 1¼ logarithms), so its parts are at least 0.1 ms
 * of work. The backward kernel takes about 0.6 ns per value: split, its [300, 784] rows took
 * longer than on one thread (0.07 ms of work per part, then a 0.09 ms wait for the worker).
 */
const FORWARD_VALUES_PER_THREAD = 16_384;
const BACKWARD_VALUES_PER_THREAD = 262_144;

function fusedStage(h: tf.Tensor, alpha: number, residual: boolean, terms: StageTerms): SmoothLeakyReluStage {
  const caller = 'smoothLeakyReluStage';
  const a = 1 - alpha;
  const c = residual ? alpha + 1 : alpha;
  const rows = h.shape[0];
  const rowSize = rows === 0 ? 0 : h.size / rows;
  const shape = h.shape;
  // Output order: y, rowLogSlope, then slope and f″/f′, then f‴/f′ − (f″/f′)².
  const outputShapes = [shape, [rows]];
  if (terms.derivatives) outputShapes.push(shape, shape);
  if (terms.curvature) outputShapes.push(shape);

  // The forward pass also writes σ(h), which the gradient reads instead of h. Every derivative of
  // f is a polynomial in σ, so the backward pass takes no exponential: 1.1 → 0.4 ms for the
  // [300, 784] rows of an FC FDSSM step (project machine).
  const forwardFunc = (_backend: unknown, save?: tf.GradSaveFunc): tf.Tensor[] => {
    const { backend } = wasmKernels<SlrKernels>('elementwise.wasm', caller);
    const outputs = outputShapes.map((outputShape) => backend.makeOutput(outputShape, 'float32'));
    const logistic = backend.makeOutput(shape, 'float32');
    const offset = (index: number): number => (index < outputs.length ? offsetOf(backend, outputs[index], caller) : 0);
    const values = [offsetOf(backend, h, caller), offset(0), offset(2), offset(3), offset(4), offsetOf(backend, logistic, caller)];
    const rowLog = offset(1);
    runByRows('elementwise', 'forward', rows, rowSize, FORWARD_VALUES_PER_THREAD, (first, count) => [
      ...values.map((pointer) => movePointer(pointer, 4 * first * rowSize)),
      movePointer(rowLog, 4 * first),
      count,
      rowSize,
      a,
      c,
    ]);
    // Made a tensor even when nothing is saved, so that the kernel's scope disposes it.
    const logisticTensor = tf.engine().makeTensorFromTensorInfo(logistic);
    save?.([h, logisticTensor]);
    return outputs.map((info) => tf.engine().makeTensorFromTensorInfo(info));
  };

  const gradientOf = (logistic: tf.Tensor, upstream: tf.Tensor[]): tf.Tensor => {
    const { backend } = wasmKernels<SlrKernels>('elementwise.wasm', caller);
    const gradient = backend.makeOutput(shape, 'float32');
    const offset = (index: number): number => (index < upstream.length ? offsetOf(backend, upstream[index], caller) : 0);
    const [sigma, dy, dSlope, dRatio, dLogCurvature, dRow, dh] = [offsetOf(backend, logistic, caller), offset(0), offset(2), offset(3), offset(4), offset(1), offsetOf(backend, gradient, caller)];
    runByRows('elementwise', 'backward', rows, rowSize, BACKWARD_VALUES_PER_THREAD, (first, count) => {
      const move = (pointer: number): number => movePointer(pointer, 4 * first * rowSize);
      return [move(sigma), move(dy), move(dSlope), move(dRatio), move(dLogCurvature), movePointer(dRow, 4 * first), move(dh), count, rowSize, a, c];
    });
    return tf.engine().makeTensorFromTensorInfo(gradient);
  };
  // The kernel's gradient is recorded as an op of h, σ(h) and the upstream gradients whose own
  // gradient raises, so a second derivative fails loudly instead of dropping this stage. The
  // kernel reads σ only, and h is an input so that the outer tape records the dependence on it.
  const onceDifferentiable = tf.customGrad(((...args: unknown[]) => {
    const tensors = args.slice(0, -1) as tf.Tensor[];
    return {
      value: gradientOf(tensors[1], tensors.slice(2)),
      gradFunc: () => {
        throw new Error(`${caller}: the fused stage is differentiable once; pass implementation 'composed' for higher derivatives`);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (...inputs: tf.Tensor[]) => tf.Tensor;

  const backwardsFunc = (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]): { h: () => tf.Tensor } => ({
    h: () => onceDifferentiable(saved[0], saved[1], ...(Array.isArray(dys) ? dys : [dys])),
  });

  const outputs = (tf.engine() as unknown as CustomKernelEngine).runKernelFunc({ forwardFunc, backwardsFunc, inputs: { h } });
  const [y, rowLogSlope, slope, curvatureRatio, logSlopeCurvature] = outputs;
  const stage: SmoothLeakyReluStage = { y, rowLogSlope: rowLogSlope as tf.Tensor1D };
  if (slope !== undefined) stage.slope = slope;
  if (curvatureRatio !== undefined) stage.curvatureRatio = curvatureRatio;
  if (logSlopeCurvature !== undefined) stage.logSlopeCurvature = logSlopeCurvature;
  return stage;
}
