import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import {
  NEWTON_ITERATIONS,
  SmoothLeakyReluLayer,
  invertOnWasm,
  invertSmoothLeakyReluScalar,
  newtonStep,
  smoothLeakyReluStage,
  smoothLeakyReluTerms,
} from '../../src/layers/smooth-leaky-relu.js';
import { useBackend } from '../../src/backend/select.js';
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

describe('SLR inverse on wasm', () => {
  before(async () => {
    await useBackend('wasm');
  });

  /** Returns 4001 targets: uniform on [−40, 40], then 0 and ±1e−30. */
  function targets(): Float32Array {
    const random = new RandomStream(13);
    const values = new Float32Array(4001);
    for (let i = 0; i < values.length - 3; i++) values[i] = (random.uniform() - 0.5) * 80;
    values.set([0, 1e-30, -1e-30], values.length - 3);
    return values;
  }

  for (const residual of [false, true]) {
    it(`float32 inverse matches float64 (residual ${residual})`, () => {
      const values = targets();
      const x = tf.tidy(() => invertOnWasm(tf.tensor1d(values), 0.3, residual).dataSync());
      // A float32 f resolves x only to about ulp(y)/f′(x); 2e-6·max(|x|, |y|) is a few of those ulps.
      for (let i = 0; i < values.length; i++) {
        const expected = invertSmoothLeakyReluScalar(values[i], 0.3, residual);
        const tolerance = 2e-6 * Math.max(Math.abs(expected), Math.abs(values[i]));
        assert.ok(Math.abs(x[i] - expected) <= tolerance, `target ${values[i]}: ${x[i]} against ${expected}`);
      }
    });

    it(`early stop is consistent across step counts (residual ${residual})`, () => {
      // Step k's iterate, for k = 0 … 60: once a value repeats with a period p ≤ 4
      // (x_{k+p} = x_k), every later step must keep that pattern, whether the kernel computed
      // the step or inferred it when it stopped early.
      const values = targets().subarray(0, 400);
      const iterates = tf.tidy(() => Array.from({ length: 61 }, (_, k) => invertOnWasm(tf.tensor1d(values), 0.3, residual, k).dataSync()));
      const periods = new Set<number>();
      for (let i = 0; i < values.length; i++) {
        let first = -1;
        let period = 0;
        for (let k = 0; k + 4 < iterates.length && first < 0; k++) {
          period = [1, 2, 3, 4].find((p) => iterates[k + p]![i] === iterates[k]![i]) ?? 0;
          if (period > 0) first = k;
        }
        assert.ok(first >= 0, `value ${values[i]} never repeats within 60 steps`);
        assert.ok(first <= 40, `value ${values[i]} settled only at step ${first}`);
        periods.add(period);
        for (let k = first; k + period < iterates.length; k++) {
          assert.equal(iterates[k + period]![i], iterates[k]![i], `value ${values[i]}, step ${k}, period ${period}`);
        }
      }
      // Fixed points and longer cycles both occur, so both ways of stopping early were checked.
      assert.ok(periods.has(1));
      assert.ok([2, 3, 4].some((p) => periods.has(p)));
    });
  }

  it('inverse handles NaN and odd sizes', () => {
    const values = [Number.NaN, -2, 0.5, 3, 7];
    const input = tf.tensor2d(values, [1, 5]);
    const tensorsBefore = tf.memory().numTensors;
    const x = invertOnWasm(input, 0.3, false);
    assert.equal(tf.memory().numTensors, tensorsBefore + 1, 'the inverse leaves only its result');
    input.dispose();
    assert.deepEqual(x.shape, [1, 5]);
    const result = x.dataSync();
    assert.ok(Number.isNaN(result[0]));
    for (let i = 1; i < values.length; i++) {
      assert.ok(Math.abs(result[i] - invertSmoothLeakyReluScalar(values[i], 0.3, false)) < 1e-5, `target ${values[i]}`);
    }
    x.dispose();
  });
});

/** Float64 terms of the SLR stage at h: f, f′, f″/f′, ln f′, L = f‴/f′ − (f″/f′)² and ∂L/∂h. */
function stageReference(h: number, residual: boolean): { y: number; slope: number; ratio: number; logSlope: number; curvature: number; curvatureSlope: number } {
  const [y, f1, f2, f3] = slrDerivatives(h, 0.3, residual);
  const s = 1 / (1 + Math.exp(-h));
  const f4 = f2 * (1 - 6 * s + 6 * s * s);
  const ratio = f2 / f1;
  const curvature = f3 / f1 - ratio * ratio;
  return { y, slope: f1, ratio, logSlope: Math.log(f1), curvature, curvatureSlope: f4 / f1 - (f3 / f1) * ratio - 2 * ratio * curvature };
}

