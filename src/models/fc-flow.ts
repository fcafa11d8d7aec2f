/**
 * The FC-based EBFlow model: L square dense layers with a smooth leaky ReLU between consecutive
 * ones, and a standard normal base,
 *   x → dense₀ → SLR → dense₁ → SLR → … → dense_{L−1} → z ~ N(0, I_D).
 * The FC models of Chao et al. (NeurIPS 2023) for MNIST, CIFAR-10, CelebA and STL-10 use L = 2,
 * with a residual SLR everywhere but MNIST. The dense layers are the constant-Jacobian set, so
 *   E(x)     = ½‖z‖² + (D/2)·ln(2π) − Σ_{l<L−1} Σ_i ln f′(h_{l,i}),   h_l = output of dense_l,
 *   log Z(θ) = −Σ_l log|det W_l|.
 */
import * as tf from '@tensorflow/tfjs-core';

import { DenseLayer } from '../layers/dense.js';
import type { FlowLayer } from '../layers/layer.js';
import { DEFAULT_SLR_ALPHA, SmoothLeakyReluLayer, smoothLeakyReluStage } from '../layers/smooth-leaky-relu.js';
import type { RandomStream } from '../random/stream.js';
import { addBias, matMul, sumOfTransposedProducts } from '../tensor/matmul.js';
import { halfSquaredRowNorms } from '../tensor/row-norms.js';
import { combineShiftedGradient, expandShiftedRows } from '../tensor/shifted-rows.js';
import { wasmBlasKernelInstalled } from '../tensor/wasm-blas-kernel.js';
import type { EnergyDerivatives, EnergyFlow } from './energy-flow.js';
import {
  LOG_TWO_PI,
  collectVariables,
  energyThroughLayers,
  flattenSamples,
  inverseThroughLayers,
  logNormalizerOfLayers,
} from './flow-core.js';

export interface FcFlowOptions {
  /** D, the number of elements per sample. */
  dimension: number;
  /** L ≥ 1, the number of dense layers (2 in every published FC model). */
  depth: number;
  /** Adds x to each smooth leaky ReLU's output (off for MNIST, on for the other data sets). */
  residual: boolean;
  /** The smooth leaky ReLU's α; 0.3 in every shipped configuration. */
  alpha?: number;
  /**
   * The run's random stream. The FC initialisation (W = −I, b = 1) is deterministic, so no
   * value is drawn; the option exists so every architecture is created from the same options.
   */
  random?: RandomStream;
  /** The shape of one sample without the batch axis, for `inverse`; defaults to [D]. */
  sampleShape?: number[];
}

/** Builds an FC EBFlow model with the initialisation of the authors' PyTorch code. O(LD²) memory. */
export function createFcFlow(options: FcFlowOptions): FcFlow {
  return new FcFlow(options);
}

/** Per-SLR values the explicit derivative formulas keep from the forward pass. */
interface NonlinearityStage {
  slope: tf.Tensor2D;
  /** f″/f′. */
  curvatureRatio: tf.Tensor2D;
  /** f‴/f′ − (f″/f′)², the second derivative of ln f′; only with a direction. */
  logSlopeCurvature?: tf.Tensor2D;
  /** The forward tangent ḣ entering this SLR; only with a direction. */
  tangent?: tf.Tensor2D;
}

export class FcFlow implements EnergyFlow {
  readonly architecture = 'fc';
  readonly sampleShape: number[];
  readonly dimension: number;
  readonly depth: number;
  readonly alpha: number;
  readonly residual: boolean;
  readonly layers: readonly FlowLayer[];
  readonly denseLayers: readonly DenseLayer[];
  readonly variables: tf.Variable[];

