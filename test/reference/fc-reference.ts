/**
 * A float64 reference of the FC EBFlow model in plain TypeScript (no tfjs), for tests only.
 *
 * It computes the energy, its gradient and its full Hessian per sample by carrying the Jacobian
 * J = ∂u/∂x (D×D) and the second-derivative tensor T = ∂²u/∂x² (D×D×D) of every intermediate
 * vector u through the layers. That is a different algorithm from the model's backprop and
 * forward-over-reverse formulas, so agreement is evidence for both. O(D⁴) per sample: small D only.
 */

/** The parameters of an FC flow: y = W a + b per dense layer, SLRs between consecutive ones. */
export interface FcReferenceModel {
  dimension: number;
  /** W_l row-major, W_l[i·D + j] = W_l[i, j]. */
  weights: Float64Array[];
  biases: Float64Array[];
  alpha: number;
  residual: boolean;
}

export const LOG_TWO_PI = Math.log(2 * Math.PI);

function logistic(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** f, f′, f″, f‴ of the smooth leaky ReLU at h. */
export function slrDerivatives(h: number, alpha: number, residual: boolean): [number, number, number, number] {
  const extra = residual ? 1 : 0;
  const s = logistic(h);
  const value = alpha * h + (1 - alpha) * softplus(h) + extra * h;
  const first = alpha + (1 - alpha) * s + extra;
  const second = (1 - alpha) * s * (1 - s);
  const third = second * (1 - 2 * s);
  return [value, first, second, third];
}

function matrixVector(matrix: Float64Array, vector: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let total = 0;
    for (let j = 0; j < n; j++) total += matrix[i * n + j] * vector[j];
    out[i] = total;
  }
  return out;
}

/** Returns E(x) = ½‖z‖² + (D/2)ln 2π − Σ_l Σ_i ln f′(h_{l,i}) for one sample. O(D²L). */
export function referenceEnergy(model: FcReferenceModel, x: ArrayLike<number>): number {
  const n = model.dimension;
  const depth = model.weights.length;
  let u: Float64Array = Float64Array.from(x);
  let logSlopes = 0;
  for (let l = 0; l < depth; l++) {
    const h = matrixVector(model.weights[l], u, n);
    for (let i = 0; i < n; i++) h[i] += model.biases[l][i];
    if (l < depth - 1) {
      for (let i = 0; i < n; i++) {
        const [value, slope] = slrDerivatives(h[i], model.alpha, model.residual);
        h[i] = value;
        logSlopes += Math.log(slope);
      }
    }
    u = h;
  }
  let squared = 0;
  for (let i = 0; i < n; i++) squared += u[i] * u[i];
  return 0.5 * squared + 0.5 * n * LOG_TWO_PI - logSlopes;
}

export interface ReferenceDerivatives {
  energy: number;
  /** ∇ₓE, length D. */
  gradient: Float64Array;
  /** ∇²ₓE, row-major D×D. */
  hessian: Float64Array;
}

/** Returns E, ∇ₓE and ∇²ₓE for one sample by propagating full Jacobians and Hessians. O(D⁴L). */
export function referenceDerivatives(model: FcReferenceModel, x: ArrayLike<number>): ReferenceDerivatives {
  const n = model.dimension;
  const depth = model.weights.length;
  let u: Float64Array = Float64Array.from(x);
  // J[i·n + j] = ∂u_i/∂x_j; T[(i·n + j)·n + k] = ∂²u_i/∂x_j∂x_k.
  let jac = new Float64Array(n * n);
  for (let i = 0; i < n; i++) jac[i * n + i] = 1;
  let second = new Float64Array(n * n * n);
  const gradient = new Float64Array(n);
  const hessian = new Float64Array(n * n);
  let energy = 0.5 * n * LOG_TWO_PI;

  for (let l = 0; l < depth; l++) {
    const w = model.weights[l];
    // Dense: u ← W u + b, J ← W J, T_i ← Σ_m W_im T_m.
    const h = matrixVector(w, u, n);
    for (let i = 0; i < n; i++) h[i] += model.biases[l][i];
    const newJac = new Float64Array(n * n);
    const newSecond = new Float64Array(n * n * n);
    for (let i = 0; i < n; i++) {
      for (let m = 0; m < n; m++) {
        const weight = w[i * n + m];
        if (weight === 0) continue;
        for (let j = 0; j < n; j++) newJac[i * n + j] += weight * jac[m * n + j];
        for (let jk = 0; jk < n * n; jk++) newSecond[i * n * n + jk] += weight * second[m * n * n + jk];
      }
    }
    u = h;
    jac = newJac;
    second = newSecond;
    if (l === depth - 1) break;

    // SLR: the energy gains −Σ ln f′(h_i); then u ← f(h), J_i ← f′ J_i, T_i ← f″ J_iᵀJ_i + f′ T_i.
    for (let i = 0; i < n; i++) {
      const [value, first, curvature, third] = slrDerivatives(h[i], model.alpha, model.residual);
      const ratio = curvature / first;
      const ratioDerivative = third / first - ratio * ratio;
      energy -= Math.log(first);
      for (let j = 0; j < n; j++) {
        const jij = jac[i * n + j];
        gradient[j] -= ratio * jij;
        for (let k = 0; k < n; k++) {
          const tijk = second[(i * n + j) * n + k];
          hessian[j * n + k] -= ratioDerivative * jij * jac[i * n + k] + ratio * tijk;
        }
      }
      for (let j = 0; j < n; j++) {
        for (let k = 0; k < n; k++) {
          const index = (i * n + j) * n + k;
          second[index] = curvature * jac[i * n + j] * jac[i * n + k] + first * second[index];
        }
      }
      for (let j = 0; j < n; j++) jac[i * n + j] *= first;
      u[i] = value;
    }
  }

  // Base: ½‖z‖² gives gradient Σ_i z_i J_i and Hessian Σ_i (J_iᵀJ_i + z_i T_i).
  for (let i = 0; i < n; i++) {
    energy += 0.5 * u[i] * u[i];
    for (let j = 0; j < n; j++) {
      gradient[j] += u[i] * jac[i * n + j];
      for (let k = 0; k < n; k++) {
        hessian[j * n + k] += jac[i * n + j] * jac[i * n + k] + u[i] * second[(i * n + j) * n + k];
      }
    }
  }
  return { energy, gradient, hessian };
}

