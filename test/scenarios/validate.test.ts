import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ScenarioError, formatProblem } from '../../src/scenarios/problems.js';
import { validateScenario } from '../../src/scenarios/validate.js';

type Document = Record<string, any>;

/** Returns a small valid runtime scenario that each case below breaks in one way. */
function validRuntime(): Document {
  return {
    name: 'probe',
    description: 'a test scenario',
    grid: { datasets: ['synthetic'], architectures: ['fc'], objectives: ['dsm'], imageSides: [4] },
    measure: { kind: 'runtime', iterations: 3 },
  };
}

function validTrain(): Document {
  return { ...validRuntime(), measure: { kind: 'train', budget: { iterations: 5 } } };
}

/** Returns a small valid 2-D toy scenario. */
function validToy(): Document {
  return {
    name: 'toy-probe',
    description: 'a toy test scenario',
    grid: { datasets: ['sine'], architectures: ['coupling2d'], objectives: ['ml', 'dsm'] },
    overrides: { blocks: 2 },
    measure: { kind: 'train', budget: { iterations: 5 }, warmupIterations: 1, evaluation: { every: { iterations: 2 } } },
  };
}

/** Returns a small valid multimodal10 scenario. */
function validMultimodal(): Document {
  return {
    name: 'multimodal-probe',
    description: 'a multimodal10 test scenario',
    grid: { datasets: ['multimodal10'], architectures: ['linear-full', 'linear-lu'], objectives: ['ml'] },
    measure: { kind: 'train', budget: { iterations: 5 } },
  };
}

interface Case {
  name: string;
  build: () => unknown;
  /** Paths that must appear among the problems. */
  paths: string[];
}

