/**
 * The square dense layer of EBFlow's FC models: y = W x + b on every sample.
 *
 * Rows of a [B, D] batch are samples, so the batched map is y = x·Wᵀ + b. The Jacobian W does not
 * depend on x, so this layer belongs to the constant-Jacobian set S_lin: its log|det W| is part
 * of the normalising constant, computed only by `constantLogDet()` (for ML training and exact
 * likelihoods), never by the energy.
 */
import * as tf from '@tensorflow/tfjs-core';

import { logAbsDet, solve } from '../tensor/linalg.js';
import { matMul } from '../tensor/matmul.js';
import type { FlowLayer, LayerForward } from './layer.js';

export interface DenseLayerOptions {
  /** D, the input and output size. */
  dimension: number;
  /** A short name for messages, such as "dense[0]". */
  name: string;
}

export class DenseLayer implements FlowLayer {
  readonly name: string;
  readonly constantJacobian = true;
  readonly dimension: number;
  /** W, shape [D, D]; output i is Σ_j W[i, j]·x[j] + b[i]. Initialised to −I. */
  readonly weight: tf.Variable<tf.Rank.R2>;
  /** b, shape [D]. Initialised to ones. */
  readonly bias: tf.Variable<tf.Rank.R1>;

  /**
   * Creates the layer with the initialisation of the authors' PyTorch code, W = −I and
   * b = 1 (a negated identity and a unit bias). O(D²) memory.
   */
  constructor(options: DenseLayerOptions) {
    const { dimension, name } = options;
    if (!Number.isInteger(dimension) || dimension < 1) {
      throw new Error(`DenseLayer "${name}": dimension must be a positive integer, received ${dimension}`);
    }
    this.name = name;
    this.dimension = dimension;
    const initialWeight = tf.tidy(() => tf.sub(0, tf.eye(dimension))) as tf.Tensor2D;
    const initialBias = tf.ones([dimension]) as tf.Tensor1D;
    this.weight = tf.variable(initialWeight, true);
    this.bias = tf.variable(initialBias, true);
    // A variable shares the initial tensor's data but not its handle.
    tf.dispose([initialWeight, initialBias]);
  }

  /** [W, b]. */
  get variables(): tf.Variable[] {
    return [this.weight, this.bias];
  }

  /** Maps x [B, D] to y = x·Wᵀ + b; the log-det is left to `constantLogDet()`. O(BD²). */
  forward(x: tf.Tensor): LayerForward {
    const rows = this.checkBatch(x, 'forward');
    return { y: tf.tidy(() => tf.add(matMul(rows, this.weight, false, true), this.bias)), logDet: null };
  }

  /**
   * Maps y [B, D] back to x = W⁻¹(y − b) per row by solving W·Xᵀ = (y − b)ᵀ, never differentiated.
   * O(D³ + BD²).
   */
  inverse(y: tf.Tensor): tf.Tensor {
    const rows = this.checkBatch(y, 'inverse');
    return tf.tidy(() => {
      const centred = tf.sub(rows, this.bias);
      return tf.transpose(solve(this.weight, tf.transpose(centred) as tf.Tensor2D));
    });
  }

  /** Returns log|det W| in nats, differentiable in W (its gradient is W⁻ᵀ). O(D³). */
  constantLogDet(): tf.Scalar {
    return logAbsDet(this.weight);
  }

  /** Returns W itself, whose log|det| is this layer's log-det (see `FlowLayer`). O(1). */
  constantLogDetMatrix(): tf.Tensor2D {
    return this.weight;
  }

  private checkBatch(x: tf.Tensor, method: string): tf.Tensor2D {
    if (x.rank !== 2 || x.shape[1] !== this.dimension) {
      throw new Error(
        `DenseLayer "${this.name}".${method}: expected a batch of shape [B, ${this.dimension}], ` +
          `received [${x.shape.join(', ')}]; flatten each sample to ${this.dimension} values first`,
      );
    }
    return x as tf.Tensor2D;
  }
}
