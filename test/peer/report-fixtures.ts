/** Comparison cells and reports built from given medians, for the peer report and scaling specs. */
import type { PeerComparisonReport } from '../../src/peer/bench.js';
import type { CellComparison } from '../../src/peer/sweep.js';

/**
 * Builds an FC cell (L = 2, batch 100) of the given image shape with our median and the peer's
 * medians on 1 and 2 threads (null for a failed series); the better peer figure is the lower one.
 */
export function comparisonCell(
  objective: 'ml' | 'ssm' | 'dsm',
  imageShape: [number, number, number],
  ours: number | null,
  peer1: number | null,
  peer2: number | null,
): CellComparison {
  const figures = [
    { threads: 1, medianMs: peer1 },
    { threads: 2, medianMs: peer2 },
  ].filter((figure): figure is { threads: number; medianMs: number } => figure.medianMs !== null);
  const better = figures.sort((a, b) => a.medianMs - b.medianMs)[0] ?? null;
  return {
    cellId: `fc/${objective}/${imageShape.join('x')}/L2/B100`,
    cell: { arch: 'fc', objective, imageShape, depth: 2, batch: 100 },
    ours: { series: 'ours', runs: [], medianMs: ours },
    peer: [
      { series: 'peer-1t', threads: 1, runs: [], medianMs: peer1 },
      { series: 'peer-2t', threads: 2, runs: [], medianMs: peer2 },
    ],
    betterPeer: better,
    ratio: ours !== null && better !== null ? ours / better.medianMs : null,
  };
}

/** Builds a report of `comparisons` with a PyTorch peer run on 1 and 2 threads. */
export function peerReport(comparisons: CellComparison[], overrides: Partial<PeerComparisonReport> = {}): PeerComparisonReport {
  return {
    schemaVersion: 1,
    startedAt: '2025-01-01T00:00:00.000Z',
    finishedAt: '2025-01-01T00:01:00.000Z',
    machine: { cpuModel: 'Test CPU', cpuCount: 2, platform: 'linux x64', hostname: 'test' },
    ours: { backend: 'wasm', nodeVersion: 'v20.0.0' },
    peer: { command: 'python3 pytorch_peer.py', engine: 'pytorch', version: '1.13.1', blas: null, machine: null, runtime: null, ompWaitPolicy: null },
    timing: { warmup: 3, iterations: 10, rounds: 3, seed: 0 },
    peerThreads: [1, 2],
    comparisons,
    notices: [],
    ...overrides,
  };
}