const cases: Case[] = [
  { name: 'document is an array', build: () => [], paths: ['$'] },
  { name: 'name of wrong type', build: () => ({ ...validRuntime(), name: 5 }), paths: ['$.name'] },
  { name: 'name with a slash', build: () => ({ ...validRuntime(), name: 'a/b' }), paths: ['$.name'] },
  { name: 'missing description', build: () => ({ ...validRuntime(), description: undefined }), paths: ['$.description'] },
  { name: 'estimatedMinutes zero', build: () => ({ ...validRuntime(), estimatedMinutes: 0 }), paths: ['$.estimatedMinutes'] },
  { name: 'unknown root key', build: () => ({ ...validRuntime(), grids: {} }), paths: ['$.grids'] },
  { name: 'missing grid', build: () => ({ ...validRuntime(), grid: undefined }), paths: ['$.grid'] },
  { name: 'empty data set list', build: () => set(validRuntime(), 'grid.datasets', []), paths: ['$.grid.datasets'] },
  { name: 'empty objectives', build: () => set(validRuntime(), 'grid.objectives', []), paths: ['$.grid.objectives'] },
  { name: 'unknown objective', build: () => set(validRuntime(), 'grid.objectives', ['dsm', 'sm']), paths: ['$.grid.objectives[1]'] },
  { name: 'unknown architecture', build: () => set(validRuntime(), 'grid.architectures', ['resnet']), paths: ['$.grid.architectures[0]'] },
  { name: 'unknown data set', build: () => set(validRuntime(), 'grid.datasets', ['imagenet']), paths: ['$.grid.datasets[0]'] },
  { name: 'unknown grid key', build: () => set(validRuntime(), 'grid.seed', [1]), paths: ['$.grid.seed'] },
  { name: 'image sides as text', build: () => set(validRuntime(), 'grid.imageSides', '28'), paths: ['$.grid.imageSides'] },
  { name: 'fractional side', build: () => set(validRuntime(), 'grid.imageSides', [4.5]), paths: ['$.grid.imageSides[0]'] },
  { name: 'repeated seed', build: () => set(validRuntime(), 'grid.seeds', [0, 0]), paths: ['$.grid.seeds[1]'] },
  { name: 'negative seed', build: () => set(validRuntime(), 'grid.seeds', [-1]), paths: ['$.grid.seeds[0]'] },
  { name: 'zero batch size', build: () => set(validRuntime(), 'grid.batchSizes', [0]), paths: ['$.grid.batchSizes[0]'] },
  {
    name: 'sides and dimensions together',
    build: () => set(validRuntime(), 'grid.dimensions', [16]),
    paths: ['$.grid.dimensions'],
  },
  {
    name: 'cnn with non-square D',
    build: () => set(set(set(validRuntime(), 'grid.imageSides', undefined), 'grid.dimensions', [300]), 'grid.architectures', ['cnn']),
    paths: ['$.grid.dimensions[0]'],
  },
  {
    name: 'cnn with square D of wrong channels',
    build: () =>
      set(set(set(set(validRuntime(), 'grid.imageSides', undefined), 'grid.dimensions', [256]), 'grid.channels', [3]), 'grid.architectures', ['cnn']),
    paths: ['$.grid.dimensions[0]'],
  },
  { name: 'cnn with odd side', build: () => set(set(validRuntime(), 'grid.imageSides', [30]), 'grid.architectures', ['cnn']), paths: ['$.grid.imageSides[0]'] },
  {
    name: 'fc D not divisible by channels',
    build: () => set(set(set(validRuntime(), 'grid.imageSides', undefined), 'grid.dimensions', [10]), 'grid.channels', [3]),
    paths: ['$.grid.dimensions[0]'],
  },
  { name: 'mnist with another side', build: () => set(set(validRuntime(), 'grid.datasets', ['mnist']), 'grid.imageSides', [32]), paths: ['$.grid.imageSides[0]'] },
  { name: 'cifar10 with one channel', build: () => set(set(set(validRuntime(), 'grid.datasets', ['cifar10']), 'grid.imageSides', undefined), 'grid.channels', [1]), paths: ['$.grid.channels[0]'] },
  { name: 'synthetic without a size', build: () => set(validRuntime(), 'grid.imageSides', undefined), paths: ['$.grid.imageSides'] },
  { name: 'depths with cnn', build: () => set(set(validRuntime(), 'grid.architectures', ['fc', 'cnn']), 'grid.depths', [2]), paths: ['$.grid.depths'] },
  {
    name: 'toy data with fc',
    build: () => set(set(validRuntime(), 'grid.datasets', ['sine']), 'grid.imageSides', undefined),
    paths: ['$.grid.architectures'],
  },
  {
    name: 'toy architecture with mnist',
    build: () => set(set(set(validRuntime(), 'grid.datasets', ['mnist']), 'grid.architectures', ['coupling2d']), 'grid.imageSides', undefined),
    paths: ['$.grid.datasets'],
  },
  { name: 'toy data with shape', build: () => set(validToy(), 'grid.imageSides', [4]), paths: ['$.grid.imageSides'] },
  { name: 'toy and multimodal data', build: () => set(validToy(), 'grid.datasets', ['sine', 'multimodal10']), paths: ['$.grid.datasets'] },
  { name: 'linear net with sine', build: () => set(validToy(), 'grid.architectures', ['coupling2d', 'linear-full']), paths: ['$.grid.architectures'] },
  { name: 'coupling2d with multimodal10', build: () => set(validMultimodal(), 'grid.architectures', ['coupling2d']), paths: ['$.grid.architectures'] },
  { name: 'unknown mask architecture', build: () => set(validMultimodal(), 'grid.architectures', ['linear-tril']), paths: ['$.grid.architectures[0]'] },
  { name: 'multimodal10 with dsm', build: () => set(validMultimodal(), 'grid.objectives', ['ml', 'dsm']), paths: ['$.grid.objectives[1]'] },
  { name: 'toy batch of one', build: () => set(validToy(), 'grid.batchSizes', [64, 1]), paths: ['$.grid.batchSizes[1]'] },
  { name: 'image key in toy overrides', build: () => set(validToy(), 'overrides', { logitScale: 0.5, sigma: 0.1 }), paths: ['$.overrides.logitScale', '$.overrides.sigma'] },
  {
    name: 'toy key in image variant',
    build: () => ({ ...validTrain(), variants: [{ name: 'a', overrides: { hidden: 8 } }] }),
    paths: ['$.variants[0].overrides.hidden'],
  },
  { name: '2-D key for multimodal10', build: () => set(validMultimodal(), 'overrides', { hidden: 8, emaDecay: 0.9 }), paths: ['$.overrides.hidden', '$.overrides.emaDecay'] },
  { name: 'unknown base distribution', build: () => set(validToy(), 'overrides', { base: 'cauchy' }), paths: ['$.overrides.base'] },
  { name: 'zero toy blocks', build: () => set(validToy(), 'overrides', { blocks: 0 }), paths: ['$.overrides.blocks'] },
  { name: 'fractional hidden width', build: () => set(validToy(), 'overrides', { hidden: 2.5 }), paths: ['$.overrides.hidden'] },
  { name: 'negative noise std', build: () => set(validToy(), 'overrides', { noiseStd: -0.3 }), paths: ['$.overrides.noiseStd'] },
  { name: 'unknown network init', build: () => set(validToy(), 'overrides', { networkInit: 'xavier' }), paths: ['$.overrides.networkInit'] },
  { name: 'negative data seed', build: () => set(validToy(), 'overrides', { dataSeed: -1 }), paths: ['$.overrides.dataSeed'] },
  { name: 'zero evaluation points', build: () => set(validToy(), 'overrides', { evaluationPoints: 0 }), paths: ['$.overrides.evaluationPoints'] },
  { name: 'toy runtime measure', build: () => set(validToy(), 'measure', { kind: 'runtime', iterations: 3 }), paths: ['$.measure.kind'] },
  { name: 'toy seconds budget', build: () => set(validToy(), 'measure.budget', { seconds: 60 }), paths: ['$.measure.budget'] },
  { name: 'toy epochs budget', build: () => set(validMultimodal(), 'measure.budget', { epochs: 2 }), paths: ['$.measure.budget'] },
  { name: 'toy evaluation in seconds', build: () => set(validToy(), 'measure.evaluation', { every: { seconds: 5 } }), paths: ['$.measure.evaluation.every'] },
  { name: 'toy evaluation max images', build: () => set(validToy(), 'measure.evaluation.maxImages', 100), paths: ['$.measure.evaluation.maxImages'] },
  { name: 'toy evaluation on validation', build: () => set(validToy(), 'measure.evaluation.split', 'validation'), paths: ['$.measure.evaluation.split'] },
  { name: 'toy evaluation not at start', build: () => set(validToy(), 'measure.evaluation.atStart', false), paths: ['$.measure.evaluation.atStart'] },
  { name: 'toy final off', build: () => set(validToy(), 'measure.final', false), paths: ['$.measure.final'] },
  { name: 'toy final max images', build: () => set(validToy(), 'measure.final', { maxImages: 10 }), paths: ['$.measure.final.maxImages'] },
  { name: 'warm-up beyond budget', build: () => set(validToy(), 'measure.warmupIterations', 5), paths: ['$.measure.warmupIterations'] },
  { name: 'negative train warm-up', build: () => set(validToy(), 'measure.warmupIterations', -2), paths: ['$.measure.warmupIterations'] },
  { name: 'warm-up in image train', build: () => set(validTrain(), 'measure.warmupIterations', 2), paths: ['$.measure.warmupIterations'] },
  { name: 'grid axis in overrides', build: () => ({ ...validRuntime(), overrides: { batchSize: 10 } }), paths: ['$.overrides.batchSize'] },
  { name: 'learning rate as text', build: () => ({ ...validRuntime(), overrides: { learningRate: 'fast' } }), paths: ['$.overrides.learningRate'] },
  { name: 'negative learning rate', build: () => ({ ...validRuntime(), overrides: { learningRate: -1e-4 } }), paths: ['$.overrides.learningRate'] },
  { name: 'ema decay of 1', build: () => ({ ...validRuntime(), overrides: { emaDecay: 1 } }), paths: ['$.overrides.emaDecay'] },
  { name: 'residual as text', build: () => ({ ...validRuntime(), overrides: { residual: 'yes' } }), paths: ['$.overrides.residual'] },
  { name: 'empty variants', build: () => ({ ...validRuntime(), variants: [] }), paths: ['$.variants'] },
  {
    name: 'repeated variant name',
    build: () => ({ ...validRuntime(), variants: [{ name: 'a', overrides: {} }, { name: 'a', overrides: { learningRate: 1e-3 } }] }),
    paths: ['$.variants[1].name'],
  },
  { name: 'variant without overrides', build: () => ({ ...validRuntime(), variants: [{ name: 'a' }] }), paths: ['$.variants[0].overrides'] },
  { name: 'variant name with underscore', build: () => ({ ...validRuntime(), variants: [{ name: 'a_b', overrides: {} }] }), paths: ['$.variants[0].name'] },
  { name: 'unknown measure kind', build: () => set(validRuntime(), 'measure.kind', 'bench'), paths: ['$.measure.kind'] },
  { name: 'missing measure kind', build: () => set(validRuntime(), 'measure.kind', undefined), paths: ['$.measure.kind'] },
  { name: 'fractional iterations', build: () => set(validRuntime(), 'measure.iterations', 2.5), paths: ['$.measure.iterations'] },
  { name: 'negative warm-up', build: () => set(validRuntime(), 'measure.warmupIterations', -1), paths: ['$.measure.warmupIterations'] },
  { name: 'negative runtime cap', build: () => set(validRuntime(), 'measure.maxSeconds', -3), paths: ['$.measure.maxSeconds'] },
  { name: 'train key in runtime measure', build: () => set(validRuntime(), 'measure.budget', { iterations: 3 }), paths: ['$.measure.budget'] },
  { name: 'missing budget', build: () => set(validTrain(), 'measure.budget', undefined), paths: ['$.measure.budget'] },
  { name: 'negative budget', build: () => set(validTrain(), 'measure.budget', { iterations: -5 }), paths: ['$.measure.budget.iterations'] },
  { name: 'zero seconds budget', build: () => set(validTrain(), 'measure.budget', { seconds: 0 }), paths: ['$.measure.budget.seconds'] },
  { name: 'two budgets', build: () => set(validTrain(), 'measure.budget', { iterations: 5, epochs: 1 }), paths: ['$.measure.budget'] },
  { name: 'unknown budget unit', build: () => set(validTrain(), 'measure.budget', { minutes: 5 }), paths: ['$.measure.budget.minutes', '$.measure.budget'] },
  {
    name: 'evaluation every zero iterations',
    build: () => set(validTrain(), 'measure.evaluation', { every: { iterations: 0 } }),
    paths: ['$.measure.evaluation.every.iterations'],
  },
  {
    name: 'evaluation on train split',
    build: () => set(validTrain(), 'measure.evaluation', { every: { seconds: 5 }, split: 'train' }),
    paths: ['$.measure.evaluation.split'],
  },
  {
    name: 'evaluation without interval',
    build: () => set(validTrain(), 'measure.evaluation', { split: 'test' }),
    paths: ['$.measure.evaluation.every'],
  },
  { name: 'final as text', build: () => set(validTrain(), 'measure.final', 'yes'), paths: ['$.measure.final'] },
  { name: 'final max images zero', build: () => set(validTrain(), 'measure.final', { maxImages: 0 }), paths: ['$.measure.final.maxImages'] },
  { name: 'negative divergence count', build: () => ({ ...validRuntime(), divergence: { maxConsecutiveNonFinite: -1 } }), paths: ['$.divergence.maxConsecutiveNonFinite'] },
];

