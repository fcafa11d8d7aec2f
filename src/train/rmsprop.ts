/**
 * RMSprop with PyTorch's semantics (torch.optim.RMSprop without momentum, not centred), the
 * optimiser of every EBFlow FC and CNN run:
 *
 *   g ← ∇θ + λ_wd·θ                    (L2 weight decay added to the gradient)
 *   v ← ρ·v + (1 − ρ)·g²               (v starts at 0)
 *   θ ← θ − lr · g / (√v + ε)          (ε added after the square root)
 *
 * with ρ = 0.99 and ε = 1e-8 by default. tfjs's own RMSProp optimiser differs on both counts
 * (decay 0.9, ε inside the square root), so this one is written here: on the wasm backend as one
 * fused SIMD pass per variable (`tensor/fused-update.ts`), elsewhere with tensor ops.
 */
import * as tf from '@tensorflow/tfjs-core';

import { fusedUpdateAvailable, rmsPropUpdates, type RmsPropStep } from '../tensor/fused-update.js';

export interface RmsPropOptions {
  learningRate: number;
  /** Smoothing constant ρ of the squared-gradient average (PyTorch's `alpha`); default 0.99. */
  rho?: number;
  /** Added to √v in the denominator; default 1e-8. */
  epsilon?: number;
  /** L2 weight decay λ_wd added to the gradient as λ_wd·θ; default 0. */
  weightDecay?: number;
  /**
   * 'auto' (the default) runs the fused kernel on the wasm backend and tensor ops elsewhere;
   * 'tensor-ops' always uses tensor ops (tests compare the two).
   */
  implementation?: UpdateImplementation;
}

/** The implementation of an optimiser's or the EMA's element-wise update. */
export type UpdateImplementation = 'auto' | 'tensor-ops';

/** The optimiser's state, for checkpoints: plain arrays, in the order of the variables. */
export interface RmsPropState {
  /** Updates applied so far. */
  updates: number;
  /** The running averages v of the squared gradients, one per variable. */
  squareAverages: Float32Array[];
}

export class RmsProp {
  /** The step size used by the next `apply`; the schedule sets it once per epoch. */
  learningRate: number;
  readonly rho: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  readonly implementation: UpdateImplementation;
  private readonly variables: tf.Variable[];
  private readonly squareAverages: tf.Variable[];
  private updates = 0;

  /** Creates the optimiser for `variables`, with zero squared-gradient averages. */
  constructor(variables: tf.Variable[], options: RmsPropOptions) {
    this.rho = options.rho ?? 0.99;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.learningRate = options.learningRate;
    this.implementation = options.implementation ?? 'auto';
    checkNonNegativeFinite('learningRate', this.learningRate);
    checkNonNegativeFinite('epsilon', this.epsilon);
    checkNonNegativeFinite('weightDecay', this.weightDecay);
    if (!(this.rho >= 0 && this.rho < 1)) {
      throw new RangeError(`RMSprop: rho must lie in [0, 1), received ${this.rho}`);
    }
    this.variables = variables;
    this.squareAverages = variables.map((v) => {
      // The variable shares the zeros' storage, so the temporary tensor can go.
      const zeros = tf.zerosLike(v);
      const average = tf.variable(zeros, false);
      zeros.dispose();
      return average;
    });
  }

  /** Updates applied so far. */
  get updateCount(): number {
    return this.updates;
  }

  /**
   * Applies one update with `gradientScale`·`gradients[i]` for `variables[i]`; the scale is the
   * gradient clipping factor (see `clipScale`), so clipped gradients need no tensors of their
   * own. The caller keeps ownership of the gradients. O(P) for P parameters: one pass on wasm,
   * about ten element-wise ops per parameter elsewhere.
   */
  apply(gradients: readonly tf.Tensor[], gradientScale = 1): void {
    this.checkCall(gradients, gradientScale);
    if (this.fused(gradients)) {
      rmsPropUpdates(this.variables, gradients, this.squareAverages, this.stepScalars(gradientScale)).forEach((next, i) => {
        this.squareAverages[i].assign(next.average);
        this.variables[i].assign(next.parameter);
        tf.dispose([next.average, next.parameter]);
      });
      this.updates += 1;
      return;
    }
    tf.tidy(() => {
      const rho = tf.scalar(this.rho);
      const oneMinusRho = tf.scalar(1 - this.rho);
      const learningRate = tf.scalar(this.learningRate);
      const epsilon = tf.scalar(this.epsilon);
      const weightDecay = tf.scalar(this.weightDecay);
      for (let i = 0; i < this.variables.length; i++) {
        const parameter = this.variables[i];
        const average = this.squareAverages[i];
        let gradient = gradientScale === 1 ? gradients[i] : tf.mul(gradients[i], tf.scalar(gradientScale));
        if (this.weightDecay !== 0) gradient = tf.add(gradient, tf.mul(weightDecay, parameter));

        const nextAverage = tf.add(tf.mul(rho, average), tf.mul(oneMinusRho, tf.square(gradient)));
        const step = tf.div(tf.mul(learningRate, gradient), tf.add(tf.sqrt(nextAverage), epsilon));
        average.assign(nextAverage);
        parameter.assign(tf.sub(parameter, step));
      }
    });
    this.updates += 1;
  }

