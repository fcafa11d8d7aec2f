/**
 * Exponential moving average of the model's parameters, as in EBFlow's reference (the EMA class
 * of score_sde_pytorch). Shadow copies are taken when the EMA is created; after every optimiser
 * update
 *
 *   n ← n + 1,   d = min(decay, (1 + n)/(10 + n)),   shadow ← shadow − (1 − d)·(shadow − θ),
 *
 * so the first update uses d = 2/11 and d reaches 0.999 only after about 8,990 updates.
 * Evaluation swaps the shadows into the model with `withShadowWeights`.
 */
import * as tf from '@tensorflow/tfjs-core';

import { emaUpdates, fusedUpdateAvailable } from '../tensor/fused-update.js';
import { checkArrays, type UpdateImplementation } from './rmsprop.js';

/** The EMA's state, for checkpoints: plain arrays, in the order of the variables. */
export interface EmaState {
  /** Updates n applied so far. */
  updates: number;
  shadows: Float32Array[];
}

export class ExponentialMovingAverage {
  readonly decay: number;
  private readonly variables: tf.Variable[];
  private readonly shadows: tf.Variable[];
  private updates = 0;
  private swapped = false;

  /**
   * Copies `variables` into the shadows. O(P) for P parameters. With 'auto' (the default) the
   * update runs as one fused pass on the wasm backend and as tensor ops elsewhere.
   */
  constructor(
    variables: tf.Variable[],
    decay: number,
    readonly implementation: UpdateImplementation = 'auto',
  ) {
    if (!(decay >= 0 && decay < 1)) {
      throw new RangeError(`EMA: decay must lie in [0, 1), received ${decay}; use null in the config to turn the EMA off`);
    }
    this.decay = decay;
    this.variables = variables;
    this.shadows = variables.map((v) => tf.variable(v, false));
  }

  /** Updates applied so far. */
  get updateCount(): number {
    return this.updates;
  }

  /** The decay the next `update` will use, min(decay, (1 + n)/(10 + n)) with n after increment. */
  nextDecay(): number {
    const n = this.updates + 1;
    return Math.min(this.decay, (1 + n) / (10 + n));
  }

  /** Moves every shadow towards its parameter; call once after every optimiser update. O(P). */
  update(): void {
    if (this.swapped) {
      throw new Error('EMA: update() called inside withShadowWeights(); update after the evaluation returns');
    }
    const d = this.nextDecay();
    if (this.implementation === 'auto' && fusedUpdateAvailable()) {
      emaUpdates(this.shadows, this.variables, 1 - d).forEach((next, i) => {
        this.shadows[i].assign(next);
        next.dispose();
      });
      this.updates += 1;
      return;
    }
    tf.tidy(() => {
      const oneMinusDecay = tf.scalar(1 - d);
      this.variables.forEach((parameter, i) => {
        const shadow = this.shadows[i];
        shadow.assign(tf.sub(shadow, tf.mul(oneMinusDecay, tf.sub(shadow, parameter))));
      });
    });
    this.updates += 1;
  }

  /**
   * Runs `fn` with the shadow values in the model's variables and restores the live values
   * afterwards, also when `fn` throws. Holds one extra copy of the parameters meanwhile. O(P).
   */
  async withShadowWeights<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.swapped) {
      throw new Error('EMA: withShadowWeights() is already running; nested swaps would lose the live weights');
    }
    const live = this.variables.map((v) => tf.clone(v));
    this.swapped = true;
    try {
      this.variables.forEach((v, i) => v.assign(this.shadows[i]));
      return await fn();
    } finally {
      this.variables.forEach((v, i) => v.assign(live[i]));
      live.forEach((t) => t.dispose());
      this.swapped = false;
    }
  }

  /** Copies the state out of the backend, for a checkpoint. O(P). */
  getState(): EmaState {
    return {
      updates: this.updates,
      shadows: this.shadows.map((v) => Float32Array.from(v.dataSync() as Float32Array)),
    };
  }

  /** Restores a state returned by `getState()` for the same variables. O(P). */
  setState(state: EmaState): void {
    if (!Number.isInteger(state.updates) || state.updates < 0) {
      throw new RangeError(`EMA: state.updates must be a non-negative integer, received ${state.updates}`);
    }
    checkArrays('EMA', 'shadows', state.shadows, this.shadows);
    this.shadows.forEach((v, i) => {
      const value = tf.tensor(state.shadows[i], v.shape, 'float32');
      v.assign(value);
      value.dispose();
    });
    this.updates = state.updates;
  }

  /** Frees the shadows (not the model's variables). */
  dispose(): void {
    this.shadows.forEach((v) => v.dispose());
  }
}