/** Sets (or deletes, for undefined) the value at a dotted path of a copy of `document`. */
function set(document: Document, path: string, value: unknown): Document {
  const copy = structuredClone(document);
  const keys = path.split('.');
  let target = copy;
  for (const key of keys.slice(0, -1)) target = target[key];
  if (value === undefined) delete target[keys.at(-1) as string];
  else target[keys.at(-1) as string] = value;
  return copy;
}

describe('validateScenario rejects malformed scenarios', () => {
  for (const testCase of cases) {
    it(testCase.name, () => {
      const result = validateScenario(testCase.build());
      assert.equal(result.scenario, undefined, 'a scenario was returned despite the problem');
      const paths = result.problems.map((problem) => problem.path);
      for (const path of testCase.paths) {
        assert.ok(paths.includes(path), `expected a problem at ${path}; problems: ${result.problems.map(formatProblem).join(' | ')}`);
      }
      for (const problem of result.problems) {
        assert.notEqual(problem.found, '', `problem at ${problem.path} has no value found`);
        assert.notEqual(problem.allowed, '', `problem at ${problem.path} says nothing allowed`);
        assert.notEqual(problem.fix, '', `problem at ${problem.path} has no fix`);
      }
      const message = new ScenarioError('probe.json', result.problems).message;
      assert.ok(message.includes(testCase.paths[0]), 'the error message leaves out the path');
    });
  }
});

