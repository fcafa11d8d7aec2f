/**
 * The small MLP that computes the log-scale s and shift t of a toy coupling layer:
 *   Linear(D, H) → act → [Linear(H, H) → act] × n_hidden → Linear(H, D),
 * with H = 64 and n_hidden = 2 in every configuration of the authors' 2-D experiments. The
 * activation is Swish x·σ(β⊙x) with a trainable β per unit (initialised to 1), or ELU (α = 1).
 * Both are built from `src/tensor/elementwise.ts`, so their derivatives are right to third order
 * (tfjs's own sigmoid, exp and elu gradients are not).
 *
 * Linear layers keep their weight as [in, out] and compute x·W + b. Biases are initialised like
 * PyTorch's `nn.Linear`, uniform on ±1/√fan_in. Weights are (semi-)orthogonal by default, which
 * is what the authors' `weight_init = 'ortho'` setting requests. Their code applies that
 * initialiser to the MLP container, where it does nothing, so their MLP weights keep the
 * `nn.Linear` default, uniform on ±1/√fan_in; `weightInit: 'uniform'` reproduces that.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { RandomStream } from '../random/stream.js';
import { exp, sigmoid } from '../tensor/elementwise.js';
import { matMul } from '../tensor/matmul.js';
import { randomSemiOrthogonal, uniformSymmetric, variableFrom } from './init.js';

/** The activation between the MLP's linear layers. */
export type CouplingActivation = 'swish' | 'elu';
export const COUPLING_ACTIVATIONS: readonly CouplingActivation[] = ['swish', 'elu'];

/** The initialisation of the MLP weights: (semi-)orthogonal, or PyTorch's uniform default. */
export type CouplingWeightInit = 'orthogonal' | 'uniform';
export const COUPLING_WEIGHT_INITS: readonly CouplingWeightInit[] = ['orthogonal', 'uniform'];

export interface CouplingNetworkOptions {
  /** D, the input and output size. */
  dimension: number;
  /** H, the width of the hidden layers. */
  hidden: number;
  /** Hidden-to-hidden layers n_hidden (the MLP has n_hidden + 2 linear layers). */
  hiddenLayers: number;
  activation: CouplingActivation;
  /** Default 'orthogonal'. */
  weightInit?: CouplingWeightInit;
}

/** The initial values of a network, so a second network can start as an exact copy. */
export interface CouplingNetworkValues {
  weights: Float32Array[];
  biases: Float32Array[];
}

export class CouplingNetwork {
  readonly activation: CouplingActivation;
  /** Linear weights, shape [in, out], in layer order. */
  readonly weights: tf.Variable<tf.Rank.R2>[];
  /** Linear biases, shape [out], in layer order. */
  readonly biases: tf.Variable<tf.Rank.R1>[];
  /** Swish slopes β, shape [H], one per activation; empty for ELU. */
  readonly betas: tf.Variable<tf.Rank.R1>[];
  private readonly sizes: number[];

