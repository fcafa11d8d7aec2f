/**
 * The growth of step time with the input size D on each side of a peer comparison. For every
 * family of cells that differ only in D, it fits the exponent b of ms ≈ a·D^b for our engine, for
 * the peer's better figure per cell and for each peer thread count.
 */
import { stringify } from 'csv-stringify/sync';

import { STATED_COST } from '../report/paper-results.js';
import { fitLine } from '../report/statistics.js';
import type { PeerComparisonReport } from './bench.js';
import type { CellComparison } from './sweep.js';

/** Distinct sizes a fit needs at least: from three on, the exponent gets a confidence interval. */
export const MIN_SCALING_POINTS = 3;

/** One fitted exponent: one side of the comparison over one family of cells. */
export interface PeerScalingFit {
  arch: string;
  objective: string;
  /** The first cell's channel count; FC families may mix channel counts. */
  channels: number;
  depth: number;
  batch: number;
  /** 'ours', '<engine> best' (the peer's lower median per cell, as the ratios use) or '<engine> 1t', '<engine> 2t', …. */
  side: string;
  /** The sizes D the fit used, ascending; cells whose median is missing on this side are left out. */
  dimensions: number[];
  /** Slope of ln(median ms) against ln(D), by ordinary least squares. */
  exponent: number;
  /** The 95% t-interval of the slope. */
  interval: [number, number];
  /** The exponent in D of the cost the EBFlow paper states for the objective: 3 for ML and SML, 2 for SSM, DSM and FDSSM. */
  statedExponent: number | null;
}

function dimensionOf(comparison: CellComparison): number {
  const [height, width, channels] = comparison.cell.imageShape;
  return height * width * channels;
}

/**
 * Returns the fitted exponents of every family with at least `MIN_SCALING_POINTS` distinct D on
 * a side, in the report's cell order, ours first within a family. A family shares architecture,
 * objective, depth, batch and, for the CNN, channel count. O(cells · (1 + peer thread counts)).
 */
export function peerScalingFits(report: PeerComparisonReport): PeerScalingFit[] {
  const families = new Map<string, CellComparison[]>();
  for (const comparison of report.comparisons) {
    const { arch, objective, imageShape, depth, batch } = comparison.cell;
    // An FC step's cost depends on D alone; a CNN's also on its channels.
    const key = [arch, objective, arch === 'fc' ? 'any' : imageShape[2], depth, batch].join('/');
    const members = families.get(key) ?? [];
    members.push(comparison);
    families.set(key, members);
  }

  const engine = report.peer?.engine ?? 'peer';
  const sides: Array<{ name: string; median: (comparison: CellComparison) => number | null }> = [
    { name: 'ours', median: (comparison) => comparison.ours.medianMs },
    { name: `${engine} best`, median: (comparison) => comparison.betterPeer?.medianMs ?? null },
    ...report.peerThreads.map((threads) => ({
      name: `${engine} ${threads}t`,
      median: (comparison: CellComparison) => comparison.peer.find((series) => series.threads === threads)?.medianMs ?? null,
    })),
  ];

  const fits: PeerScalingFit[] = [];
  for (const members of families.values()) {
    const { arch, objective, imageShape, depth, batch } = members[0]!.cell;
    for (const side of sides) {
      // ln(ms) per D; cells of equal D (other image shapes) enter as the mean of their logarithms.
      const logMilliseconds = new Map<number, number[]>();
      for (const comparison of members) {
        const milliseconds = side.median(comparison);
        if (milliseconds === null || !(milliseconds > 0)) continue;
        const dimension = dimensionOf(comparison);
        logMilliseconds.set(dimension, [...(logMilliseconds.get(dimension) ?? []), Math.log(milliseconds)]);
      }
      if (logMilliseconds.size < MIN_SCALING_POINTS) continue;
      const dimensions = [...logMilliseconds.keys()].sort((a, b) => a - b);
      const meanLog = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;
      const fit = fitLine(dimensions.map(Math.log), dimensions.map((d) => meanLog(logMilliseconds.get(d)!)));
      if (fit === null || fit.slopeHalfWidth === null) continue;
      fits.push({
        arch,
        objective,
        channels: imageShape[2],
        depth,
        batch,
        side: side.name,
        dimensions,
        exponent: fit.slope,
        interval: [fit.slope - fit.slopeHalfWidth, fit.slope + fit.slopeHalfWidth],
        statedExponent: STATED_COST[objective]?.dimensionExponent ?? null,
      });
    }
  }
  return fits;
}

/** Returns the fits as CSV text: a header and one row per fit. */
export function peerScalingCsv(fits: readonly PeerScalingFit[]): string {
  const header = ['arch', 'objective', 'channels', 'L', 'batch', 'side', 'D_values', 'exponent', 'exponent_ci_low', 'exponent_ci_high', 'stated_exponent'];
  const rows = fits.map((fit) => [
    fit.arch, fit.objective, fit.channels, fit.depth, fit.batch, fit.side, fit.dimensions.join(' '),
    fit.exponent.toFixed(3), fit.interval[0].toFixed(3), fit.interval[1].toFixed(3), fit.statedExponent ?? '',
  ]);
  return stringify([header, ...rows]);
}

/** Returns one line per fit for the terminal, such as "fc/ml/c1/L2/B100 D 256–4096 (5 sizes): ours 2.08 [1.61, 2.55], stated 3". */
export function formatPeerScaling(fits: readonly PeerScalingFit[]): string {
  return fits
    .map((fit) => {
      const range = `D ${fit.dimensions[0]}–${fit.dimensions[fit.dimensions.length - 1]} (${fit.dimensions.length} sizes)`;
      const stated = fit.statedExponent === null ? '' : `, stated ${fit.statedExponent}`;
      return `${fit.arch}/${fit.objective}/c${fit.channels}/L${fit.depth}/B${fit.batch} ${range}: ${fit.side} ` +
        `${fit.exponent.toFixed(2)} [${fit.interval[0].toFixed(2)}, ${fit.interval[1].toFixed(2)}]${stated}`;
    })
    .join('\n');
}
