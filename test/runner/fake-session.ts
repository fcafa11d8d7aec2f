/**
 * A deterministic stand-in for a training session, so runner tests do not train anything.
 *
 * Losses follow 100 / step; a step can wait a fixed time, turn non-finite from a given step on,
 * or throw. Evaluations return an NLL that falls with the step count.
 */
import type { NllResult, StepResult, TrainingConfig, TrainingSession } from '../../src/train/session.js';

export interface FakeBehaviour {
  /** Wall-clock milliseconds each step waits (default 0). */
  stepDelayMs?: number;
  /** From this 1-based step on, the loss is `nonFiniteValue`. */
  nonFiniteFrom?: number;
  /** Steps (1-based) whose loss is `nonFiniteValue`, in addition to `nonFiniteFrom`. */
  nonFiniteSteps?: number[];
  nonFiniteValue?: number;
  /** From this 1-based step on, the loss stays finite but the step reports `finite: false` (a non-finite gradient). */
  gradientNonFiniteFrom?: number;
  /** The step (1-based) that throws. */
  failAtStep?: number;
  /** Make `evaluate` throw. */
  failEvaluate?: boolean;
}

export class FakeSession implements TrainingSession {
  readonly iterationsPerEpoch = 10;
  steps = 0;
  evaluations: { split: string; maxImages: number | undefined }[] = [];
  disposed = false;

  constructor(
    readonly config: TrainingConfig,
    private readonly behaviour: FakeBehaviour = {},
  ) {}

  async step(): Promise<StepResult> {
    if (this.disposed) throw new Error('FakeSession: step after dispose');
    const step = this.steps + 1;
    if (this.behaviour.failAtStep === step) throw new Error(`FakeSession: injected failure at step ${step}`);
    if (this.behaviour.stepDelayMs) await new Promise((resolve) => setTimeout(resolve, this.behaviour.stepDelayMs));
    this.steps = step;
    const nonFinite =
      (this.behaviour.nonFiniteFrom !== undefined && step >= this.behaviour.nonFiniteFrom) ||
      (this.behaviour.nonFiniteSteps?.includes(step) ?? false);
    const loss = nonFinite ? (this.behaviour.nonFiniteValue ?? Number.NaN) : 100 / step;
    const gradientFinite = this.behaviour.gradientNonFiniteFrom === undefined || step < this.behaviour.gradientNonFiniteFrom;
    return { loss, finite: Number.isFinite(loss) && gradientFinite, step, phases: { preprocess: 1, forwardBackward: 2 + step, update: 3 } };
  }

  async evaluate(split: 'validation' | 'test', maxImages?: number): Promise<NllResult> {
    if (this.behaviour.failEvaluate) throw new Error('FakeSession: injected evaluation failure');
    this.evaluations.push({ split, maxImages });
    const dimension = this.config.imageShape[0] * this.config.imageShape[1] * this.config.imageShape[2];
    const nllNats = 1000 + 1000 / (1 + this.steps);
    return { split, images: maxImages ?? 100, nllNats, bitsPerDim: nllNats / (dimension * Math.LN2), nonFinite: 0 };
  }

  dispose(): void {
    this.disposed = true;
  }
}

/** Creates a session factory that records every session it creates and picks a behaviour per cell. */
export function fakeFactory(behaviourOf: (config: TrainingConfig) => FakeBehaviour & { failCreate?: boolean } = () => ({})) {
  const created: FakeSession[] = [];
  const factory = async (config: TrainingConfig): Promise<TrainingSession> => {
    const behaviour = behaviourOf(config);
    if (behaviour.failCreate) throw new Error(`FakeSession: injected creation failure for ${config.objective}`);
    const session = new FakeSession(config, behaviour);
    created.push(session);
    return session;
  };
  return { factory, created };
}

/** A fixed environment, so tests neither run git nor depend on the machine. */
export const FAKE_ENVIRONMENT = {
  backend: 'fake',
  backendAttempts: [{ name: 'fake' }],
  nodeVersion: process.version,
  packages: {},
  cpuModel: 'test',
  cpuCount: 1,
  platform: 'test',
  hostname: 'test',
  codeRevision: 'test',
};

/** Returns the 10-cell scenario document of the runner tests: 5 objectives × 2 seeds of a 4×4 synthetic FC grid. */
export function fakeScenarioDocument(): Record<string, any> {
  return {
    name: 'fake-sweep',
    description: 'runner test',
    grid: { datasets: ['synthetic'], architectures: ['fc'], objectives: ['ml', 'sml', 'ssm', 'dsm', 'fdssm'], imageSides: [4], seeds: [0, 1] },
    measure: { kind: 'train', budget: { iterations: 4 }, evaluation: { every: { iterations: 2 }, maxImages: 10 }, final: { maxImages: 20 } },
    divergence: { maxConsecutiveNonFinite: 2 },
  };
}
