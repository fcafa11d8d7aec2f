import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import { useBackend } from '../../src/backend/select.js';
import { RandomStream } from '../../src/random/stream.js';
import { MaskedLinearLayer, ToyActNorm } from '../../src/toys/layers.js';
import { createLinearNet, LINEAR_NET_MASKS } from '../../src/toys/linear-net.js';
import { defaultMultimodalConfig, trainMultimodal } from '../../src/toys/multimodal.js';
import { SmoothLeakyReluLayer } from '../../src/layers/smooth-leaky-relu.js';

before(async () => {
  await useBackend('wasm');
});

describe('multimodal10 linear network', () => {
  it('has the layer structure of each mask type', () => {
    for (const mask of LINEAR_NET_MASKS) {
      const model = createLinearNet({ random: new RandomStream(0), mask });
      const linear = model.layers.filter((layer) => layer instanceof MaskedLinearLayer) as MaskedLinearLayer[];
      const perStage = mask === 'lu' ? 2 : 1;
      assert.equal(linear.length, 11 * perStage, `${mask}: linear layers`);
      assert.equal(model.layers.filter((layer) => layer instanceof SmoothLeakyReluLayer).length, 10);
      assert.equal(model.layers.filter((layer) => layer instanceof ToyActNorm).length, 10);
      const expectedTypes = mask === 'lu' ? ['upper', 'lower'] : [mask];
      linear.forEach((layer, index) => assert.equal(layer.maskType, expectedTypes[index % perStage], `${mask}: layer ${index}`));
      assert.equal(model.dimension, 10);
      assert.equal(model.architecture, `linear-${mask}`);
      model.dispose();
    }
  });

  it('uses the authors\' settings by default', () => {
    const config = defaultMultimodalConfig('full');
    assert.equal(config.iterations, 10_001);
    assert.equal(config.batchSize, 2048);
    assert.equal(config.learningRate, 1e-3);
    assert.equal(config.gradientClip, 500);
    assert.equal(config.evaluationPoints, 1024);
    assert.equal(config.evaluateEvery, 100);
  });

  for (const mask of LINEAR_NET_MASKS) {
    it(`ML training with the ${mask} mask lowers the test NLL`, async () => {
      const config = { ...defaultMultimodalConfig(mask), iterations: 40, batchSize: 256, evaluateEvery: 20, trainPoints: 2000, testPoints: 1024 };
      const result = await trainMultimodal(config);
      assert.deepEqual(result.evaluations.map((e) => e.step), [0, 20, 40]);
      const [first, , last] = result.evaluations.map((e) => e.nll);
      assert.ok(Number.isFinite(last), `${mask}: final NLL ${last}`);
      assert.ok(last < first - 1, `${mask}: NLL ${first} at the start, ${last} after 40 steps`);
      assert.equal(result.finalNll, last);
      assert.equal(result.skippedSteps, 0);
    });
  }
});
