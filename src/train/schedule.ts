/**
 * The learning-rate schedule of EBFlow's reference: PyTorch's MultiStepLR with milestones
 * 1, 2, …, M−1, stepped once per epoch, so epoch e (1-based) trains with
 *
 *   lr(e) = lr₀ · γ^{min(e − 1, M − 1)},
 *
 * and the rate stops decaying after epoch M − 1 at lr₀·γ^{M−1}.
 */

export interface ScheduleOptions {
  /** lr₀, the rate of the first epoch. */
  learningRate: number;
  /** γ, the factor applied at each of the first M − 1 epoch boundaries. */
  decay: number;
  /** M; the last decay happens at the start of epoch M. */
  milestones: number;
}

/** Returns the learning rate of 1-based `epoch`. O(1). */
export function learningRateForEpoch(epoch: number, options: ScheduleOptions): number {
  if (!Number.isInteger(epoch) || epoch < 1) {
    throw new RangeError(`learning-rate schedule: epoch must be an integer ≥ 1 (epochs count from 1), received ${epoch}`);
  }
  if (!Number.isInteger(options.milestones) || options.milestones < 1) {
    throw new RangeError(`learning-rate schedule: milestones must be an integer ≥ 1, received ${options.milestones}`);
  }
  return options.learningRate * options.decay ** Math.min(epoch - 1, options.milestones - 1);
}

/**
 * Returns the 1-based epoch that 0-based training iteration `iteration` belongs to, with
 * `iterationsPerEpoch` iterations per epoch. O(1).
 */
export function epochOfIteration(iteration: number, iterationsPerEpoch: number): number {
  if (!Number.isInteger(iteration) || iteration < 0) {
    throw new RangeError(`learning-rate schedule: iteration must be an integer ≥ 0, received ${iteration}`);
  }
  if (!Number.isInteger(iterationsPerEpoch) || iterationsPerEpoch < 1) {
    throw new RangeError(`learning-rate schedule: iterationsPerEpoch must be an integer ≥ 1, received ${iterationsPerEpoch}`);
  }
  return Math.floor(iteration / iterationsPerEpoch) + 1;
}