  constructor(options: FcFlowOptions) {
    const { dimension, depth, residual } = options;
    const alpha = options.alpha ?? DEFAULT_SLR_ALPHA;
    if (!Number.isInteger(dimension) || dimension < 1) {
      throw new Error(`FcFlow: dimension must be a positive integer, received ${dimension}`);
    }
    if (!Number.isInteger(depth) || depth < 1) {
      throw new Error(`FcFlow: depth (the number of dense layers) must be an integer ≥ 1, received ${depth}`);
    }
    const sampleShape = options.sampleShape ?? [dimension];
    const sampleSize = sampleShape.reduce((product, size) => product * size, 1);
    if (sampleSize !== dimension) {
      throw new Error(
        `FcFlow: sampleShape [${sampleShape.join(', ')}] has ${sampleSize} elements but dimension is ${dimension}; ` +
          'pass a shape whose sizes multiply to the dimension',
      );
    }

    const layers: FlowLayer[] = [];
    const denseLayers: DenseLayer[] = [];
    for (let index = 0; index < depth; index++) {
      const dense = new DenseLayer({ dimension, name: `dense[${index}]` });
      denseLayers.push(dense);
      layers.push(dense);
      if (index < depth - 1) {
        layers.push(new SmoothLeakyReluLayer({ name: `slr[${index}]`, alpha, residual }));
      }
    }

    this.dimension = dimension;
    this.depth = depth;
    this.alpha = alpha;
    this.residual = residual;
    this.sampleShape = [...sampleShape];
    this.layers = layers;
    this.denseLayers = denseLayers;
    this.variables = collectVariables(layers);
  }