describe('validateScenario messages', () => {
  it('reports every problem at once', () => {
    const document = validTrain();
    document.name = 'Bad Name';
    document.grid.objectives = ['dsm', 'sm'];
    document.grid.seeds = [0, 0];
    document.overrides = { learningRate: 'fast', speed: 2 };
    document.measure.budget = { iterations: -1 };
    document.divergence = { maxConsecutiveNonFinite: 1.5 };
    const paths = validateScenario(document).problems.map((problem) => problem.path);
    for (const expected of [
      '$.name',
      '$.grid.objectives[1]',
      '$.grid.seeds[1]',
      '$.overrides.learningRate',
      '$.overrides.speed',
      '$.measure.budget.iterations',
      '$.divergence.maxConsecutiveNonFinite',
    ]) {
      assert.ok(paths.includes(expected), `missing ${expected} among ${paths.join(', ')}`);
    }
  });

  it('unknown key names allowed keys and closest', () => {
    const [problem] = validateScenario(set(validRuntime(), 'grid.objective', ['dsm'])).problems;
    assert.equal(problem.path, '$.grid.objective');
    assert.match(problem.allowed, /"objectives"/);
    assert.match(problem.fix, /rename "objective" to "objectives"/);
  });

  it('foreign override names both kinds', () => {
    const [problem] = validateScenario(set(validToy(), 'overrides', { sigma: 0.1 })).problems;
    assert.equal(problem.path, '$.overrides.sigma');
    assert.match(problem.allowed, /2-D toy cells/);
    assert.match(problem.allowed, /"noiseStd"/);
    assert.match(problem.fix, /image cells only/);
    assert.match(problem.fix, /"noiseStd"/);
  });

  it('toy measure names the fix', () => {
    const [problem] = validateScenario(set(validToy(), 'measure.budget', { seconds: 60 })).problems;
    assert.equal(problem.path, '$.measure.budget');
    assert.match(problem.allowed, /"iterations"/);
    assert.equal(problem.found, '{"seconds":60}');
  });

  it('unknown objective lists the allowed ones', () => {
    const [problem] = validateScenario(set(validRuntime(), 'grid.objectives', ['ssm2'])).problems;
    assert.equal(problem.found, '"ssm2"');
    for (const objective of ['ml', 'sml', 'ssm', 'dsm', 'fdssm']) assert.match(problem.allowed, new RegExp(`"${objective}"`));
    assert.match(problem.fix, /"ssm"/);
  });
});

