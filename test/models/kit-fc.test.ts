// The shared bijection kit applied to the FC family: the dense layer, the smooth leaky ReLU and
// the FC model.
import { DenseLayer } from '../../src/layers/dense.js';
import { SmoothLeakyReluLayer } from '../../src/layers/smooth-leaky-relu.js';
import { createFcFlow } from '../../src/models/fc-flow.js';
import { forEachBackend } from '../helpers/backends.js';
import { registerFlowKit, registerLayerKit } from '../helpers/bijection-kit.js';

forEachBackend((backend) => {
  registerLayerKit({ name: 'DenseLayer D=6', sampleShape: [6], create: () => new DenseLayer({ dimension: 6, name: 'dense[0]' }) }, backend);
  registerLayerKit(
    {
      name: 'SmoothLeakyReluLayer on [3, 2]',
      sampleShape: [3, 2],
      inputScale: 2,
      create: () => new SmoothLeakyReluLayer({ name: 'slr[0]', alpha: 0.3, residual: false }),
    },
    backend,
  );
  registerLayerKit(
    {
      name: 'SmoothLeakyReluLayer residual on [5]',
      sampleShape: [5],
      inputScale: 2,
      create: () => new SmoothLeakyReluLayer({ name: 'slr[0]', alpha: 0.3, residual: true }),
    },
    backend,
  );

  registerFlowKit(
    { name: 'FcFlow D=6, depth 2', sampleShape: [6], create: (random) => createFcFlow({ dimension: 6, depth: 2, residual: false, random }) },
    backend,
  );
  registerFlowKit(
    { name: 'FcFlow D=5, depth 3, residual', sampleShape: [5], create: (random) => createFcFlow({ dimension: 5, depth: 3, residual: true, random }) },
    backend,
  );
});
