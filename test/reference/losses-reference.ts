/**
 * Float64 references of the five objectives' losses and of the MaP preprocessing, in plain
 * TypeScript (no tfjs), for tests only. Rows are samples; random draws are passed in, so a test
 * can reproduce the objectives' draws from the same seeded stream.
 */
import {
  type FcReferenceModel,
  referenceDerivatives,
  referenceEnergy,
  referenceLogProb,
} from './fc-reference.js';

const SHIFT = 1e-6;

function mean(values: number[]): number {
  return values.reduce((total, value) => total + value, 0) / values.length;
}

/** L_ml = (1/B) Σ_b −log p(x_b). */
export function referenceMlLoss(model: FcReferenceModel, rows: Float64Array[]): number {
  return mean(rows.map((row) => -referenceLogProb(model, row)));
}

/** L_sml = (Σ_b E(x_b) − Σ_b E(x̂_b)) / (2B). */
export function referenceSmlLoss(model: FcReferenceModel, rows: Float64Array[], samples: Float64Array[]): number {
  const data = rows.reduce((total, row) => total + referenceEnergy(model, row), 0);
  const fake = samples.reduce((total, row) => total + referenceEnergy(model, row), 0);
  return (data - fake) / (2 * rows.length);
}

export interface EnergyWeightOptions {
  /** λ. */
  energyWeight: number;
  /** C. */
  channels: number;
}

/**
 * L_ssm = (1/(k²BD)) Σ_r [½‖∇E(x_r)‖² − v_rᵀ∇²E(x_r)v_r] + (λ/(kC)) mean_r E(x_r), with the rows
 * replicated slice-major (row r uses x_{r mod B}) and `directions` holding the kB directions.
 */
export function referenceSsmLoss(
  model: FcReferenceModel,
  rows: Float64Array[],
  directions: Float64Array[],
  slices: number,
  options: EnergyWeightOptions,
): number {
  const batch = rows.length;
  const n = model.dimension;
  let total = 0;
  const energies: number[] = [];
  for (let r = 0; r < slices * batch; r++) {
    const { energy, gradient, hessian } = referenceDerivatives(model, rows[r % batch]);
    const v = directions[r];
    let squared = 0;
    let quadratic = 0;
    for (let i = 0; i < n; i++) {
      squared += gradient[i] * gradient[i];
      for (let j = 0; j < n; j++) quadratic += v[i] * hessian[i * n + j] * v[j];
    }
    total += 0.5 * squared - quadratic;
    energies.push(energy);
  }
  const matching = total / (slices * slices * batch * n);
  return matching + (options.energyWeight / (slices * options.channels)) * mean(energies);
}

/** L_dsm = (1/(BD)) Σ_b ½‖n_b/σ − ∇E(x_b + σn_b)‖² + (λ/C) mean_b E(x_b + σn_b). */
export function referenceDsmLoss(
  model: FcReferenceModel,
  rows: Float64Array[],
  noise: Float64Array[],
  sigma: number,
  options: EnergyWeightOptions,
): number {
  const n = model.dimension;
  let total = 0;
  const energies: number[] = [];
  rows.forEach((row, b) => {
    const noisy = row.map((value, i) => value + sigma * noise[b][i]);
    const { energy, gradient } = referenceDerivatives(model, noisy);
    for (let i = 0; i < n; i++) {
      const residual = noise[b][i] / sigma - gradient[i];
      total += 0.5 * residual * residual;
    }
    energies.push(energy);
  });
  return total / (rows.length * n) + (options.energyWeight / options.channels) * mean(energies);
}

/** Returns v_b = ε g_b/‖g_b‖ per row. */
export function referenceFdssmDirections(gaussian: Float64Array[], epsilon: number): Float64Array[] {
  return gaussian.map((g) => {
    const norm = Math.sqrt(g.reduce((total, value) => total + value * value, 0));
    return g.map((value) => (epsilon * value) / norm);
  });
}

/** L_fdssm = (1/(Bε²)) Σ_b [(E₊−E₋)²/8 + 2E₀ − E₊ − E₋] + (λ/ε²) mean_b E₀. */
export function referenceFdssmLoss(
  model: FcReferenceModel,
  rows: Float64Array[],
  directions: Float64Array[],
  epsilon: number,
  energyWeight: number,
): number {
  let total = 0;
  const centres: number[] = [];
  rows.forEach((row, b) => {
    const centre = referenceEnergy(model, row);
    const plus = referenceEnergy(model, row.map((value, i) => value + directions[b][i]));
    const minus = referenceEnergy(model, row.map((value, i) => value - directions[b][i]));
    total += ((plus - minus) * (plus - minus)) / 8 + 2 * centre - plus - minus;
    centres.push(centre);
  });
  const epsilonSquared = epsilon * epsilon;
  return total / (rows.length * epsilonSquared) + (energyWeight / epsilonSquared) * mean(centres);
}

/** Returns the MaP chain's output x′ for one element: y₀ = pixel + u, then scale, shift, logit. */
export function referencePreprocessValue(pixel: number, uniform: number, logitScale: number): number {
  const shifted = ((pixel + uniform) / 256 + SHIFT) * (1 - 2 * SHIFT);
  return (Math.log(shifted) - Math.log1p(-shifted)) / logitScale;
}

/** Returns the chain's log-det for one sample: Σ_i ln |dx′_i/dy₀,i| in closed form. */
export function referencePreprocessLogDet(pixels: ArrayLike<number>, uniforms: ArrayLike<number>, logitScale: number): number {
  let total = 0;
  for (let i = 0; i < pixels.length; i++) {
    const shifted = ((pixels[i] + uniforms[i]) / 256 + SHIFT) * (1 - 2 * SHIFT);
    total += -Math.log(256) + Math.log1p(-2 * SHIFT) - Math.log(logitScale) - Math.log(shifted) - Math.log1p(-shifted);
  }
  return total;
}

/** Inverts the chain to the dequantised value y₀ for one element. */
export function referenceDequantizedInverse(value: number, logitScale: number): number {
  const shifted = 1 / (1 + Math.exp(-logitScale * value));
  return 256 * (shifted / (1 - 2 * SHIFT) - SHIFT);
}