  /** Returns E(x) per sample, shape [B], nats, by the generic layer walk. O(BD²L). */
  energy(x: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => energyThroughLayers(this.layers, flattenSamples(x, this.dimension, 'FcFlow.energy')));
  }

  /**
   * Returns E(x) per sample, shape [B], nats, for a constant x: differentiable once in θ, not in
   * x. It uses the products of `energyDerivatives`, which skip the first layer's input gradient
   * and every D×D transpose in the backward pass. O(BD²L).
   */
  constantInputEnergy(x: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => {
      const rows = flattenSamples(x, this.dimension, 'FcFlow.constantInputEnergy');
      return this.energyFromFirstProduct(new WeightProducts(this.denseLayers[0].weight).timesTransposed(rows, true));
    });
  }

  /**
   * Returns E at the 3B rows [x; x + v; x − v], shape [3B], nats, for constant x and v of one
   * shape. It equals `constantInputEnergy` of the three stacked up to float32 rounding.
   * Because the first layer is linear, (x ± v)·W₀ᵀ = x·W₀ᵀ ± v·W₀ᵀ, so its product and its weight
   * gradient run on the 2B rows [x; v]. That saves 4BD² of the operations; O(BD²L) in all.
   */
  shiftedEnergies(x: tf.Tensor, shift: tf.Tensor): tf.Tensor1D {
    if (!tf.util.arraysEqual(shift.shape, x.shape)) {
      throw new Error(
        `FcFlow.shiftedEnergies: shift shape [${shift.shape.join(', ')}] differs from x shape ` +
          `[${x.shape.join(', ')}]; pass one shift per sample with the shape of x`,
      );
    }
    return tf.tidy(() => {
      const rows = flattenSamples(x, this.dimension, 'FcFlow.shiftedEnergies');
      const shiftRows = flattenSamples(shift, this.dimension, 'FcFlow.shiftedEnergies');
      return this.energyFromFirstProduct(new WeightProducts(this.denseLayers[0].weight).shiftedTimesTransposed(rows, shiftRows));
    });
  }

  /** Returns E per row from the first dense layer's product rows·W₀ᵀ (bias not yet added). Differentiable once in θ. */
  private energyFromFirstProduct(firstProduct: tf.Tensor2D): tf.Tensor1D {
    let h = addBias(firstProduct, this.denseLayers[0].bias);
    let logSlopeSum: tf.Tensor | null = null;
    for (let index = 1; index < this.depth; index++) {
      const { y, rowLogSlope } = smoothLeakyReluStage(h, this.alpha, this.residual, { derivatives: false, curvature: false });
      logSlopeSum = logSlopeSum === null ? rowLogSlope : tf.add(logSlopeSum, rowLogSlope);
      const products = new WeightProducts(this.denseLayers[index].weight);
      h = addBias(products.timesTransposed(y as tf.Tensor2D, false), this.denseLayers[index].bias);
    }
    const energy = tf.add(halfSquaredRowNorms(h as tf.Tensor2D), 0.5 * this.dimension * LOG_TWO_PI);
    return (logSlopeSum === null ? energy : tf.sub(energy, logSlopeSum)) as tf.Tensor1D;
  }

  /** Returns log Z = −Σ_l log|det W_l|, differentiable in θ. O(D³L). */
  logNormalizer(): tf.Scalar {
    return logNormalizerOfLayers(this.layers);
  }

  /** Returns log p(x) = −E(x) − log Z per sample, shape [B], nats. O(D³L + BD²L). */
  logProb(x: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => tf.sub(tf.neg(this.energy(x)), this.logNormalizer()) as tf.Tensor1D);
  }

  /**
   * Maps latents z [B, D] (or [B, …sampleShape]) to samples [B, …sampleShape]: a linear solve
   * per dense layer and 100 Newton steps per SLR. Never differentiated. O(D³L + BD²L).
   */
  inverse(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const flat = flattenSamples(z, this.dimension, 'FcFlow.inverse');
      const x = inverseThroughLayers(this.layers, flat);
      return tf.reshape(x, [z.shape[0], ...this.sampleShape]);
    });
  }

  /**
   * Returns E(x), ∇ₓE(x) and, when `direction` v is given, (∇²ₓE(x))v, by explicit layer-by-layer
   * formulas. The results are differentiable once in θ, so the θ-gradient of a score-matching loss
   * built on them needs one level of autodiff. x and v are treated as constants: autodiff does
   * not differentiate the results in x or v.
   *
   * With h_l = a_{l−1}·W_lᵀ + b_l (a_{−1} = x), a_l = f(h_l), z = h_{L−1}:
   * 1. Forward: h_l, f′(h_l), f″/f′ and ln f′; with v also the tangents ḣ₀ = v·W₀ᵀ,
   *    ḣ_{l+1} = (f′(h_l)⊙ḣ_l)·W_{l+1}ᵀ.
   * 2. Backward (g_l = ∂E/∂h_l): g_{L−1} = z; g_{l−1} = (g_l·W_l)⊙f′(h_{l−1}) − f″/f′;
   *    ∇ₓE = g₀·W₀.
   * 3. The HVP is the forward-mode derivative of step 2 along v: ġ_{L−1} = ḣ_{L−1};
   *    ġ_{l−1} = (ġ_l·W_l)⊙f′ + (g_l·W_l)⊙f″⊙ḣ_{l−1} − (f‴/f′ − (f″/f′)²)⊙ḣ_{l−1}; Hv = ġ₀·W₀.
   * With v, each value and its tangent are stacked into one [2B, D] product, so every weight
   * gradient is a single product too. Cost: 2L products of [B, D]×[D, D] without v, 2L of
   * [2B, D]×[D, D] with v, O(BD²L) either way, plus one D×D transpose per layer.
   */
  energyDerivatives(x: tf.Tensor, direction?: tf.Tensor): EnergyDerivatives {
    if (direction !== undefined && !tf.util.arraysEqual(direction.shape, x.shape)) {
      throw new Error(
        `FcFlow.energyDerivatives: direction shape [${direction.shape.join(', ')}] differs from x shape ` +
          `[${x.shape.join(', ')}]; pass one direction per sample with the shape of x`,
      );
    }
    const withDirection = direction !== undefined;
    const batch = x.shape[0];

    return tf.tidy(() => {
      const rows = flattenSamples(x, this.dimension, 'FcFlow.energyDerivatives');
      const products = this.denseLayers.map((layer) => new WeightProducts(layer.weight));
      // Rows [0, B) carry values, rows [B, 2B) their tangents along v.
      const stack = (value: tf.Tensor2D, tangent: tf.Tensor2D | null): tf.Tensor2D =>
        tangent === null ? value : (tf.concat([value, tangent], 0) as tf.Tensor2D);
      const unstack = (both: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D | null] =>
        withDirection ? (tf.split(both, [batch, batch], 0) as [tf.Tensor2D, tf.Tensor2D]) : [both, null];

      // 1. Forward pass with the SLR terms and, with a direction, the forward tangents.
      const directionRows = withDirection ? flattenSamples(direction, this.dimension) : null;
      let [preActivation, tangent] = unstack(products[0].timesTransposed(stack(rows, directionRows), true));
      let h = addBias(preActivation, this.denseLayers[0].bias) as tf.Tensor2D;
      let logSlopeSum: tf.Tensor | null = null;
      const stages: NonlinearityStage[] = [];
      for (let index = 1; index < this.depth; index++) {
        const terms = smoothLeakyReluStage(h, this.alpha, this.residual, { derivatives: true, curvature: withDirection });
        const slope = terms.slope as tf.Tensor2D;
        const curvatureRatio = terms.curvatureRatio as tf.Tensor2D;
        logSlopeSum = logSlopeSum === null ? terms.rowLogSlope : tf.add(logSlopeSum, terms.rowLogSlope);

        const stage: NonlinearityStage = { slope, curvatureRatio };
        let outputTangent: tf.Tensor2D | null = null;
        if (tangent !== null && terms.logSlopeCurvature !== undefined) {
          stage.logSlopeCurvature = terms.logSlopeCurvature as tf.Tensor2D;
          stage.tangent = tangent;
          outputTangent = tf.mul(slope, tangent) as tf.Tensor2D;
        }
        stages.push(stage);
        [preActivation, tangent] = unstack(products[index].timesTransposed(stack(terms.y as tf.Tensor2D, outputTangent), false));
        h = addBias(preActivation, this.denseLayers[index].bias) as tf.Tensor2D;
      }

      const z = h;
      const halfSquaredNorm = halfSquaredRowNorms(z);
      let energy = tf.add(halfSquaredNorm, 0.5 * this.dimension * LOG_TWO_PI);
      if (logSlopeSum !== null) energy = tf.sub(energy, logSlopeSum);

      // 2. and 3. Backward pass and its tangent.
      let gradient: tf.Tensor2D = z;
      let gradientTangent: tf.Tensor2D | null = tangent;
      for (let index = this.depth - 1; index >= 1; index--) {
        const stage = stages[index - 1];
        const [pulled, pulledTangent] = unstack(products[index].times(stack(gradient, gradientTangent)));
        if (pulledTangent !== null && stage.tangent !== undefined && stage.logSlopeCurvature !== undefined) {
          // f″ = (f″/f′)·f′, so (g·W)⊙f″⊙ḣ = (g·W)⊙f′⊙(f″/f′)⊙ḣ.
          const curvatureTerm = tf.sub(tf.mul(pulled, tf.mul(stage.slope, stage.curvatureRatio)), stage.logSlopeCurvature);
          gradientTangent = tf.add(tf.mul(pulledTangent, stage.slope), tf.mul(curvatureTerm, stage.tangent)) as tf.Tensor2D;
        }
        gradient = tf.sub(tf.mul(pulled, stage.slope), stage.curvatureRatio) as tf.Tensor2D;
      }
      const [inputGradient, hessianVector] = unstack(products[0].times(stack(gradient, gradientTangent)));
      const result = { energy: energy as tf.Tensor1D, gradient: tf.reshape(inputGradient, x.shape) };
      return hessianVector === null ? result : { ...result, hessianVector: tf.reshape(hessianVector, x.shape) };
    });
  }
}

