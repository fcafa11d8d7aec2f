/**
 * The 2-D coupling flow of EBFlow's toy experiments (sine, swirl, checkerboard):
 *
 *   for i = 0 … n_blocks−1:  Linear(2×2 + bias) → MaskedAffineCoupling(m_i) → ActNorm
 *   Linear(2×2 + bias)
 *
 * with m₀ = [0, 1] and the mask flipped after every block, n_blocks = 10, s_net/t_net MLPs of
 * width 64 with two hidden-to-hidden layers, and a standard normal base. Linear layers and
 * ActNorms are the constant-Jacobian set (log Z); the couplings are in the energy.
 *
 * Initialisation draws from one `RandomStream`, in layer order. Each Linear draws a random
 * orthogonal W and a bias uniform on ±1/√2. Each coupling draws s_net with (semi-)orthogonal
 * weights and biases uniform on ±1/√fan_in, and t_net starts as an exact copy of s_net (with
 * Swish, or with ELU when `shiftActivation` is 'elu'). The authors' 'ortho' setting requests
 * orthogonal MLP weights but does not reach them, so their MLP weights keep PyTorch's uniform
 * default; `networkInit: 'uniform'` reproduces that.
 *
 * Precision: float32 on every tfjs backend; the authors' toy code runs in float64.
 */
import type { FlowLayer } from '../layers/layer.js';
import type { RandomStream } from '../random/stream.js';
import { CouplingNetwork, type CouplingActivation, type CouplingWeightInit } from './coupling-network.js';
import { MaskedAffineCoupling, ToyActNorm, ToyLinearLayer } from './layers.js';
import { ToyFlow } from './toy-flow.js';

export interface CouplingFlow2dOptions {
  random: RandomStream;
  /** Number of Linear → coupling → ActNorm blocks; default 10. */
  blocks?: number;
  /** Width H of the coupling MLPs; default 64. */
  hidden?: number;
  /** Hidden-to-hidden layers of the coupling MLPs; default 2. */
  hiddenLayers?: number;
  /** Activation of t_net: 'swish' (default) or 'elu' (the copy of s_net with Swish replaced). */
  shiftActivation?: CouplingActivation;
  /** Weight normalisation of the Linear layers; default false. */
  weightNorm?: boolean;
  /** The coupling MLPs' weight initialisation; default 'orthogonal' ('uniform': the authors' code). */
  networkInit?: CouplingWeightInit;
}

/** Default sizes of the authors' 2-D model. */
export const COUPLING_FLOW_DEFAULTS = { blocks: 10, hidden: 64, hiddenLayers: 2 } as const;

/** Builds the 2-D coupling flow; the architecture name is 'coupling2d'. O(n_blocks·H²) parameters. */
export function createCouplingFlow2d(options: CouplingFlow2dOptions): ToyFlow {
  const blocks = options.blocks ?? COUPLING_FLOW_DEFAULTS.blocks;
  const hidden = options.hidden ?? COUPLING_FLOW_DEFAULTS.hidden;
  const hiddenLayers = options.hiddenLayers ?? COUPLING_FLOW_DEFAULTS.hiddenLayers;
  const shiftActivation = options.shiftActivation ?? 'swish';
  if (!Number.isInteger(blocks) || blocks < 0) {
    throw new RangeError(`createCouplingFlow2d: blocks must be a non-negative integer, received ${blocks}`);
  }
  const { random } = options;
  const weightNorm = options.weightNorm ?? false;

  const layers: FlowLayer[] = [];
  let mask = [0, 1];
  for (let block = 0; block < blocks; block++) {
    layers.push(new ToyLinearLayer({ name: `linear[${block}]`, random, weightNorm }));
    const networkOptions = { dimension: 2, hidden, hiddenLayers, weightInit: options.networkInit };
    const scaleNetwork = new CouplingNetwork({ ...networkOptions, activation: 'swish' }, random);
    const shiftNetwork = new CouplingNetwork({ ...networkOptions, activation: shiftActivation }, null, scaleNetwork.readValues());
    layers.push(new MaskedAffineCoupling({ name: `coupling[${block}]`, mask }, scaleNetwork, shiftNetwork));
    layers.push(new ToyActNorm({ name: `actnorm[${block}]`, dimension: 2 }));
    mask = mask.map((value) => 1 - value);
  }
  layers.push(new ToyLinearLayer({ name: `linear[${blocks}]`, random, weightNorm }));
  return new ToyFlow('coupling2d', 2, layers);
}
