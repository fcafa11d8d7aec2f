import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { ObjectiveName } from '../../src/objectives/objective.js';
import { resolveTrainingConfig, type TrainingConfigInput } from '../../src/train/config.js';
import type { ArchitectureName } from '../../src/train/session.js';

/** The reference's config table: γ, M, weight decay, clipping per data set, architecture, objective. */
const TABLE: [string, ArchitectureName, ObjectiveName, number, number, number, number | null][] = [
  ['mnist', 'fc', 'ml', 0.95, 50, 0, null],
  ['mnist', 'fc', 'sml', 0.95, 50, 0, null],
  ['mnist', 'fc', 'ssm', 0.95, 50, 0, null],
  ['mnist', 'fc', 'dsm', 0.95, 50, 0, null],
  ['mnist', 'fc', 'fdssm', 0.95, 50, 0, 5.0],
  ['mnist', 'cnn', 'ml', 0.925, 50, 1e-5, null],
  ['mnist', 'cnn', 'sml', 0.925, 50, 1e-5, null],
  ['mnist', 'cnn', 'ssm', 0.95, 50, 0, null],
  ['mnist', 'cnn', 'dsm', 0.95, 50, 1e-5, null],
  ['mnist', 'cnn', 'fdssm', 0.95, 50, 0, 5.0],
  ['cifar10', 'fc', 'ml', 0.7, 20, 0, null],
  ['cifar10', 'fc', 'sml', 0.7, 20, 0, null],
  ['cifar10', 'fc', 'ssm', 0.85, 30, 0, null],
  ['cifar10', 'fc', 'dsm', 0.85, 30, 0, null],
  ['cifar10', 'fc', 'fdssm', 0.7, 20, 0, null],
  ['cifar10', 'cnn', 'ml', 0.8, 20, 0, null],
  ['cifar10', 'cnn', 'sml', 0.8, 20, 0, null],
  ['cifar10', 'cnn', 'ssm', 0.9, 20, 0, null],
  ['cifar10', 'cnn', 'dsm', 0.8, 20, 0, null],
  ['cifar10', 'cnn', 'fdssm', 0.85, 50, 0, null],
];