/**
 * Products of a batch of rows with one dense weight W or its transpose, for the explicit
 * derivatives. With OpenBLAS the products pass transpose flags, which cost nothing there.
 * Otherwise Wᵀ is transposed once per instance and `matMul` transposes only the [rows, D]
 * operands, so no D×D transpose runs in the backward pass. Constant rows get no gradient, which
 * saves one product per call.
 *
 * `energyDerivatives` uses W twice, forward (R_f·Wᵀ) and in the backward pass (R_b·W), and
 * autodiff would add two weight gradients, dy_fᵀ·R_f + R_bᵀ·dy_b, each a D×D product over
 * n rows. Here the backward product's gradient hands R_b and dy_b to the forward product's
 * gradient. That one runs later, because the backward product's rows depend on the forward
 * product, and it adds the second product into the first with OpenBLAS (β = 1), or computes the
 * sum as the single product [dy_f; R_b]ᵀ·[R_f; dy_b] over 2n rows. This saves the D×D addition:
 * 0.3–0.4 ms per weight at D = 784 (FC DSM step).
 *
 * R_b is a saved operand and dy_b a gradient of the same backward pass. tfjs-core 4.22 disposes
 * both only when that pass ends, so the hand-off needs no copies.
 *
 * NOTE: differentiable once. The gradients read the saved operands as constants, so a second
 * derivative of these products would come out wrong; the explicit derivatives need only one.
 */
class WeightProducts {
  private readonly flagsAreFree: boolean;
  /** Wᵀ, computed only when transposes are not free. */
  private readonly transposedWeight: tf.Tensor2D | null;
  /** R_b and dy_b from the backward product's gradient, for the forward product's gradient. */
  private pendingBackward: { rows: tf.Tensor2D; dy: tf.Tensor2D } | null = null;

  constructor(private readonly weight: tf.Variable<tf.Rank.R2>) {
    this.flagsAreFree = wasmBlasKernelInstalled() && tf.getBackend() === 'wasm';
    this.transposedWeight = this.flagsAreFree ? null : tf.transpose(weight);
  }

