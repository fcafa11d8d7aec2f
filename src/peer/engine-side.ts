/**
 * Our side of the peer comparison: ebflow-bench's own training session on a tfjs backend.
 *
 * Every run builds a fresh session on synthetic 8-bit images of the cell's shape and runs the
 * warm-up steps. It then times each `session.step()` with a wall clock, as the peer times its
 * steps. A step resolves only when the backend has finished it.
 */
import { computeLabel, selectBackend, type BackendSelection } from '../backend/select.js';
import { resolveTrainingConfig } from '../train/config.js';
import { describeBlas } from '../tensor/native-blas.js';
import { createTrainingSession } from '../train/session-impl.js';
import type { TrainingConfig } from '../train/session.js';
import type { PeerHyperparameters } from './protocol.js';
import type { OurSide, PeerCell, SideRun } from './sweep.js';

/** Returns the training config of a cell: synthetic data, the reference's defaults otherwise. */
export function trainingConfigForCell(cell: PeerCell, seed = 0): TrainingConfig {
  return resolveTrainingConfig({
    dataset: 'synthetic',
    architecture: cell.arch,
    objective: cell.objective,
    imageShape: cell.imageShape,
    depth: cell.depth,
    batchSize: cell.batch,
    seed,
  });
}

/** Returns the hyper-parameters of `config` in the peer protocol's terms. */
export function peerHyperparameters(config: TrainingConfig): PeerHyperparameters {
  return {
    learningRate: config.learningRate,
    weightDecay: config.weightDecay,
    gradientClip: config.gradientClip,
    emaDecay: config.emaDecay,
    sigma: config.sigma,
    epsilon: config.epsilon,
    energyWeight: config.energyWeight,
    slices: config.slices,
    logitScale: config.logitScale,
    residual: config.residual,
  };
}

/** Our engine on a selected backend, ready for the sweep. */
export class EngineSide implements OurSide {
  private constructor(readonly selection: BackendSelection) {}

  /** Selects the backend (`--backend`, or automatic) and returns the side. */
  static async create(backendRequest?: string): Promise<EngineSide> {
    return new EngineSide(await selectBackend(backendRequest));
  }

  get backend(): string {
    return computeLabel(this.selection);
  }

  get kernelThreads(): number {
    return this.selection.kernelThreads.threads;
  }

  get blas(): string {
    return describeBlas(this.selection.blas);
  }

  get lapackThreads(): number {
    return this.selection.lapackThreads.threads;
  }

  hyperparameters(cell: PeerCell): PeerHyperparameters {
    return peerHyperparameters(trainingConfigForCell(cell));
  }

  /** Runs warmup + iterations steps of a fresh session; O(iterations) steps of the cell's cost. */
  async run(cell: PeerCell, timing: { warmup: number; iterations: number; seed: number }): Promise<SideRun> {
    const session = await createTrainingSession(trainingConfigForCell(cell, timing.seed));
    try {
      const samplesMs: number[] = [];
      let lastLoss = Number.NaN;
      for (let step = 0; step < timing.warmup + timing.iterations; step += 1) {
        const start = performance.now();
        const result = await session.step();
        const elapsed = performance.now() - start;
        lastLoss = result.loss;
        if (step >= timing.warmup) samplesMs.push(elapsed);
      }
      return { samplesMs, lastLoss: Number.isFinite(lastLoss) ? lastLoss : null };
    } finally {
      session.dispose();
    }
  }
}
