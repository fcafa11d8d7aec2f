import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import type { PeerComparisonReport } from '../../src/peer/bench.js';
import { formatPeerTable, peerChartSpec, peerComparisonCsv, WITHOUT_PEER_FOLDER, writePeerReport } from '../../src/peer/report.js';
import { comparisonCell, peerReport } from './report-fixtures.js';

const REPORT: PeerComparisonReport = peerReport(
  [comparisonCell('ml', [28, 28, 1], 120, 60, 40), comparisonCell('ssm', [28, 28, 1], 90, null, null)],
  {
    machine: { cpuModel: 'Test CPU, 3 GHz', cpuCount: 2, platform: 'linux x64', hostname: 'test' },
    peer: { command: 'python3 pytorch_peer.py', engine: 'pytorch', version: '1.13.1', blas: 'OpenBLAS 0.3.21', machine: 'x86_64', runtime: 'Python 3.11', ompWaitPolicy: 'PASSIVE' },
  },
);

describe('peer report', () => {
  const folders: string[] = [];
  async function temporaryFolder(prefix: string): Promise<string> {
    const folder = await mkdtemp(join(tmpdir(), prefix));
    folders.push(folder);
    return folder;
  }
  after(async () => {
    for (const folder of folders) await rm(folder, { recursive: true, force: true });
  });

  it('writes one CSV row per cell', () => {
    const lines = peerComparisonCsv(REPORT).trim().split('\n');
    assert.equal(lines.length, 3);
    const header = lines[0]!.split(',');
    assert.deepEqual(header.slice(0, 12), [
      'arch', 'objective', 'image_shape', 'D', 'L', 'batch', 'ours_median_ms',
      'peer_1t_median_ms', 'peer_2t_median_ms', 'peer_best_ms', 'peer_best_threads', 'ratio_ours_over_peer',
    ]);
    assert.match(lines[1]!, /^fc,ml,28x28x1,784,2,100,120\.000,60\.000,40\.000,40\.000,2,3\.000,/);
    // The CPU model contains a comma, so the CSV quotes it.
    assert.match(lines[1]!, /"Test CPU, 3 GHz",2,wasm,pytorch,1\.13\.1,OpenBLAS 0\.3\.21,PASSIVE,,,$/);
    assert.match(lines[2]!, /^fc,ssm,28x28x1,784,2,100,90\.000,,,,,,/);
  });

  it('formats the table with ratios', () => {
    const table = formatPeerTable(REPORT).split('\n');
    assert.equal(table.length, 4);
    assert.match(table[0]!, /ours \(wasm\) ms.*pytorch 1t ms.*pytorch 2t ms.*best pytorch ms.*ours\/pytorch/);
    assert.match(table[2]!, /fc\/ml\/28x28x1\/L2\/B100 +120\.0 +60\.0 +40\.0 +40\.0 \(2t\) +3\.00x/);
    assert.match(table[3]!, /fc\/ssm.* 90\.0 +- +- +- +-$/);
  });

  it('charts every available median', () => {
    const spec = peerChartSpec(REPORT) as { data: { values: Array<{ side: string; medianMs: number }> } };
    assert.equal(spec.data.values.length, 4);
    assert.deepEqual(spec.data.values.map((value) => value.side), ['ours (wasm)', 'pytorch, 1 thread', 'pytorch, 2 threads', 'ours (wasm)']);
  });

  it('charts full legend labels and one round', async () => {
    const report = { ...REPORT, ours: { ...REPORT.ours, backend: 'wasm+openblas' }, timing: { ...REPORT.timing, rounds: 1 } };
    const spec = peerChartSpec(report) as { title: { subtitle: string } };
    assert.match(spec.title.subtitle, /, 1 interleaved round of 10 timed steps/);
    const directory = await temporaryFolder('ebflow-peer-legend-');
    const svg = await readFile((await writePeerReport(report, directory)).svg, 'utf8');
    // The bars' aria-labels name the side in full either way, so match the legend's text element.
    assert.match(svg, />ours \(wasm\+openblas\)<\/text>/);
  });

  it('writes CSV, JSON, spec and SVG', async () => {
    const directory = await temporaryFolder('ebflow-peer-report-');
    const paths = await writePeerReport(REPORT, directory);
    const svg = await readFile(paths.svg, 'utf8');
    assert.match(svg, /^<svg/);
    assert.match(svg, /pytorch, 2 threads/);
    // One bar per available median, each with a finite positive height (a log scale whose
    // domain reaches 0 draws none).
    const heights = [...svg.matchAll(/aria-roledescription="bar" d="M[^"]*?v([^h"]+)h/g)].map((match) => Number(match[1]));
    assert.equal(heights.length, 4);
    assert.ok(heights.every((height) => Number.isFinite(height) && height > 0), `bar heights ${heights.join(', ')}`);
    const json = JSON.parse(await readFile(paths.json, 'utf8')) as PeerComparisonReport;
    assert.deepEqual(json, REPORT);
    const spec = JSON.parse(await readFile(paths.spec, 'utf8')) as { mark?: unknown; spec: { mark: string } };
    assert.equal(spec.spec.mark, 'bar');
  });

  it('keeps a comparison with the peer', async () => {
    const directory = await temporaryFolder('ebflow-peer-kept-');
    await writePeerReport(REPORT, directory);
    const withoutPeer = { ...REPORT, peer: null, notices: ['no torch'] };
    const paths = await writePeerReport(withoutPeer, directory);
    assert.equal(paths.keptComparison, join(directory, 'peer-comparison.json'));
    assert.equal(paths.json, join(directory, WITHOUT_PEER_FOLDER, 'peer-comparison.json'));
    assert.deepEqual(JSON.parse(await readFile(join(directory, 'peer-comparison.json'), 'utf8')), REPORT);
    assert.deepEqual(JSON.parse(await readFile(paths.json, 'utf8')), withoutPeer);

    // A later run with the peer replaces the comparison as before.
    const again = await writePeerReport(REPORT, directory);
    assert.equal(again.keptComparison, undefined);
    assert.equal(again.json, join(directory, 'peer-comparison.json'));
  });

  it('keeps a comparison, peer failed', async () => {
    // The peer started (so report.peer is set) but every run of it failed.
    const directory = await temporaryFolder('ebflow-peer-failed-');
    await writePeerReport(REPORT, directory);
    const failedPeer = peerReport([comparisonCell('ml', [28, 28, 1], 120, null, null)], { notices: ['the peer crashed'] });
    const paths = await writePeerReport(failedPeer, directory);
    assert.equal(paths.keptComparison, join(directory, 'peer-comparison.json'));
    assert.equal(paths.json, join(directory, WITHOUT_PEER_FOLDER, 'peer-comparison.json'));
    assert.deepEqual(JSON.parse(await readFile(join(directory, 'peer-comparison.json'), 'utf8')), REPORT);
  });

  it('replaces a comparison without peer timings', async () => {
    const directory = await temporaryFolder('ebflow-peer-replaced-');
    await writePeerReport(peerReport([comparisonCell('ml', [28, 28, 1], 120, null, null)]), directory);
    const withoutPeer = { ...REPORT, peer: null };
    const paths = await writePeerReport(withoutPeer, directory);
    assert.equal(paths.keptComparison, undefined);
    assert.equal(paths.json, join(directory, 'peer-comparison.json'));
    assert.deepEqual(JSON.parse(await readFile(paths.json, 'utf8')), withoutPeer);
  });

  it('keeps an unreadable comparison', async () => {
    // A JSON file cut short, as a run stopped while writing could leave it.
    const directory = await temporaryFolder('ebflow-peer-cut-');
    const existing = join(directory, 'peer-comparison.json');
    await writeFile(existing, '{"schemaVersion": 1, "peer": {"engine": "pyt');
    const paths = await writePeerReport({ ...REPORT, peer: null }, directory);
    assert.equal(paths.keptComparison, existing);
    assert.equal(paths.json, join(directory, WITHOUT_PEER_FOLDER, 'peer-comparison.json'));
    assert.equal(await readFile(existing, 'utf8'), '{"schemaVersion": 1, "peer": {"engine": "pyt');
  });

  it('writes a run without the peer into an empty folder', async () => {
    const directory = await temporaryFolder('ebflow-peer-alone-');
    const paths = await writePeerReport({ ...REPORT, peer: null }, directory);
    assert.equal(paths.keptComparison, undefined);
    assert.equal(paths.json, join(directory, 'peer-comparison.json'));
  });
});
