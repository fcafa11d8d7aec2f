/**
 * The EBFlow view of a toy flow: a list of layers with a standard normal base, and the
 * data-dependent ActNorm initialisation the toy models need before their first step.
 *
 * E(x) = −[log N(g(x)) + Σ coupling log-dets] and log Z(θ) = −Σ (linear and ActNorm log-dets),
 * as for every EBFlow model (see src/models/energy-flow.ts).
 */
import * as tf from '@tensorflow/tfjs-core';

import type { FlowLayer } from '../layers/layer.js';
import type { EnergyFlow } from '../models/energy-flow.js';
import {
  collectVariables,
  energyThroughLayers,
  flattenSamples,
  inverseThroughLayers,
  logNormalizerOfLayers,
} from '../models/flow-core.js';
import { isDataInitialized } from './layers.js';

export class ToyFlow implements EnergyFlow {
  readonly sampleShape: number[];
  readonly variables: tf.Variable[];

  constructor(
    readonly architecture: string,
    readonly dimension: number,
    readonly layers: readonly FlowLayer[],
  ) {
    this.sampleShape = [dimension];
    this.variables = collectVariables(layers);
  }

  /** True once every data-initialised layer (ActNorm) has been initialised. */
  get initialized(): boolean {
    return this.layers.every((layer) => !isDataInitialized(layer) || layer.initialized);
  }

  /**
   * Runs x [B, D] through the layers and initialises every ActNorm that is not yet initialised
   * from the batch that reaches it, so each leaves with zero mean and unit variance. The
   * authors' code does this on the model's first forward call. One forward pass, O(cost of forward).
   */
  initializeFromData(x: tf.Tensor): void {
    tf.tidy(() => {
      let current = flattenSamples(x, this.dimension, `${this.architecture}.initializeFromData`);
      for (const layer of this.layers) {
        if (isDataInitialized(layer) && !layer.initialized) layer.initializeFromData(current);
        current = layer.forward(current).y as tf.Tensor2D;
      }
    });
  }

  /** Returns E(x) per sample, shape [B], nats; never computes a constant log-det. */
  energy(x: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => energyThroughLayers(this.layers, flattenSamples(x, this.dimension, `${this.architecture}.energy`)));
  }

  /** Returns log Z(θ) = −Σ constant log-dets as a scalar, differentiable in θ. */
  logNormalizer(): tf.Scalar {
    return logNormalizerOfLayers(this.layers);
  }

  /** Returns log p(x) = −E(x) − log Z per sample, shape [B], nats. */
  logProb(x: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => tf.sub(tf.neg(this.energy(x)), this.logNormalizer()) as tf.Tensor1D);
  }

  /** Maps latents z [B, D] to data space; never differentiated. */
  inverse(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => inverseThroughLayers(this.layers, flattenSamples(z, this.dimension, `${this.architecture}.inverse`)));
  }

  /** Frees every layer's variables and constant tensors. */
  dispose(): void {
    for (const layer of this.layers) {
      const disposable = layer as { dispose?: () => void };
      if (typeof disposable.dispose === 'function') disposable.dispose();
      else tf.dispose(layer.variables);
    }
  }
}