  /**
   * Computes the update of every variable with gradient scale 1 and, in the same pass, the
   * global gradient norm √(Σ‖g_i‖²) that `globalNorm` returns, to the bit. Applies the update
   * only when `accept(norm)` is true, and otherwise every variable and average keeps its value.
   * Returns the norm and whether the update was applied, or null off the fused path (another
   * backend, tensor-op implementation, non-float32 gradients), where the caller computes the
   * norm and calls `apply`. Saves the norm's own read of the gradients: for the FC model at
   * D = 784, `globalNorm` and `apply` took 1.30–1.40 ms, this 1.02–1.08 ms (2-vCPU AMD EPYC).
   * O(P), and 2P more values held until the decision.
   */
  applyWithNorm(gradients: readonly tf.Tensor[], accept: (norm: number) => boolean): { norm: number; applied: boolean } | null {
    this.checkCall(gradients, 1);
    if (!this.fused(gradients)) return null;
    const updates = rmsPropUpdates(this.variables, gradients, this.squareAverages, this.stepScalars(1));
    // Rounded to float32, as `globalNorm` returns it in a float32 scalar.
    const norm = Math.fround(Math.sqrt(updates.reduce((total, update) => total + update.sumOfSquares, 0)));
    try {
      const applied = accept(norm);
      if (applied) {
        updates.forEach((next, i) => {
          this.squareAverages[i].assign(next.average);
          this.variables[i].assign(next.parameter);
        });
        this.updates += 1;
      }
      return { norm, applied };
    } finally {
      updates.forEach((next) => tf.dispose([next.average, next.parameter]));
    }
  }

  /** Throws, before anything changes, when the gradients or scalars cannot make an update. */
  private checkCall(gradients: readonly tf.Tensor[], gradientScale: number): void {
    if (gradients.length !== this.variables.length) {
      throw new RangeError(
        `RMSprop: received ${gradients.length} gradients for ${this.variables.length} variables; pass one gradient per variable, in variable order`,
      );
    }
    gradients.forEach((gradient, i) => {
      if (!tf.util.arraysEqual(gradient.shape, this.variables[i].shape)) {
        throw new RangeError(
          `RMSprop: gradient ${i} has shape [${gradient.shape}] but variable ${this.variables[i].name} has shape [${this.variables[i].shape}]`,
        );
      }
    });
    checkNonNegativeFinite('learningRate', this.learningRate);
    checkNonNegativeFinite('gradientScale', gradientScale);
  }

  /** Returns whether the update runs as the fused kernel: wasm, 'auto', float32 values throughout. */
  private fused(gradients: readonly tf.Tensor[]): boolean {
    return (
      this.implementation === 'auto' &&
      fusedUpdateAvailable() &&
      gradients.every((g, i) => g.dtype === 'float32' && this.variables[i].dtype === 'float32')
    );
  }

  private stepScalars(gradientScale: number): RmsPropStep {
    return { gradientScale, weightDecay: this.weightDecay, rho: this.rho, learningRate: this.learningRate, epsilon: this.epsilon };
  }

  /** Copies the state out of the backend, for a checkpoint. O(P). */
  getState(): RmsPropState {
    return {
      updates: this.updates,
      squareAverages: this.squareAverages.map((v) => Float32Array.from(v.dataSync() as Float32Array)),
    };
  }

  /** Restores a state returned by `getState()` for the same variables. O(P). */
  setState(state: RmsPropState): void {
    if (!Number.isInteger(state.updates) || state.updates < 0) {
      throw new RangeError(`RMSprop: state.updates must be a non-negative integer, received ${state.updates}`);
    }
    checkArrays('RMSprop', 'squareAverages', state.squareAverages, this.squareAverages);
    this.squareAverages.forEach((v, i) => {
      const value = tf.tensor(state.squareAverages[i], v.shape, 'float32');
      v.assign(value);
      value.dispose();
    });
    this.updates = state.updates;
  }

  /** Frees the squared-gradient averages (not the model's variables). */
  dispose(): void {
    this.squareAverages.forEach((v) => v.dispose());
  }
}

function checkNonNegativeFinite(name: string, value: number): void {
  if (!(Number.isFinite(value) && value >= 0)) {
    throw new RangeError(`RMSprop: ${name} must be a finite number ≥ 0, received ${value}`);
  }
}

/**
 * Checks that `arrays` has one array per variable with the variable's element count, for state
 * restored from a checkpoint. Shared with the EMA.
 */
export function checkArrays(component: string, field: string, arrays: readonly ArrayLike<number>[], variables: readonly tf.Variable[]): void {
  if (!Array.isArray(arrays) || arrays.length !== variables.length) {
    throw new RangeError(
      `${component}: state.${field} must hold ${variables.length} arrays (one per variable), received ${Array.isArray(arrays) ? arrays.length : typeof arrays}`,
    );
  }
  arrays.forEach((array, i) => {
    if (array.length !== variables[i].size) {
      throw new RangeError(
        `${component}: state.${field}[${i}] has ${array.length} values but variable ${variables[i].name} has ${variables[i].size}; the state belongs to another model`,
      );
    }
  });
}