// Rows of 8 values (a multiple of 4, so the fused kernel runs on wasm), from −80 to 80.
const STAGE_INPUTS = [-80, -30, -12, -8.5, -2, -0.7, -1e-3, 0, 1e-4, 0.3, 1.9, 4, 6, 11, 25, 80];

forEachBackend((backend) => {
  for (const residual of [false, true]) {
    it(`SLR stage terms and their gradient match float64 (residual ${residual})`, () => {
      const h = tf.tensor2d(STAGE_INPUTS, [2, 8]);
      const weights = [1.5, -0.5, 2, 0.75, -1.25];
      const outputs = (x: tf.Tensor): tf.Tensor[] => {
        const stage = smoothLeakyReluStage(x, 0.3, residual, { derivatives: true, curvature: true });
        return [stage.y, stage.rowLogSlope, stage.slope!, stage.curvatureRatio!, stage.logSlopeCurvature!];
      };
      const [y, rowLogSlope, slope, ratio, curvature] = outputs(h).map((t) => {
        const values = t.dataSync();
        t.dispose();
        return values;
      });
      const reference = STAGE_INPUTS.map((value) => stageReference(value, residual));
      assert.equal(firstMismatch(y, reference.map((r) => r.y), backend.elementwise, 'y'), null);
      assert.equal(firstMismatch(slope, reference.map((r) => r.slope), backend.elementwise, 'f′'), null);
      assert.equal(firstMismatch(ratio, reference.map((r) => r.ratio), backend.elementwise, 'f″/f′'), null);
      assert.equal(firstMismatch(curvature, reference.map((r) => r.curvature), backend.elementwise, 'L'), null);
      const rowSums = [0, 1].map((row) => reference.slice(row * 8, row * 8 + 8).reduce((sum, r) => sum + r.logSlope, 0));
      assert.equal(firstMismatch(rowLogSlope, rowSums, backend.elementwise, 'Σ ln f′'), null);

      // ∂/∂h of w₀Σy + w₁Σ(Σ ln f′) + w₂Σf′ + w₃Σ(f″/f′) + w₄ΣL.
      const gradient = tf.grad((x: tf.Tensor) => tf.addN(outputs(x).map((t, i) => tf.mul(tf.sum(t), weights[i]))))(h);
      const expected = reference.map(
        (r) => weights[0] * r.slope + weights[1] * r.ratio + weights[2] * r.ratio * r.slope + weights[3] * r.curvature + weights[4] * r.curvatureSlope,
      );
      assert.equal(firstMismatch(gradient.dataSync(), expected, backend.elementwise, '∂/∂h'), null);
      tf.dispose([h, gradient]);
    });
  }

  // Rows of 12 values are three vectors: the fused kernel's pair loop, then its leftover vector.
  // 4,800 inputs from −90 to 90 reach every range-reduction step k of e^−|h| down to the clamp.
  it('SLR stage dense sweep matches float64', () => {
    const count = 4800;
    const inputs = Array.from({ length: count }, (_, i) => -90 + (180 * i) / (count - 1));
    const h = tf.tensor2d(inputs, [count / 12, 12]);
    const stage = smoothLeakyReluStage(h, 0.3, false, { derivatives: true, curvature: true });
    const reference = inputs.map((value) => stageReference(value, false));
    assert.equal(firstMismatch(stage.y.dataSync(), reference.map((r) => r.y), backend.elementwise, 'y'), null);
    assert.equal(firstMismatch(stage.slope!.dataSync(), reference.map((r) => r.slope), backend.elementwise, 'f′'), null);
    assert.equal(firstMismatch(stage.curvatureRatio!.dataSync(), reference.map((r) => r.ratio), backend.elementwise, 'f″/f′'), null);
    const rowSums = Array.from({ length: count / 12 }, (_, row) =>
      reference.slice(row * 12, row * 12 + 12).reduce((sum, r) => sum + r.logSlope, 0),
    );
    assert.equal(firstMismatch(stage.rowLogSlope.dataSync(), rowSums, backend.elementwise, 'Σ ln f′'), null);
    tf.dispose([h, stage.y, stage.rowLogSlope, stage.slope!, stage.curvatureRatio!, stage.logSlopeCurvature!]);
  });

  it('SLR stage without derivatives returns y and the row sums only', () => {
    const h = tf.tensor2d(STAGE_INPUTS, [4, 4]);
    const stage = smoothLeakyReluStage(h, 0.3, false, { derivatives: false, curvature: false });
    assert.equal(stage.slope, undefined);
    assert.equal(stage.curvatureRatio, undefined);
    assert.deepEqual(stage.rowLogSlope.shape, [4]);
    tf.dispose([h, stage.y, stage.rowLogSlope]);
    assert.throws(() => smoothLeakyReluStage(h, 0.3, false, { derivatives: false, curvature: true }), /terms.curvature needs terms.derivatives/);
  });

  if (backend.name.startsWith('wasm')) {
    it('fused and composed SLR stages agree on a batch', () => {
      const values = new RandomStream(5).normalArray(6 * 64).map((v) => 4 * v);
      const h = tf.tensor2d(values, [6, 64]);
      const run = (implementation: 'fused' | 'composed'): Float32Array[] =>
        tf.tidy(() => {
          const loss = (x: tf.Tensor): tf.Scalar => {
            const stage = smoothLeakyReluStage(x, 0.3, true, { derivatives: true, curvature: true }, implementation);
            const terms = [stage.y, stage.rowLogSlope, stage.slope!, stage.curvatureRatio!, stage.logSlopeCurvature!];
            return tf.addN(terms.map((t, i) => tf.sum(tf.mul(t, i + 1)))) as tf.Scalar;
          };
          const { value, grad } = tf.valueAndGrad(loss)(h);
          return [value.dataSync() as Float32Array, grad.dataSync() as Float32Array];
        });
      const fused = run('fused');
      const composed = run('composed');
      assert.equal(firstMismatch(fused[0], composed[0], backend.accumulated, 'loss'), null);
      assert.equal(firstMismatch(fused[1], composed[1], backend.elementwise, '∂loss/∂h'), null);
      h.dispose();
    });

    it('the fused SLR stage names what it needs', () => {
      const h = tf.ones([2, 3]);
      const integers = tf.ones([1, 4], 'int32');
      const terms = { derivatives: false, curvature: false };
      assert.throws(() => smoothLeakyReluStage(h, 0.3, false, terms, 'fused'), /needs rows of a multiple of 4 values \(received 3 per row\)/);
      assert.throws(() => smoothLeakyReluStage(integers, 0.3, false, terms, 'fused'), /needs float32 input \(received int32\)/);
      const rows = tf.fill([1, 4], -100);
      assert.throws(() => smoothLeakyReluStage(rows, 1e-10, false, terms, 'fused'), /needs alpha ≥ 0.000001 \(received 1e-10\)/);
      // 'auto' takes the composed path for such an α, whose Σ ln f′ = 4·ln(α + (1 − α)σ(−100)) stays right.
      const stage = smoothLeakyReluStage(rows, 1e-10, false, terms);
      assert.ok(Math.abs(stage.rowLogSlope.dataSync()[0]! - 4 * Math.log(1e-10)) < 1e-3);
      tf.dispose([h, integers, rows, stage.y, stage.rowLogSlope]);
    });

    it('fused SLR stage propagates NaN', () => {
      const h = tf.tensor2d([Number.NaN, 1, -1, 0], [1, 4]);
      const stage = smoothLeakyReluStage(h, 0.3, false, { derivatives: false, curvature: false }, 'fused');
      assert.ok(Number.isNaN(stage.rowLogSlope.dataSync()[0]));
      assert.ok(Number.isNaN(stage.y.dataSync()[0]));
      tf.dispose([h, stage.y, stage.rowLogSlope]);
    });

  }
});

// Outside forEachBackend's leak check: tfjs keeps the tensors saved for a gradient that throws.
describe('fused SLR stage on wasm', () => {
  before(async () => {
    await useBackend('wasm');
  });

  it('fused SLR stage rejects a second derivative', () => {
    const h = tf.tensor2d([0.5, -1, 2, 0.1], [1, 4]);
    const firstDerivative = (x: tf.Tensor): tf.Tensor =>
      tf.grad((u: tf.Tensor) => tf.sum(smoothLeakyReluStage(u, 0.3, false, { derivatives: false, curvature: false }, 'fused').y))(x);
    assert.throws(() => tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(firstDerivative(x)))(h)), /differentiable once; pass implementation 'composed'/);
    h.dispose();
  });
});
