/**
 * Adam and AdamW with PyTorch's semantics (torch.optim.Adam / AdamW, no amsgrad), the optimisers
 * of EBFlow's toy experiments. Update t (from 1) computes
 *
 *   g ← ∇θ + λ·θ                                  (Adam's L2 weight decay; AdamW leaves it out)
 *   m ← β₁·m + (1 − β₁)·g
 *   v ← β₂·v + (1 − β₂)·g²                        (m and v start at 0)
 *   θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
 *
 * with ε added after the square root. AdamW instead shrinks θ ← θ·(1 − lr·λ) before the step.
 * Defaults β = (0.9, 0.999), ε = 1e-8, λ = 0 (every toy configuration uses λ = 0, where Adam and
 * AdamW coincide).
 */
import * as tf from '@tensorflow/tfjs-core';

export interface AdamOptions {
  learningRate: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  epsilon?: number;
  /** λ; default 0. */
  weightDecay?: number;
  /** True for AdamW's decoupled weight decay, false (default) for Adam's L2 term. */
  decoupledWeightDecay?: boolean;
}

export class Adam {
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

  /** Creates the optimiser for `variables` with zero moments. O(P) memory twice. */
  constructor(variables: tf.Variable[], options: AdamOptions) {
    this.learningRate = options.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.decoupledWeightDecay = options.decoupledWeightDecay ?? false;
    const nonNegative = [
      ['learningRate', this.learningRate],
      ['epsilon', this.epsilon],
      ['weightDecay', this.weightDecay],
    ] as const;
    for (const [name, value] of nonNegative) {
      if (!(Number.isFinite(value) && value >= 0)) {
        throw new RangeError(`Adam: ${name} must be a finite number ≥ 0, received ${value}`);
      }
    }
    for (const [name, value] of [['beta1', this.beta1], ['beta2', this.beta2]] as const) {
      if (!(value >= 0 && value < 1)) {
        throw new RangeError(`Adam: ${name} must lie in [0, 1), received ${value}`);
      }
    }
    this.variables = variables;
    const zerosFor = (v: tf.Variable): tf.Variable => {
      const zeros = tf.zerosLike(v);
      const moment = tf.variable(zeros, false);
      zeros.dispose();
      return moment;
    };
    this.firstMoments = variables.map(zerosFor);
    this.secondMoments = variables.map(zerosFor);
  }

  /** Updates applied so far (t). */
  get updateCount(): number {
    return this.updates;
  }

  /**
   * Applies one update with `gradients[i]` for `variables[i]`; the caller keeps ownership of the
   * gradients. O(P) for P parameters, about a dozen element-wise ops per variable.
   */
  apply(gradients: readonly tf.Tensor[]): void {
    if (gradients.length !== this.variables.length) {
      throw new RangeError(`Adam: received ${gradients.length} gradients for ${this.variables.length} variables; pass one per variable, in variable order`);
    }
    gradients.forEach((gradient, i) => {
      if (!tf.util.arraysEqual(gradient.shape, this.variables[i].shape)) {
        throw new RangeError(`Adam: gradient ${i} has shape [${gradient.shape}] but variable ${this.variables[i].name} has shape [${this.variables[i].shape}]`);
      }
    });
    const t = this.updates + 1;
    const stepSize = this.learningRate / (1 - this.beta1 ** t);
    const secondCorrection = Math.sqrt(1 - this.beta2 ** t);
    tf.tidy(() => {
      for (let i = 0; i < this.variables.length; i++) {
        const parameter = this.variables[i];
        let gradient = gradients[i];
        if (this.weightDecay !== 0 && !this.decoupledWeightDecay) gradient = tf.add(gradient, tf.mul(parameter, this.weightDecay));
        const first = tf.add(tf.mul(this.firstMoments[i], this.beta1), tf.mul(gradient, 1 - this.beta1));
        const second = tf.add(tf.mul(this.secondMoments[i], this.beta2), tf.mul(tf.square(gradient), 1 - this.beta2));
        const denominator = tf.add(tf.div(tf.sqrt(second), secondCorrection), this.epsilon);
        let next = parameter as tf.Tensor;
        if (this.weightDecay !== 0 && this.decoupledWeightDecay) next = tf.mul(next, 1 - this.learningRate * this.weightDecay);
        next = tf.sub(next, tf.mul(tf.div(first, denominator), stepSize));
        this.firstMoments[i].assign(first);
        this.secondMoments[i].assign(second);
        parameter.assign(next);
      }
    });
    this.updates = t;
  }

  /** Frees the moments (not the model's variables). */
  dispose(): void {
    tf.dispose([...this.firstMoments, ...this.secondMoments]);
  }
}
