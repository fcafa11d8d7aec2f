/**
 * Float64 central finite differences of plain JavaScript functions, the reference that tests
 * hold tfjs's float32 derivatives against.
 *
 * Every derivative uses a central stencil with step h followed by one Richardson extrapolation
 * (the stencil at h and h/2 combined), so the truncation error is O(h⁴). The default steps
 * balance that error against float64 rounding: for well-scaled functions the results carry
 * about 9 correct digits for first derivatives and 6 for third derivatives.
 */

/** A scalar function of a scalar. */
export type ScalarFunction = (t: number) => number;

/** A scalar function of a vector. */
export type VectorFunction = (x: Float64Array) => number;

/** Default steps per derivative order. */
export const DEFAULT_STEPS: Readonly<Record<1 | 2 | 3, number>> = { 1: 1e-3, 2: 1e-3, 3: 1e-2 };

/** Returns one central-difference estimate of order 1, 2 or 3 with step h (truncation error O(h²)). */
function centralStencil(f: ScalarFunction, t: number, order: 1 | 2 | 3, h: number): number {
  switch (order) {
    case 1:
      return (f(t + h) - f(t - h)) / (2 * h);
    case 2:
      return (f(t + h) - 2 * f(t) + f(t - h)) / (h * h);
    case 3:
      return (f(t + 2 * h) - 2 * f(t + h) + 2 * f(t - h) - f(t - 2 * h)) / (2 * h * h * h);
  }
}

/**
 * Returns the derivative of order 1, 2 or 3 of `f` at `t`, by central differences with one
 * Richardson extrapolation step (error O(h⁴)).
 */
export function derivative(f: ScalarFunction, t: number, order: 1 | 2 | 3, h = DEFAULT_STEPS[order]): number {
  const coarse = centralStencil(f, t, order, h);
  const fine = centralStencil(f, t, order, h / 2);
  // Both stencils have an h² leading error term, so (4·fine − coarse)/3 cancels it.
  return (4 * fine - coarse) / 3;
}

/** Returns x + t·v as a new array. */
function along(x: Float64Array, v: Float64Array, t: number): Float64Array {
  const point = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) point[i] = x[i] + t * v[i];
  return point;
}

/**
 * Returns the directional derivative of order 1, 2 or 3 of `f` at `x` along `v`, that is the
 * k-th derivative of t ↦ f(x + t·v) at t = 0 (for order 2, vᵀ∇²f(x)v).
 */
export function directionalDerivative(
  f: VectorFunction,
  x: Float64Array,
  v: Float64Array,
  order: 1 | 2 | 3,
  h = DEFAULT_STEPS[order],
): number {
  return derivative((t) => f(along(x, v, t)), 0, order, h);
}

/** Returns ∇f(x), one central difference per coordinate (2 evaluations of f each, doubled by Richardson). */
export function gradient(f: VectorFunction, x: Float64Array, h = DEFAULT_STEPS[1]): Float64Array {
  const result = new Float64Array(x.length);
  const unit = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    unit[i] = 1;
    result[i] = directionalDerivative(f, x, unit, 1, h);
    unit[i] = 0;
  }
  return result;
}

/**
 * Returns the Hessian-vector product ∇²f(x)·v, coordinate i being the mixed derivative
 * ∂²/∂s∂t f(x + s·eᵢ + t·v) at s = t = 0, from the four-point mixed stencil with Richardson
 * extrapolation.
 */
export function hessianVectorProduct(f: VectorFunction, x: Float64Array, v: Float64Array, h = DEFAULT_STEPS[2]): Float64Array {
  const result = new Float64Array(x.length);
  const unit = new Float64Array(x.length);
  const mixed = (i: number, step: number): number => {
    unit[i] = 1;
    const value = (s: number, t: number): number => {
      const point = along(x, v, t);
      point[i] += s;
      return f(point);
    };
    const estimate =
      (value(step, step) - value(step, -step) - value(-step, step) + value(-step, -step)) / (4 * step * step);
    unit[i] = 0;
    return estimate;
  };
  for (let i = 0; i < x.length; i++) {
    result[i] = (4 * mixed(i, h / 2) - mixed(i, h)) / 3;
  }
  return result;
}