describe('training config', () => {
  it('fills the schedule of every table row', () => {
    for (const [dataset, architecture, objective, decay, milestones, weightDecay, gradientClip] of TABLE) {
      const config = resolveTrainingConfig({ dataset, architecture, objective } as TrainingConfigInput);
      const row = `${dataset}/${architecture}/${objective}`;
      assert.equal(config.decay, decay, `${row} decay`);
      assert.equal(config.milestones, milestones, `${row} milestones`);
      assert.equal(config.weightDecay, weightDecay, `${row} weightDecay`);
      assert.equal(config.gradientClip, gradientClip, `${row} gradientClip`);
      assert.equal(config.learningRate, 1e-4, `${row} learningRate`);
      assert.equal(config.batchSize, 100, `${row} batchSize`);
      assert.equal(config.emaDecay, 0.999, `${row} emaDecay`);
      assert.equal(config.slices, 1, `${row} slices`);
    }
  });

  it('fills the per-family settings', () => {
    const mnistFc = resolveTrainingConfig({ dataset: 'mnist', architecture: 'fc', objective: 'dsm' });
    assert.deepEqual(
      [mnistFc.sigma, mnistFc.epsilon, mnistFc.energyWeight, mnistFc.logitScale, mnistFc.residual],
      [1.0, 1.0, 0, 0.5, false],
    );
    assert.deepEqual(mnistFc.imageShape, [28, 28, 1]);
    assert.equal(mnistFc.depth, 2);
    assert.equal(mnistFc.seed, 0);
    assert.equal(mnistFc.matchAfterPreprocessing, true);
    assert.equal(mnistFc.explicitDerivatives, true);
    assert.equal(mnistFc.cifarDirectory, undefined);

    const mnistCnn = resolveTrainingConfig({ dataset: 'mnist', architecture: 'cnn', objective: 'ssm' });
    assert.deepEqual(
      [mnistCnn.sigma, mnistCnn.epsilon, mnistCnn.energyWeight, mnistCnn.logitScale, mnistCnn.residual],
      [0.1, 0.1, 0, 0.75, true],
    );
    const cifarFc = resolveTrainingConfig({ dataset: 'cifar10', architecture: 'fc', objective: 'fdssm' });
    assert.deepEqual(
      [cifarFc.sigma, cifarFc.epsilon, cifarFc.energyWeight, cifarFc.logitScale, cifarFc.residual],
      [0.1, 0.1, 0.001, 0.5, true],
    );
    assert.deepEqual(cifarFc.imageShape, [32, 32, 3]);
    assert.equal(cifarFc.cifarDirectory, 'datasets/cifar-10-batches-bin');
    const cifarCnn = resolveTrainingConfig({ dataset: 'cifar10', architecture: 'cnn', objective: 'ml' });
    assert.equal(cifarCnn.logitScale, 0.75);
  });

  it('maps synthetic data to the nearest family', () => {
    const gray = resolveTrainingConfig({ dataset: 'synthetic', architecture: 'fc', objective: 'fdssm', imageShape: [10, 10, 1] });
    assert.equal(gray.gradientClip, 5.0);
    assert.equal(gray.residual, false);
    const colour = resolveTrainingConfig({ dataset: 'synthetic', architecture: 'fc', objective: 'ssm', imageShape: [8, 8, 3] });
    assert.equal(colour.decay, 0.85);
    assert.equal(colour.energyWeight, 0.001);
  });

  it('keeps explicit values, null included', () => {
    const config = resolveTrainingConfig({
      dataset: 'mnist',
      architecture: 'fc',
      objective: 'fdssm',
      gradientClip: null,
      emaDecay: null,
      learningRate: 3e-3,
      seed: 7,
      cifarDirectory: '/data/cifar',
    });
    assert.equal(config.gradientClip, null);
    assert.equal(config.emaDecay, null);
    assert.equal(config.learningRate, 3e-3);
    assert.equal(config.seed, 7);
    assert.equal(config.cifarDirectory, '/data/cifar');
  });

  it('resolves its own output unchanged', () => {
    const once = resolveTrainingConfig({ dataset: 'cifar10', architecture: 'cnn', objective: 'dsm', batchSize: 10 });
    assert.deepEqual(resolveTrainingConfig(once), once);
  });

  it('rejects unknown names and options', () => {
    assert.throws(
      () => resolveTrainingConfig({ dataset: 'celeba', architecture: 'fc', objective: 'dsm' } as never),
      /unknown dataset "celeba"; use one of "mnist", "cifar10", "synthetic"/,
    );
    assert.throws(
      () => resolveTrainingConfig({ dataset: 'mnist', architecture: 'resnet', objective: 'dsm' } as never),
      /unknown architecture "resnet"/,
    );
    assert.throws(
      () => resolveTrainingConfig({ dataset: 'mnist', architecture: 'fc', objective: 'nce' } as never),
      /unknown objective "nce"; use one of "ml", "sml", "ssm", "dsm", "fdssm"/,
    );
    assert.throws(
      () => resolveTrainingConfig({ dataset: 'mnist', architecture: 'fc', objective: 'dsm', learningrate: 1 } as never),
      /unknown option "learningrate"; known options are dataset, architecture/,
    );
  });

  it('rejects impossible combinations', () => {
    assert.throws(
      () => resolveTrainingConfig({ dataset: 'mnist', architecture: 'fc', objective: 'dsm', imageShape: [32, 32, 3] }),
      /dataset "mnist" has images of shape \[28, 28, 1\], but imageShape is \[32, 32, 3\]; remove imageShape, or use dataset "synthetic"/,
    );
    assert.throws(
      () => resolveTrainingConfig({ dataset: 'synthetic', architecture: 'cnn', objective: 'dsm', imageShape: [30, 30, 1] }),
      /architecture "cnn" squeezes twice, so H and W must be multiples of 4/,
    );
    assert.throws(
      () => resolveTrainingConfig({ dataset: 'synthetic', architecture: 'fc', objective: 'dsm' }),
      /dataset "synthetic" needs imageShape/,
    );
    assert.throws(
      () => resolveTrainingConfig({ dataset: 'mnist', architecture: 'fc', objective: 'dsm', matchAfterPreprocessing: false }),
      /objective "dsm" perturbs the model input .* set matchAfterPreprocessing to true, or use objective "ml", "sml" or "ssm"/,
    );
    assert.throws(
      () => resolveTrainingConfig({ dataset: 'mnist', architecture: 'fc', objective: 'ssm', spectralNorm: true }),
      /spectralNorm normalises convolutions, but architecture "fc" has none/,
    );
    assert.throws(
      () => resolveTrainingConfig({ dataset: 'mnist', architecture: 'fc', objective: 'dsm', batchSize: 60_000 }),
      /batchSize 60000 exceeds the 50000 training images of "mnist"/,
    );
  });

  it('rejects FC models too large to allocate', () => {
    assert.throws(
      () => resolveTrainingConfig({ dataset: 'synthetic', architecture: 'fc', objective: 'dsm', imageShape: [1000, 1000, 1] }),
      /an FC model with D = 1000000 and depth 2 needs about 29802 GiB .* use a smaller imageShape or depth/,
    );
    const large = resolveTrainingConfig({ dataset: 'synthetic', architecture: 'fc', objective: 'dsm', imageShape: [64, 64, 3] });
    assert.deepEqual(large.imageShape, [64, 64, 3]);
  });

  it('rejects invalid values with the fix', () => {
    const base: TrainingConfigInput = { dataset: 'mnist', architecture: 'fc', objective: 'dsm' };
    const cases: [Partial<TrainingConfigInput>, RegExp][] = [
      [{ gradientClip: 0 }, /gradientClip must be a finite number > 0 or null, received 0; use null to turn clipping off/],
      [{ gradientClip: -1 }, /gradientClip .* received -1/],
      [{ emaDecay: 1 }, /emaDecay must lie in \[0, 1\) or be null, received 1/],
      [{ batchSize: 0 }, /batchSize must be an integer ≥ 1, received 0/],
      [{ depth: 1.5 }, /depth must be an integer ≥ 1, received 1.5/],
      [{ learningRate: 0 }, /learningRate must be a finite number > 0, received 0/],
      [{ sigma: Number.NaN }, /sigma must be a finite number > 0, received null/],
      [{ decay: 1.2 }, /decay \(γ per epoch\) must lie in \(0, 1\], received 1.2/],
      [{ seed: -1 }, /seed must be a non-negative safe integer, received -1/],
      [{ weightDecay: -1e-5 }, /weightDecay must be a finite number ≥ 0/],
      [{ residual: 'yes' as never }, /residual must be true or false, received "yes"/],
      [{ imageShape: [28, 28] as never }, /imageShape must be \[H, W, C\] with three positive integers/],
    ];
    for (const [change, message] of cases) {
      assert.throws(() => resolveTrainingConfig({ ...base, ...change }), message, JSON.stringify(change));
    }
  });
});