describe('validateScenario accepts valid scenarios', () => {
  it('train scenario using every key', () => {
    const document = {
      $schema: './scenario.schema.json',
      name: 'every-key',
      description: 'uses every key of the train format',
      estimatedMinutes: 3,
      grid: {
        datasets: ['synthetic'],
        architectures: ['fc'],
        objectives: ['ml', 'dsm'],
        imageSides: [4, 8],
        channels: [1, 3],
        depths: [1, 2],
        batchSizes: [10],
        seeds: [0, 1],
      },
      overrides: {
        learningRate: 1e-3,
        decay: 0.9,
        milestones: 5,
        weightDecay: 0,
        gradientClip: null,
        emaDecay: 0.99,
        sigma: 0.5,
        epsilon: 0.5,
        slices: 1,
        energyWeight: 0,
        logitScale: 0.5,
        residual: true,
        matchAfterPreprocessing: true,
        explicitDerivatives: false,
        cifarDirectory: 'datasets/cifar-10-batches-bin',
      },
      variants: [
        { name: 'a', overrides: { learningRate: 1e-4 } },
        { name: 'b', overrides: { gradientClip: 5 } },
      ],
      measure: {
        kind: 'train',
        budget: { epochs: 0.5 },
        evaluation: { every: { seconds: 10 }, split: 'test', maxImages: 50, atStart: true },
        final: { split: 'validation', maxImages: 20 },
      },
      divergence: { maxConsecutiveNonFinite: 0 },
    };
    const result = validateScenario(document);
    assert.deepEqual(result.problems, []);
    assert.ok(result.scenario);
    assert.equal(result.scenario.variants.length, 2);
    assert.deepEqual(result.scenario.measure, {
      kind: 'train',
      budget: { epochs: 0.5 },
      warmupIterations: 0,
      evaluation: { every: { seconds: 10 }, split: 'test', maxImages: 50, atStart: true },
      final: { split: 'validation', maxImages: 20 },
    });
    assert.equal(result.scenario.overrides.explicitDerivatives, false);
    assert.equal(result.scenario.divergence.maxConsecutiveNonFinite, 0);
  });

  it('runtime scenario using every key', () => {
    const document = {
      name: 'runtime-keys',
      description: 'uses every runtime key',
      grid: { datasets: ['synthetic'], architectures: ['cnn'], objectives: ['fdssm'], dimensions: [48], channels: [3] },
      measure: { kind: 'runtime', warmupIterations: 0, iterations: 7, maxSeconds: 1.5 },
    };
    const result = validateScenario(document);
    assert.deepEqual(result.problems, []);
    assert.deepEqual(result.scenario?.measure, { kind: 'runtime', warmupIterations: 0, iterations: 7, maxSeconds: 1.5 });
  });

  it('defaults filled for optional keys', () => {
    const result = validateScenario(validTrain());
    assert.ok(result.scenario);
    assert.deepEqual(result.scenario.grid.seeds, [0]);
    assert.equal(result.scenario.estimatedMinutes, null);
    assert.deepEqual(result.scenario.variants, []);
    assert.deepEqual(result.scenario.measure, {
      kind: 'train',
      budget: { iterations: 5 },
      warmupIterations: 0,
      evaluation: null,
      final: { split: 'test', maxImages: null },
    });
    assert.equal(result.scenario.divergence.maxConsecutiveNonFinite, 5);
    const runtime = validateScenario(validRuntime()).scenario;
    assert.deepEqual(runtime?.measure, { kind: 'runtime', warmupIterations: 3, iterations: 3, maxSeconds: null });
  });

  it('toy scenarios with toy keys', () => {
    const document = validToy();
    document.overrides = {
      learningRate: 1e-3,
      gradientClip: null,
      emaDecay: 0.99,
      epsilon: 0.2,
      base: 'laplace',
      blocks: 3,
      hidden: 16,
      noiseStd: 0.4,
      networkInit: 'uniform',
      chunkRows: 128,
      evaluationPoints: 500,
      trainPoints: 2000,
      testPoints: 1000,
      dataSeed: 4,
    };
    document.grid.batchSizes = [2, 256];
    document.measure.final = { split: 'test' };
    document.measure.evaluation = { every: { iterations: 2 }, split: 'test', atStart: true };
    const result = validateScenario(document);
    assert.deepEqual(result.problems, []);
    assert.deepEqual(result.scenario?.overrides, document.overrides);
    assert.equal(result.scenario?.measure.kind === 'train' && result.scenario.measure.warmupIterations, 1);
    const multimodal = validateScenario({ ...validMultimodal(), overrides: { learningRate: 1e-3, base: 'gaussian', blocks: 4, evaluationPoints: 64 } });
    assert.deepEqual(multimodal.problems, []);
  });

  it('final false turns the final evaluation off', () => {
    const result = validateScenario(set(validTrain(), 'measure.final', false));
    assert.equal(result.scenario?.measure.kind === 'train' && result.scenario.measure.final, null);
  });
});