  /** Returns rows·Wᵀ, shape [n, D]. 2nD² operations, the same again for each gradient. */
  timesTransposed(rows: tf.Tensor2D, constantRows: boolean): tf.Tensor2D {
    const transposed = this.transposedWeight;
    const forward = (input: tf.Tensor2D, weight: tf.Tensor2D): tf.Tensor2D =>
      transposed === null ? matMul(input, weight, false, true) : tf.matMul(input, transposed);
    if (constantRows) {
      // y = R·Wᵀ, so ∂L/∂W = dyᵀ·R.
      const product = tf.customGrad(((weight: tf.Tensor2D, save: tf.GradSaveFunc) => {
        save([rows]);
        return {
          value: forward(rows, weight),
          gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => this.weightGradient(dy, saved[0] as tf.Tensor2D),
        };
      }) as unknown as Parameters<typeof tf.customGrad>[0]) as (weight: tf.Tensor2D) => tf.Tensor2D;
      return product(this.weight);
    }
    // y = R·Wᵀ, so ∂L/∂R = dy·W and ∂L/∂W = dyᵀ·R.
    const product = tf.customGrad(((input: tf.Tensor2D, weight: tf.Tensor2D, save: tf.GradSaveFunc) => {
      save([input, weight]);
      return {
        value: forward(input, weight),
        gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
          const [savedInput, savedWeight] = saved as [tf.Tensor2D, tf.Tensor2D];
          return [matMul(dy, savedWeight), this.weightGradient(dy, savedInput)];
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]) as (input: tf.Tensor2D, weight: tf.Tensor2D) => tf.Tensor2D;
    return product(rows, this.weight);
  }

  /**
   * Returns ∂L/∂W of the forward product, dyᵀ·R, plus R_bᵀ·dy_b when the backward product's
   * gradient left them, in one output. 2nD² operations, or 2(n + n_b)D².
   */
  private weightGradient(dy: tf.Tensor2D, rows: tf.Tensor2D): tf.Tensor2D {
    const pending = this.pendingBackward;
    if (pending === null) return matMul(dy, rows, true, false);
    this.pendingBackward = null;
    return sumOfTransposedProducts([
      { a: dy, b: rows },
      { a: pending.rows, b: pending.dy },
    ]);
  }

  /**
   * Returns [R; R + S; R − S]·Wᵀ, shape [3n, D], for constant rows R and S [n, D], from the single
   * product [R; S]·Wᵀ (4nD² operations instead of 6nD²). The weight gradient is one product of
   * the same size: dyᵀ·[R; R + S; R − S] = [dy₀ + dy₊ + dy₋; dy₊ − dy₋]ᵀ·[R; S].
   */
  shiftedTimesTransposed(rows: tf.Tensor2D, shift: tf.Tensor2D): tf.Tensor2D {
    const stacked = tf.concat([rows, shift], 0) as tf.Tensor2D;
    const transposed = this.transposedWeight;
    const product = tf.customGrad(((weight: tf.Tensor2D, save: tf.GradSaveFunc) => {
      save([stacked]);
      const both = transposed === null ? matMul(stacked, weight, false, true) : tf.matMul(stacked, transposed);
      return {
        value: expandShiftedRows(both as tf.Tensor2D),
        gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => matMul(combineShiftedGradient(dy), saved[0] as tf.Tensor2D, true, false),
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]) as (weight: tf.Tensor2D) => tf.Tensor2D;
    return product(this.weight);
  }

  /**
   * Returns rows·W, shape [n, D]. 2nD² operations, and the same for its input gradient. Its weight
   * gradient Rᵀ·dy is left to the forward product's gradient (see the class comment).
   */
  times(rows: tf.Tensor2D): tf.Tensor2D {
    // y = R·W, so ∂L/∂R = dy·Wᵀ and ∂L/∂W = Rᵀ·dy. W is not an input of this op: its gradient
    // leaves through `timesTransposed`, whose own input W is.
    const transposed = this.transposedWeight;
    const weight = transposed ?? this.weight;
    const product = tf.customGrad(((input: tf.Tensor2D, save: tf.GradSaveFunc) => {
      save([input, weight]);
      return {
        value: matMul(input, this.weight),
        gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
          const [savedInput, savedWeightOrTransposed] = saved as [tf.Tensor2D, tf.Tensor2D];
          this.pendingBackward = { rows: savedInput, dy };
          return transposed === null ? matMul(dy, savedWeightOrTransposed, false, true) : tf.matMul(dy, savedWeightOrTransposed);
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]) as (input: tf.Tensor2D) => tf.Tensor2D;
    return product(rows);
  }
}
