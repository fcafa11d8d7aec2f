/**
 * Input derivatives of a model's energy for the score-matching objectives, and small helpers the
 * objectives share. The derivatives come from the model's explicit formulas (`energyDerivatives`,
 * which leaves one level of autodiff for θ) or from nested `tf.grad` over `energy` (generic, with
 * two or three levels of autodiff for θ).
 */
import * as tf from '@tensorflow/tfjs-core';

import type { EnergyDerivatives, EnergyFlow } from '../models/energy-flow.js';

/**
 * Returns E(x) [B], ∇ₓE(x) and, with a direction v, (∇²ₓE(x))v. Uses the model's explicit
 * formulas when `explicit` is true and the model has them, nested `tf.grad` otherwise. Either
 * result stays differentiable in the model's variables when called inside a gradient tape.
 */
export function energyDerivativesOf(
  model: EnergyFlow,
  x: tf.Tensor,
  direction: tf.Tensor | undefined,
  explicit: boolean,
): EnergyDerivatives {
  if (explicit && model.energyDerivatives !== undefined) {
    return model.energyDerivatives(x, direction);
  }
  return nestedEnergyDerivatives(model, x, direction);
}

/**
 * Returns E(x) per sample for an x that no derivative is taken of: the model's
 * `constantInputEnergy` when `explicit` is true and the model has it, `energy` otherwise. Either
 * result is differentiable in θ.
 */
export function constantInputEnergyOf(model: EnergyFlow, x: tf.Tensor, explicit: boolean): tf.Tensor1D {
  if (explicit && model.constantInputEnergy !== undefined) {
    return model.constantInputEnergy(x);
  }
  return model.energy(x);
}

/**
 * Returns E at the 3B rows [x; x + v; x − v], shape [3B], for constant x and v. It uses the
 * model's `shiftedEnergies` when `explicit` is true and the model has it, and otherwise
 * `constantInputEnergyOf` the three stacked. Differentiable in θ.
 */
export function shiftedEnergiesOf(model: EnergyFlow, x: tf.Tensor, shift: tf.Tensor, explicit: boolean): tf.Tensor1D {
  if (explicit && model.shiftedEnergies !== undefined) {
    return model.shiftedEnergies(x, shift);
  }
  return tf.tidy(() => constantInputEnergyOf(model, tf.concat([x, tf.add(x, shift), tf.sub(x, shift)], 0), explicit));
}

/**
 * Returns E(x), ∇ₓE(x) = tf.grad(Σ E)(x) and, with a direction v, (∇²ₓE)v = ∇ₓ⟨v, ∇ₓE(x)⟩ by
 * differentiating `model.energy` with nested `tf.grad`. The energy and the score are taken from
 * inside the gradient calls, so the forward and the first backward pass run once. The energy
 * must be built from ops whose gradients are correct to the order used (third order for SSM's
 * θ-gradient). Cost: one forward and one backward pass, two more passes with a direction.
 */
export function nestedEnergyDerivatives(model: EnergyFlow, x: tf.Tensor, direction?: tf.Tensor): EnergyDerivatives {
  // Tensors made inside tf.grad's function are disposed when it returns unless kept. The kept
  // ones are handed back as clones, which stay connected to any outer tape, and then disposed.
  let keptEnergy: tf.Tensor1D | null = null;
  const energySum = (input: tf.Tensor): tf.Scalar => {
    const energy = model.energy(input);
    keptEnergy = tf.keep(energy);
    return tf.sum(energy);
  };

  if (direction === undefined) {
    const gradient = tf.grad(energySum)(x);
    return { energy: releaseKept(keptEnergy, 'energy') as tf.Tensor1D, gradient };
  }

  let keptGradient: tf.Tensor | null = null;
  const directionalDerivative = (input: tf.Tensor): tf.Scalar => {
    const gradient = tf.grad(energySum)(input);
    keptGradient = tf.keep(gradient);
    return tf.sum(tf.mul(gradient, direction));
  };
  const hessianVector = tf.grad(directionalDerivative)(x);
  return {
    energy: releaseKept(keptEnergy, 'energy') as tf.Tensor1D,
    gradient: releaseKept(keptGradient, 'gradient'),
    hessianVector,
  };
}

/** Returns a clone of a kept tensor (recorded on any active tape) and disposes the original. */
function releaseKept(kept: tf.Tensor | null, what: string): tf.Tensor {
  if (kept === null) {
    throw new Error(`nestedEnergyDerivatives: the ${what} was not computed; model.energy was never called`);
  }
  const owned = tf.clone(kept);
  kept.dispose();
  return owned;
}

/**
 * Returns `prepared[key]`, or raises an error naming the objective when `prepare` did not
 * provide it.
 */
export function requirePrepared(prepared: Record<string, tf.Tensor>, key: string, objective: string): tf.Tensor {
  const tensor = prepared[key];
  if (tensor === undefined) {
    throw new Error(
      `${objective} objective: the prepared batch has no "${key}" (keys: ${Object.keys(prepared).join(', ') || 'none'}); ` +
        `pass the result of the ${objective} objective's prepare() to loss()`,
    );
  }
  return tensor;
}

/** Raises an error naming the objective and option unless `value` is finite and positive. */
export function requirePositive(value: number, option: string, objective: string): void {
  if (!(Number.isFinite(value) && value > 0)) {
    throw new Error(`${objective} objective: options.${option} must be a finite positive number, received ${value}`);
  }
}

/** Returns D, the number of elements per sample of a batch [B, …]. */
export function elementsPerSample(x: tf.Tensor): number {
  return x.shape.slice(1).reduce((product, size) => product * size, 1);
}
