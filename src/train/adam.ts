/**
 * Adam with PyTorch's semantics (torch.optim.Adam, no amsgrad, L2 weight decay added to the
 * gradient), the optimiser of the EBFlow reference's MNIST Glow runs. Update t (from 1):
 *
 *   g ← ∇θ + λ_wd·θ
 *   m ← β₁·m + (1 − β₁)·g                 (m and v start at 0)
 *   v ← β₂·v + (1 − β₂)·g²
 *   θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
 *
 * with ε added after the square root and defaults β = (0.9, 0.999), ε = 1e-8, λ_wd = 0. With
 * `decoupledWeightDecay` it is AdamW (torch.optim.AdamW): the gradient keeps no L2 term and the
 * parameter is first scaled by 1 − lr·λ_wd.
 */
import * as tf from '@tensorflow/tfjs-core';

import { checkArrays, type RmsPropState } from './rmsprop.js';

export interface AdamOptions {
  learningRate: number;
  /** Decay of the first-moment average; default 0.9. */
  beta1?: number;
  /** Decay of the second-moment average; default 0.999. */
  beta2?: number;
  /** Added to the bias-corrected √v in the denominator; default 1e-8. */
  epsilon?: number;
  /** L2 weight decay λ_wd added to the gradient as λ_wd·θ; default 0. */
  weightDecay?: number;
  /** True for AdamW's decoupled weight decay, false (default) for Adam's L2 term. */
  decoupledWeightDecay?: boolean;
}

/**
 * The optimiser's state, for checkpoints: plain arrays, in the order of the variables. It extends
 * RMSprop's state, because v is the same kind of running average of squared gradients.
 */
export interface AdamState extends RmsPropState {
  /** The first-moment averages m, one per variable. */
  firstMoments: Float32Array[];
}

export class Adam {
  /** The step size used by the next `apply`; the schedule sets it once per epoch. */
  learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  readonly decoupledWeightDecay: boolean;
  private readonly variables: tf.Variable[];
  private readonly firstMoments: tf.Variable[];
  private readonly secondMoments: tf.Variable[];
  private updates = 0;

  /** Creates the optimiser for `variables` with zero moments. Memory: two copies of the parameters. */
  constructor(variables: tf.Variable[], options: AdamOptions) {
    this.learningRate = options.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.decoupledWeightDecay = options.decoupledWeightDecay ?? false;
    checkNonNegativeFinite('learningRate', this.learningRate);
    checkNonNegativeFinite('epsilon', this.epsilon);
    checkNonNegativeFinite('weightDecay', this.weightDecay);
    for (const [name, value] of [['beta1', this.beta1], ['beta2', this.beta2]] as const) {
      if (!(value >= 0 && value < 1)) {
        throw new RangeError(`Adam: ${name} must lie in [0, 1), received ${value}`);
      }
    }
    this.variables = variables;
    const zerosLike = (v: tf.Variable): tf.Variable => {
      // The variable shares the zeros' storage, so the temporary tensor can go.
      const zeros = tf.zerosLike(v);
      const moment = tf.variable(zeros, false);
      zeros.dispose();
      return moment;
    };
    this.firstMoments = variables.map(zerosLike);
    this.secondMoments = variables.map(zerosLike);
  }

  /** Updates applied so far (t). */
  get updateCount(): number {
    return this.updates;
  }

  /**
   * Applies one update with `gradientScale`·`gradients[i]` for `variables[i]`; the scale is the
   * gradient clipping factor (see `clipScale`). The caller keeps ownership of the gradients.
   * O(P) for P parameters, about a dozen element-wise ops per parameter.
   */
  apply(gradients: readonly tf.Tensor[], gradientScale = 1): void {
    if (gradients.length !== this.variables.length) {
      throw new RangeError(
        `Adam: received ${gradients.length} gradients for ${this.variables.length} variables; pass one gradient per variable, in variable order`,
      );
    }
    // Check every shape first, so a bad call leaves every variable untouched.
    gradients.forEach((gradient, i) => {
      if (!tf.util.arraysEqual(gradient.shape, this.variables[i].shape)) {
        throw new RangeError(
          `Adam: gradient ${i} has shape [${gradient.shape}] but variable ${this.variables[i].name} has shape [${this.variables[i].shape}]`,
        );
      }
    });
    checkNonNegativeFinite('learningRate', this.learningRate);
    checkNonNegativeFinite('gradientScale', gradientScale);
    const t = this.updates + 1;
    const stepSize = this.learningRate / (1 - this.beta1 ** t);
    const secondCorrection = Math.sqrt(1 - this.beta2 ** t);
    tf.tidy(() => {
      for (let i = 0; i < this.variables.length; i++) {
        const parameter = this.variables[i];
        let gradient = gradientScale === 1 ? gradients[i] : tf.mul(gradients[i], gradientScale);
        if (this.weightDecay !== 0 && !this.decoupledWeightDecay) gradient = tf.add(gradient, tf.mul(parameter, this.weightDecay));

        const first = tf.add(tf.mul(this.firstMoments[i], this.beta1), tf.mul(gradient, 1 - this.beta1));
        const second = tf.add(tf.mul(this.secondMoments[i], this.beta2), tf.mul(tf.square(gradient), 1 - this.beta2));
        const denominator = tf.add(tf.div(tf.sqrt(second), secondCorrection), this.epsilon);
        let next: tf.Tensor = parameter;
        if (this.weightDecay !== 0 && this.decoupledWeightDecay) next = tf.mul(next, 1 - this.learningRate * this.weightDecay);
        next = tf.sub(next, tf.mul(tf.div(first, denominator), stepSize));
        this.firstMoments[i].assign(first);
        this.secondMoments[i].assign(second);
        parameter.assign(next);
      }
    });
    this.updates = t;
  }

  /** Copies the state out of the backend, for a checkpoint. O(P). */
  getState(): AdamState {
    const read = (v: tf.Variable): Float32Array => Float32Array.from(v.dataSync() as Float32Array);
    return { updates: this.updates, firstMoments: this.firstMoments.map(read), squareAverages: this.secondMoments.map(read) };
  }

  /** Restores a state returned by `getState()` for the same variables; checks everything first. O(P). */
  setState(state: AdamState): void {
    if (!Number.isInteger(state.updates) || state.updates < 0) {
      throw new RangeError(`Adam: state.updates must be a non-negative integer, received ${state.updates}`);
    }
    checkArrays('Adam', 'firstMoments', state.firstMoments, this.firstMoments);
    checkArrays('Adam', 'squareAverages', state.squareAverages, this.secondMoments);
    const assign = (targets: tf.Variable[], arrays: Float32Array[]): void =>
      targets.forEach((v, i) => {
        const value = tf.tensor(arrays[i], v.shape, 'float32');
        v.assign(value);
        value.dispose();
      });
    assign(this.firstMoments, state.firstMoments);
    assign(this.secondMoments, state.squareAverages);
    this.updates = state.updates;
  }

  /** Frees the moments (not the model's variables). */
  dispose(): void {
    tf.dispose([...this.firstMoments, ...this.secondMoments]);
  }
}

function checkNonNegativeFinite(name: string, value: number): void {
  if (!(Number.isFinite(value) && value >= 0)) {
    throw new RangeError(`Adam: ${name} must be a finite number ≥ 0, received ${value}`);
  }
}
