/**
 * The 10-D linear network of EBFlow's multimodal experiment (Chao et al., NeurIPS 2023, Figure A4; trained by ML):
 *
 *   full / lower / upper:  n_blocks × [MaskedLinear(M) → SLR(α = 0.3) → ActNorm] → MaskedLinear(M)
 *   lu:                    n_blocks × [MaskedLinear(U) → MaskedLinear(L) → SLR → ActNorm]
 *                          → MaskedLinear(U) → MaskedLinear(L)
 *
 * with n_blocks = 10, M all ones or a triangle including the diagonal, U upper-triangular with an
 * orthogonal initialisation and L lower-triangular initialised to ones (so det L = 1). The SLR is
 * αx + (1−α)·softplus(x) (the authors call it ELU_Layer). Masked linear layers and ActNorms are
 * the constant-Jacobian set; the SLRs are in the energy. Standard normal base, float32.
 */
import type { FlowLayer } from '../layers/layer.js';
import { SmoothLeakyReluLayer } from '../layers/smooth-leaky-relu.js';
import type { RandomStream } from '../random/stream.js';
import { MaskedLinearLayer, ToyActNorm, type LinearMaskType } from './layers.js';
import { ToyFlow } from './toy-flow.js';

/** The authors' mask types: full, tril, triu and the LU pair trilu, here full, lower, upper, lu. */
export const LINEAR_NET_MASKS = ['full', 'lower', 'upper', 'lu'] as const;
export type LinearNetMask = (typeof LINEAR_NET_MASKS)[number];

export interface LinearNetOptions {
  random: RandomStream;
  mask: LinearNetMask;
  /** D; default 10. */
  dimension?: number;
  /** Default 10. */
  blocks?: number;
  /** The SLR's α; default 0.3. */
  alpha?: number;
}

/** Builds the linear network; the architecture name is 'linear-<mask>'. O(n_blocks·D²) parameters. */
export function createLinearNet(options: LinearNetOptions): ToyFlow {
  const dimension = options.dimension ?? 10;
  const blocks = options.blocks ?? 10;
  const alpha = options.alpha ?? 0.3;
  const { mask, random } = options;
  if (!(LINEAR_NET_MASKS as readonly string[]).includes(mask)) {
    throw new RangeError(`createLinearNet: mask must be one of ${LINEAR_NET_MASKS.join(', ')}, received "${mask}"`);
  }
  if (!Number.isInteger(blocks) || blocks < 0) {
    throw new RangeError(`createLinearNet: blocks must be a non-negative integer, received ${blocks}`);
  }

  const linearStage = (index: number): FlowLayer[] => {
    if (mask === 'lu') {
      return [
        new MaskedLinearLayer({ name: `upper[${index}]`, dimension, maskType: 'upper', init: 'orthogonal', random }),
        new MaskedLinearLayer({ name: `lower[${index}]`, dimension, maskType: 'lower', init: 'ones' }),
      ];
    }
    return [new MaskedLinearLayer({ name: `linear[${index}]`, dimension, maskType: mask as LinearMaskType, init: 'orthogonal', random })];
  };

  const layers: FlowLayer[] = [];
  for (let block = 0; block < blocks; block++) {
    layers.push(...linearStage(block));
    layers.push(new SmoothLeakyReluLayer({ name: `slr[${block}]`, alpha, residual: false }));
    layers.push(new ToyActNorm({ name: `actnorm[${block}]`, dimension }));
  }
  layers.push(...linearStage(blocks));
  return new ToyFlow(`linear-${mask}`, dimension, layers);
}
