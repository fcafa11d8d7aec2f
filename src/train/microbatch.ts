/**
 * Gradient accumulation over microbatches: one step's loss and gradient computed in slices of
 * the batch, so a model whose full-batch gradient does not fit in memory (Glow on wasm, whose
 * address space is 4 GB) still takes the full-batch step.
 *
 * The batch of B rows is cut into consecutive microbatches of at most `microbatchSize` rows.
 * Microbatch i with n_i rows gets its rows of x and of every prepared tensor, its loss L_i and
 * gradient are computed with `tf.variableGrads`, and
 *   L = Σ_i (n_i / B) · L_i,   ∇L = Σ_i (n_i / B) · ∇L_i.
 * This equals the full-batch loss and gradient whenever the loss is a mean over rows plus terms
 * that do not depend on the batch (log Z of ML), which holds for every EBFlow objective here.
 * A prepared tensor with k·B rows (SSM's k slices, stored slice-major) contributes rows
 * s·B + [start, end) of each slice s.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { PreparedBatch } from '../objectives/objective.js';

/** The loss of one (micro)batch: x and its prepared tensors in, a scalar out. */
export type BatchLoss = (x: tf.Tensor, prepared: PreparedBatch) => tf.Scalar;

export interface AccumulatedGradients {
  /** The batch loss Σ_i (n_i / B) · L_i, read back from the backend. */
  loss: number;
  /** One gradient per variable, in `variables` order (zeros where the loss does not reach it). */
  gradients: tf.Tensor[];
}

/**
 * Returns the full-batch loss and gradients of `lossOf` over `variables`, computed one
 * microbatch of at most `microbatchSize` rows at a time (see the file comment). The caller owns
 * the returned gradients. Costs the same arithmetic as one full-batch `tf.variableGrads` plus
 * O(P) additions per microbatch. Peak memory is that of one microbatch plus three copies of the
 * gradient (the running sum, the microbatch's gradient and the new sum).
 */
export async function accumulateGradients(
  lossOf: BatchLoss,
  variables: tf.Variable[],
  x: tf.Tensor,
  prepared: PreparedBatch,
  microbatchSize: number,
): Promise<AccumulatedGradients> {
  const batch = x.shape[0];
  if (!Number.isInteger(microbatchSize) || microbatchSize < 1) {
    throw new RangeError(`microbatch: microbatchSize must be a positive integer, received ${microbatchSize}`);
  }
  for (const [key, tensor] of Object.entries(prepared)) {
    if (tensor.rank < 1 || tensor.shape[0] % batch !== 0) {
      throw new RangeError(
        `microbatch: prepared tensor "${key}" has shape [${tensor.shape.join(', ')}], whose first axis is not a multiple of the batch size ${batch}; ` +
          'only tensors with one row per sample (or k slice-major copies) can be split',
      );
    }
  }

  let sums: tf.Tensor[] | null = null;
  let loss = 0;
  try {
    for (let start = 0; start < batch; start += microbatchSize) {
      const end = Math.min(start + microbatchSize, batch);
      const share = (end - start) / batch;
      const rows = tf.tidy(() => sliceRows(x, prepared, batch, start, end));
      let value: tf.Scalar | null = null;
      let grads: tf.NamedTensorMap = {};
      try {
        ({ value, grads } = tf.variableGrads(() => lossOf(rows.x, rows.prepared), variables));
        loss += share * (await value.data())[0];
        const previous: tf.Tensor[] | null = sums;
        sums = tf.tidy(() =>
          variables.map((v, i) => {
            const gradient = grads[v.name];
            // tf.variableGrads leaves out variables the loss does not reach: their gradient is zero.
            const weighted = gradient === undefined ? tf.zerosLike(v) : tf.mul(gradient, share);
            return previous === null ? weighted : tf.add(previous[i], weighted);
          }),
        );
        previous?.forEach((t) => t.dispose());
      } finally {
        value?.dispose();
        tf.dispose(Object.values(grads));
        rows.x.dispose();
        tf.dispose(Object.values(rows.prepared));
      }
    }
  } catch (error) {
    sums?.forEach((t) => t.dispose());
    throw error;
  }
  return { loss, gradients: sums ?? [] };
}

/** Returns rows [start, end) of x and of each prepared tensor (every slice of a k·B-row tensor). */
function sliceRows(
  x: tf.Tensor,
  prepared: PreparedBatch,
  batch: number,
  start: number,
  end: number,
): { x: tf.Tensor; prepared: PreparedBatch } {
  const slicedPrepared: PreparedBatch = {};
  for (const [key, tensor] of Object.entries(prepared)) {
    const copies = tensor.shape[0] / batch;
    const parts: tf.Tensor[] = [];
    for (let copy = 0; copy < copies; copy++) {
      parts.push(tf.slice(tensor, copy * batch + start, end - start));
    }
    slicedPrepared[key] = copies === 1 ? parts[0] : tf.concat(parts, 0);
  }
  return { x: tf.slice(x, start, end - start), prepared: slicedPrepared };
}
