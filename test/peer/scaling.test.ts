import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import type { PeerComparisonReport } from '../../src/peer/bench.js';
import { writePeerReport } from '../../src/peer/report.js';
import { formatPeerScaling, peerScalingCsv, peerScalingFits } from '../../src/peer/scaling.js';
import type { CellComparison } from '../../src/peer/sweep.js';
import { comparisonCell, peerReport } from './report-fixtures.js';

/** Builds a cell of side×side×channels with the given medians. */
function cell(objective: 'ml' | 'dsm', side: number, channels: number, ours: number | null, peer1: number | null, peer2: number | null): CellComparison {
  return comparisonCell(objective, [side, side, channels], ours, peer1, peer2);
}

const report = (comparisons: CellComparison[]): PeerComparisonReport => peerReport(comparisons);

// ML medians exactly proportional to D² (ours), D³ (peer, 1 thread) and D^2.5 (peer, 2 threads).
const SIDES = [16, 24, 32, 48];
const power = (side: number, exponent: number, scale = 1e-4): number => scale * (side * side) ** exponent;
const ML_CELLS = SIDES.map((side) => cell('ml', side, 1, power(side, 2), power(side, 3, 1e-6), power(side, 2.5, 2e-5)));

describe('peer scaling fits', () => {
  it('exact power laws per side', () => {
    const fits = peerScalingFits(report(ML_CELLS));
    assert.deepEqual(fits.map((fit) => fit.side), ['ours', 'pytorch best', 'pytorch 1t', 'pytorch 2t']);
    const bySide = new Map(fits.map((fit) => [fit.side, fit]));
    assert.ok(Math.abs(bySide.get('ours')!.exponent - 2) < 1e-9);
    assert.ok(Math.abs(bySide.get('pytorch 1t')!.exponent - 3) < 1e-9);
    assert.ok(Math.abs(bySide.get('pytorch 2t')!.exponent - 2.5) < 1e-9);
    // Exact power laws leave no residual, so the interval closes on the exponent.
    assert.ok(Math.abs(bySide.get('ours')!.interval[1] - bySide.get('ours')!.interval[0]) < 1e-6);
    assert.deepEqual(bySide.get('ours')!.dimensions, [256, 576, 1024, 2304]);
    assert.equal(bySide.get('ours')!.statedExponent, 3);
  });

  it('best peer series mixes thread counts', () => {
    const best = peerScalingFits(report(ML_CELLS)).find((fit) => fit.side === 'pytorch best')!;
    // 1 thread is faster at D = 256, 2 threads from D = 576 on (they cross at D = 400).
    assert.ok(best.exponent > 2.5, `exponent ${best.exponent}`);
    assert.ok(best.exponent < 3, `exponent ${best.exponent}`);
    assert.ok(best.interval[0] < best.exponent);
    assert.ok(best.exponent < best.interval[1]);
  });

  it('sparse sides, FC channels and duplicate D', () => {
    const cells = [
      // D = 256 twice (16×16×1 and 8×32×1): ours 2 and 8 ms, whose geometric mean is 4.
      cell('dsm', 16, 1, 2, 3, null),
      comparisonCell('dsm', [8, 32, 1], 8, null, null),
      // D = 768 and 3072 with three channels: ours 12 and 48 ms, so ours grows exactly like D.
      cell('dsm', 16, 3, 12, null, null),
      cell('dsm', 32, 3, 48, 9, null),
    ];
    const fits = peerScalingFits(report(cells));
    // The peer has two sizes on one thread and none on two, so only ours is fitted.
    assert.deepEqual(fits.map((fit) => fit.side), ['ours']);
    assert.deepEqual(fits[0]!.dimensions, [256, 768, 3072]);
    assert.ok(Math.abs(fits[0]!.exponent - 1) < 1e-9, `exponent ${fits[0]!.exponent}`);
    assert.equal(fits[0]!.statedExponent, 2);
  });

  it('CSV, terminal lines and stale file', async () => {
    const fits = peerScalingFits(report(ML_CELLS));
    const lines = peerScalingCsv(fits).trim().split('\n');
    assert.equal(lines[0], 'arch,objective,channels,L,batch,side,D_values,exponent,exponent_ci_low,exponent_ci_high,stated_exponent');
    assert.match(lines[1]!, /^fc,ml,1,2,100,ours,256 576 1024 2304,2\.000,2\.000,2\.000,3$/);
    assert.match(formatPeerScaling(fits).split('\n')[2]!, /^fc\/ml\/c1\/L2\/B100 D 256–2304 \(4 sizes\): pytorch 1t 3\.00 \[3\.00, 3\.00\], stated 3$/);

    const directory = await mkdtemp(join(tmpdir(), 'ebflow-peer-scaling-'));
    try {
      const paths = await writePeerReport(report(ML_CELLS), directory);
      assert.equal(await readFile(paths.scaling!, 'utf8'), peerScalingCsv(fits));
      // A later run into the same folder without three sizes removes the earlier fits.
      const withoutFits = await writePeerReport(report(ML_CELLS.slice(0, 2)), directory);
      assert.equal(withoutFits.scaling, undefined);
      assert.equal(existsSync(join(directory, 'peer-scaling.csv')), false);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
