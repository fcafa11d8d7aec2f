import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import {
  NEWTON_ITERATIONS,
  SmoothLeakyReluLayer,
  invertSmoothLeakyReluScalar,
  newtonStep,
  smoothLeakyReluTerms,
} from '../../src/layers/smooth-leaky-relu.js';
import { RandomStream } from '../../src/random/stream.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';
import { referenceInvertSlr, slrDerivatives } from '../reference/fc-reference.js';

const INPUTS = [-30, -8.5, -2, -0.7, 0, 0.3, 1.9, 6, 25];

forEachBackend((backend) => {
  for (const residual of [false, true]) {
    it(`SLR forward and log-det match float64 (residual ${residual})`, () => {
      const layer = new SmoothLeakyReluLayer({ name: 'slr[0]', residual });
      const x = tf.tensor2d(INPUTS, [3, 3]);
      const { y, logDet } = layer.forward(x);
      const expectedY = INPUTS.map((h) => slrDerivatives(h, 0.3, residual)[0]);
      const expectedLogDet = [0, 1, 2].map((r) =>
        [0, 1, 2].reduce((total, i) => total + Math.log(slrDerivatives(INPUTS[r * 3 + i], 0.3, residual)[1]), 0),
      );
      assert.equal(firstMismatch(y.dataSync(), expectedY, backend.elementwise, 'y'), null);
      assert.ok(logDet !== null);
      assert.equal(firstMismatch(logDet.dataSync(), expectedLogDet, backend.elementwise, 'logDet'), null);
      tf.dispose([x, y, logDet]);
    });

    it(`SLR inverse undoes forward (residual ${residual})`, () => {
      const layer = new SmoothLeakyReluLayer({ name: 'slr[0]', residual });
      const x = tf.tensor2d(INPUTS, [3, 3]);
      const { y, logDet } = layer.forward(x);
      const back = layer.inverse(y);
      assert.deepEqual(back.shape, [3, 3]);
      assert.equal(firstMismatch(back.dataSync(), INPUTS, backend.elementwise, 'x'), null);
      tf.dispose([x, y, logDet as tf.Tensor, back]);
    });

    it(`SLR terms give f, f′, f″, f‴ (residual ${residual})`, () => {
      const h = tf.tensor1d(INPUTS);
      const terms = smoothLeakyReluTerms(h, 0.3, residual, true);
      const expected = INPUTS.map((value) => slrDerivatives(value, 0.3, residual));
      assert.equal(firstMismatch(terms.y.dataSync(), expected.map((e) => e[0]), backend.elementwise, 'f'), null);
      assert.equal(firstMismatch(terms.slope.dataSync(), expected.map((e) => e[1]), backend.elementwise, 'f′'), null);
      assert.equal(
        firstMismatch(terms.logSlope.dataSync(), expected.map((e) => Math.log(e[1])), backend.elementwise, 'ln f′'),
        null,
      );
      assert.equal(firstMismatch(terms.curvature.dataSync(), expected.map((e) => e[2]), backend.elementwise, 'f″'), null);
      assert.ok(terms.thirdDerivative !== undefined);
      assert.equal(firstMismatch(terms.thirdDerivative.dataSync(), expected.map((e) => e[3]), backend.elementwise, 'f‴'), null);
      tf.dispose([h, terms.y, terms.slope, terms.logSlope, terms.curvature, terms.thirdDerivative]);
    });
  }

  it('SLR rejects alpha outside (0, 1)', () => {
    assert.throws(() => new SmoothLeakyReluLayer({ name: 'slr[1]', alpha: 1.5, residual: false }), /alpha must lie in \(0, 1\), received 1\.5/);
  });
});

it('Newton inverse equals the reference iteration', () => {
  assert.equal(NEWTON_ITERATIONS, 100);
  for (const target of [-40, -3, -0.2, 0, 0.8, 5, 60]) {
    for (const residual of [false, true]) {
      const ours = invertSmoothLeakyReluScalar(target, 0.3, residual);
      assert.ok(Math.abs(ours - referenceInvertSlr(target, 0.3, residual)) < 1e-12, `target ${target}`);
      assert.ok(Math.abs(slrDerivatives(ours, 0.3, residual)[0] - target) < 1e-10, `f(x) = ${target}`);
    }
  }
  assert.ok(Number.isNaN(invertSmoothLeakyReluScalar(Number.NaN, 0.3, false)));
});

it('Newton early stop equals all 100 steps', () => {
  const random = new RandomStream(12);
  let stoppedEarly = 0;
  for (let i = 0; i < 3000; i++) {
    const target = (random.uniform() - 0.5) * 40;
    const residual = i % 2 === 1;
    let x = target;
    for (let step = 0; step < NEWTON_ITERATIONS; step++) x = newtonStep(x, target, 0.3, residual);
    assert.equal(invertSmoothLeakyReluScalar(target, 0.3, residual), x, `target ${target}, residual ${residual}`);
    if (newtonStep(x, target, 0.3, residual) === x) stoppedEarly++;
  }
  // Both ways of stopping occur: fixed points, and 2-cycles between neighbouring floats.
  assert.ok(stoppedEarly > 0);
  assert.ok(stoppedEarly < 3000);
});