/** Returns (∇²ₓE)v for one sample. */
export function referenceHessianVector(model: FcReferenceModel, x: ArrayLike<number>, v: ArrayLike<number>): Float64Array {
  return matrixVector(referenceDerivatives(model, x).hessian, v, model.dimension);
}

/** Returns log|det A| of a row-major n×n matrix by LU with partial pivoting, float64. O(n³). */
export function referenceLogAbsDet(matrix: ArrayLike<number>, n: number): number {
  const a = Float64Array.from(matrix);
  let total = 0;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let row = col + 1; row < n; row++) {
      if (Math.abs(a[row * n + col]) > Math.abs(a[pivot * n + col])) pivot = row;
    }
    if (a[pivot * n + col] === 0) return -Infinity;
    if (pivot !== col) {
      for (let k = 0; k < n; k++) {
        const swap = a[col * n + k];
        a[col * n + k] = a[pivot * n + k];
        a[pivot * n + k] = swap;
      }
    }
    const diagonal = a[col * n + col];
    total += Math.log(Math.abs(diagonal));
    for (let row = col + 1; row < n; row++) {
      const factor = a[row * n + col] / diagonal;
      for (let k = col; k < n; k++) a[row * n + k] -= factor * a[col * n + k];
    }
  }
  return total;
}

/** Solves A x = b for a row-major n×n matrix by Gaussian elimination with partial pivoting. O(n³). */
export function referenceSolve(matrix: ArrayLike<number>, rhs: ArrayLike<number>, n: number): Float64Array {
  const a = Float64Array.from(matrix);
  const b = Float64Array.from(rhs);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let row = col + 1; row < n; row++) {
      if (Math.abs(a[row * n + col]) > Math.abs(a[pivot * n + col])) pivot = row;
    }
    if (pivot !== col) {
      for (let k = 0; k < n; k++) {
        const swap = a[col * n + k];
        a[col * n + k] = a[pivot * n + k];
        a[pivot * n + k] = swap;
      }
      const swap = b[col];
      b[col] = b[pivot];
      b[pivot] = swap;
    }
    for (let row = col + 1; row < n; row++) {
      const factor = a[row * n + col] / a[col * n + col];
      for (let k = col; k < n; k++) a[row * n + k] -= factor * a[col * n + k];
      b[row] -= factor * b[col];
    }
  }
  const x = new Float64Array(n);
  for (let row = n - 1; row >= 0; row--) {
    let total = b[row];
    for (let k = row + 1; k < n; k++) total -= a[row * n + k] * x[k];
    x[row] = total / a[row * n + row];
  }
  return x;
}

/** Returns log Z = −Σ_l log|det W_l|. */
export function referenceLogNormalizer(model: FcReferenceModel): number {
  return -model.weights.reduce((total, w) => total + referenceLogAbsDet(w, model.dimension), 0);
}

/** Returns log p(x) = −E(x) − log Z for one sample. */
export function referenceLogProb(model: FcReferenceModel, x: ArrayLike<number>): number {
  return -referenceEnergy(model, x) - referenceLogNormalizer(model);
}

/** Inverts the smooth leaky ReLU with the reference's 100 Newton steps (floor 0.01, start at y). */
export function referenceInvertSlr(y: number, alpha: number, residual: boolean): number {
  let x = y;
  for (let step = 0; step < 100; step++) {
    const [value, slope] = slrDerivatives(x, alpha, residual);
    x -= (value - y) / Math.max(slope, 0.01);
  }
  return x;
}

/** Maps a latent z to x = g⁻¹(z) for one sample. */
export function referenceInverse(model: FcReferenceModel, z: ArrayLike<number>): Float64Array {
  const n = model.dimension;
  const depth = model.weights.length;
  let current: Float64Array = Float64Array.from(z);
  for (let l = depth - 1; l >= 0; l--) {
    if (l < depth - 1) {
      current = current.map((value) => referenceInvertSlr(value, model.alpha, model.residual));
    }
    const centred = current.map((value, i) => value - model.biases[l][i]);
    current = referenceSolve(model.weights[l], centred, n);
  }
  return current;
}

/** Returns the parameters flattened in the model's variable order: W₀, b₀, W₁, b₁, … */
export function flattenParameters(model: FcReferenceModel): Float64Array {
  const parts: number[] = [];
  for (let l = 0; l < model.weights.length; l++) {
    parts.push(...model.weights[l], ...model.biases[l]);
  }
  return Float64Array.from(parts);
}

/** Returns a copy of the model with parameters taken from a flat vector in `flattenParameters` order. */
export function withParameters(model: FcReferenceModel, flat: ArrayLike<number>): FcReferenceModel {
  const n = model.dimension;
  const weights: Float64Array[] = [];
  const biases: Float64Array[] = [];
  let offset = 0;
  for (let l = 0; l < model.weights.length; l++) {
    weights.push(Float64Array.from({ length: n * n }, (_, i) => flat[offset + i]));
    offset += n * n;
    biases.push(Float64Array.from({ length: n }, (_, i) => flat[offset + i]));
    offset += n;
  }
  return { ...model, weights, biases };
}