  /**
   * Creates the network with weights drawn from `random` by the `weightInit` scheme and uniform
   * biases, or with a copy of `values` when given (then nothing is drawn). O(H²·n_hidden) memory.
   */
  constructor(options: CouplingNetworkOptions, random: RandomStream | null, values?: CouplingNetworkValues) {
    const { dimension, hidden, hiddenLayers, activation } = options;
    for (const [key, value, minimum] of [['dimension', dimension, 1], ['hidden', hidden, 1], ['hiddenLayers', hiddenLayers, 0]] as const) {
      if (!Number.isInteger(value) || value < minimum) {
        throw new RangeError(`CouplingNetwork: ${key} must be an integer ≥ ${minimum}, received ${value}`);
      }
    }
    if (!COUPLING_ACTIVATIONS.includes(activation)) {
      throw new RangeError(`CouplingNetwork: activation must be one of ${COUPLING_ACTIVATIONS.join(', ')}, received "${activation}"`);
    }
    const weightInit = options.weightInit ?? 'orthogonal';
    if (!COUPLING_WEIGHT_INITS.includes(weightInit)) {
      throw new RangeError(`CouplingNetwork: weightInit must be one of ${COUPLING_WEIGHT_INITS.join(', ')}, received "${weightInit}"`);
    }
    this.activation = activation;
    this.sizes = [dimension, ...new Array<number>(hiddenLayers + 1).fill(hidden), dimension];

    this.weights = [];
    this.biases = [];
    for (let layer = 0; layer + 1 < this.sizes.length; layer++) {
      const fanIn = this.sizes[layer];
      const fanOut = this.sizes[layer + 1];
      let weight: Float32Array;
      let bias: Float32Array;
      if (values !== undefined) {
        weight = values.weights[layer];
        bias = values.biases[layer];
      } else if (random !== null) {
        const bound = 1 / Math.sqrt(fanIn);
        if (weightInit === 'orthogonal') weight = Float32Array.from(randomSemiOrthogonal(fanIn, fanOut, random));
        else weight = uniformSymmetric(fanIn * fanOut, bound, random);
        bias = uniformSymmetric(fanOut, bound, random);
      } else {
        throw new Error('CouplingNetwork: pass either a random stream or initial values');
      }
      if (weight.length !== fanIn * fanOut || bias.length !== fanOut) {
        throw new Error(`CouplingNetwork: initial values of layer ${layer} have ${weight.length} weights and ${bias.length} biases, expected ${fanIn * fanOut} and ${fanOut}`);
      }
      this.weights.push(variableFrom(tf.tensor2d(weight, [fanIn, fanOut])));
      this.biases.push(variableFrom(tf.tensor1d(bias)));
    }
    this.betas = activation === 'swish' ? this.sizes.slice(1, -1).map((size) => variableFrom(tf.ones([size]) as tf.Tensor1D)) : [];
  }

  /** Weights, biases and Swish slopes, layer by layer. */
  get variables(): tf.Variable[] {
    const list: tf.Variable[] = [];
    this.weights.forEach((weight, layer) => {
      list.push(weight, this.biases[layer]);
      if (layer < this.betas.length) list.push(this.betas[layer]);
    });
    return list;
  }

  /** Copies the current weights and biases out of the backend. O(H²·n_hidden). */
  readValues(): CouplingNetworkValues {
    return {
      weights: this.weights.map((w) => Float32Array.from(w.dataSync() as Float32Array)),
      biases: this.biases.map((b) => Float32Array.from(b.dataSync() as Float32Array)),
    };
  }

  /** Maps x [B, D] to the network output [B, D]. O(B·H²·n_hidden). */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      let h: tf.Tensor2D = x;
      const last = this.weights.length - 1;
      for (let layer = 0; layer <= last; layer++) {
        h = tf.add(matMul(h, this.weights[layer]), this.biases[layer]) as tf.Tensor2D;
        if (layer < last) h = this.activate(h, layer);
      }
      return h;
    });
  }

  private activate(h: tf.Tensor2D, layer: number): tf.Tensor2D {
    if (this.activation === 'swish') {
      return tf.mul(h, sigmoid(tf.mul(h, this.betas[layer]))) as tf.Tensor2D;
    }
    return elu(h) as tf.Tensor2D;
  }

  dispose(): void {
    tf.dispose([...this.weights, ...this.biases, ...this.betas]);
  }
}

/**
 * ELU with α = 1, written as relu(x) + e^{−relu(−x)} − 1 (−relu(−x) = min(x, 0)). The exponent
 * never exceeds 0, so the branch that `where` would discard cannot overflow into a NaN gradient,
 * the exponential is the higher-order-safe wrapper, and relu's gradient (a step function) is
 * differentiable again, which tf.minimum's (through LessEqual) is not. O(N).
 */
export function elu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sub(tf.add(tf.relu(x), exp(tf.neg(tf.relu(tf.neg(x))))), 1));
}
