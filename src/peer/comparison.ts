/**
 * The numbers of a side-by-side comparison: medians, the better peer figure and the ratio.
 */

/**
 * Returns the median of `values` (the mean of the two middle values for an even count).
 * Throws RangeError for an empty array or a non-finite value. Cost: O(n log n) for n values.
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median: received an empty array; pass at least one value');
  const bad = values.find((value) => !Number.isFinite(value));
  if (bad !== undefined) throw new RangeError(`median: every value must be finite, received ${bad}`);
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** One peer thread count's pooled median, or null when every run of it failed. */
export interface ThreadFigure {
  threads: number;
  medianMs: number | null;
}

/**
 * Returns the thread count with the lowest median: the peer's better figure, which the
 * comparison uses so that a thread count hurt by a busy neighbour does not make the peer look
 * slow. Ties go to the fewer threads. Returns null when no thread count has a median.
 */
export function betterPeerFigure(figures: readonly ThreadFigure[]): { threads: number; medianMs: number } | null {
  let best: { threads: number; medianMs: number } | null = null;
  for (const figure of figures) {
    if (figure.medianMs === null) continue;
    const better = best === null || figure.medianMs < best.medianMs ||
      (figure.medianMs === best.medianMs && figure.threads < best.threads);
    if (better) best = { threads: figure.threads, medianMs: figure.medianMs };
  }
  return best;
}

/**
 * Returns ours / peer: above 1 means our step is slower than the peer's by that factor. Returns
 * null when either figure is missing or the peer's figure is not positive.
 */
export function ratioOursOverPeer(oursMs: number | null, peerMs: number | null): number | null {
  if (oursMs === null || peerMs === null || !(peerMs > 0)) return null;
  return oursMs / peerMs;
}
