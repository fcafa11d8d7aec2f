import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { loadArtifacts } from '../../src/report/artifacts.js';
import { buildFigures, type FigureDefinition } from '../../src/report/figures.js';
import { compileSpec, prefixSvgIds, renderSvg, svgToPng } from '../../src/report/render.js';
import { loadFixtureContext } from './fixtures.js';

async function fixtureFigures(): Promise<ReturnType<typeof buildFigures>> {
  const { loaded, context } = await loadFixtureContext();
  return buildFigures(context, await loadArtifacts(loaded));
}

function figure(figures: FigureDefinition[], id: string): FigureDefinition {
  const found = figures.find((candidate) => candidate.id === id);
  assert.ok(found !== undefined, `figure ${id} was not built; built: ${figures.map((f) => f.id).join(', ')}`);
  return found;
}

/** Marks each figure must draw, as Vega's SVG class names, and a text its SVG must contain. */
const EXPECTED: Record<string, { marks: string[]; text: string }> = {
  'runtime-vs-dimension': { marks: ['mark-line', 'mark-symbol'], text: 'Runtime per iteration against D' },
  'runtime-vs-layers': { marks: ['mark-line', 'mark-symbol'], text: 'Runtime per iteration against L' },
  'rate-vs-dimension': { marks: ['mark-line', 'mark-symbol'], text: 'Counted GFLOP/s against D' },
  'nll-vs-time': { marks: ['mark-line', 'mark-symbol'], text: 'bits/dim' },
  'nll-by-objective': { marks: ['mark-rect', 'mark-rule'], text: 'NLL (nats per image)' },
  'artifacts-density': { marks: ['mark-image'], text: 'sine/coupling2d/ssm/D2/B2048/seed0' },
};

describe('report figures', () => {
  it('builds the expected figures from the fixtures', async () => {
    const { figures, omitted } = await fixtureFigures();
    assert.deepEqual(figures.map((f) => f.id).sort(), Object.keys(EXPECTED).sort());
    assert.deepEqual(omitted, []);
  });

  it('every spec compiles and renders marks and text', async () => {
    const { figures } = await fixtureFigures();
    for (const definition of figures) {
      assert.ok(compileSpec(definition.id, definition.spec).marks !== undefined, `${definition.id}: compiled spec has no marks`);
      const svg = await renderSvg(definition.id, definition.spec);
      assert.ok(svg.startsWith('<svg'), `${definition.id}: output is not an SVG`);
      const width = Number(/width="(\d+(?:\.\d+)?)"/.exec(svg)?.[1]);
      assert.ok(width > 100, `${definition.id}: SVG width ${width}`);
      for (const mark of EXPECTED[definition.id].marks) {
        assert.ok(svg.includes(mark), `${definition.id}: SVG has no ${mark}`);
      }
      assert.ok(svg.includes(EXPECTED[definition.id].text), `${definition.id}: SVG lacks the text "${EXPECTED[definition.id].text}"`);
      assert.ok(svg.includes('DejaVu Sans'), `${definition.id}: SVG does not use DejaVu Sans`);
    }
  });

  it('PNG rendering produces an image', async () => {
    const { figures } = await fixtureFigures();
    const svg = await renderSvg('runtime-vs-dimension', figure(figures, 'runtime-vs-dimension').spec);
    const png = svgToPng(svg);
    assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.ok(png.length > 5000, `PNG has only ${png.length} bytes`);
  });

  it('log axes leave out non-positive values and say so', async () => {
    const { figures } = await fixtureFigures();
    const runtime = figure(figures, 'runtime-vs-dimension');
    const values = (runtime.spec.data as { values: Array<{ ms: number; low: number | null; source: string }> }).values;
    assert.ok(values.length > 0);
    assert.ok(values.every((datum) => datum.ms > 0));
    assert.ok(values.every((datum) => datum.low === null || datum.low > 0));
    // The DSM point at D = 1600 has a median of 0 ms.
    assert.equal(values.filter((datum) => datum.source === 'ours').length, 11);
    assert.ok(runtime.notes.some((note) => note.includes('1 point(s) with a non-positive median were left out')));
    const svg = await renderSvg(runtime.id, runtime.spec);
    assert.ok(svg.includes('non-positive median'));
  });

  it('rate figure draws counted cells only', async () => {
    const { figures } = await fixtureFigures();
    const rate = figure(figures, 'rate-vs-dimension');
    const values = (rate.spec.data as { values: Array<{ objective: string; x: number; rate: number }> }).values;
    // Only the ML records at L = 2 carry counts: 10⁶·(D/256)³ operations over their medians.
    assert.deepEqual(values.map((datum) => datum.objective), ['ml', 'ml', 'ml', 'ml']);
    const medians: Record<number, number> = { 256: 4.096, 576: 13.824, 1024: 32.768, 1600: 64 };
    for (const datum of values) {
      const expected = (1e6 * (datum.x / 256) ** 3) / 1e6 / medians[datum.x];
      assert.ok(Math.abs(datum.rate - expected) < 1e-12 * expected, `D = ${datum.x}: ${datum.rate} against ${expected}`);
    }
  });

  it('rate figure axis title fits its panel', async () => {
    // A y-axis title longer than the 200 px panel stretches every row and leaves gaps around it.
    const { figures } = await fixtureFigures();
    const rate = figure(figures, 'rate-vs-dimension');
    const untitled = structuredClone(rate.spec) as { spec: { layer: Array<{ encoding: { y: { title?: string | null } } }> } };
    for (const layer of untitled.spec.layer) layer.encoding.y.title = null;
    const heightOf = (svg: string): number => Number(/height="(\d+(?:\.\d+)?)"/.exec(svg)?.[1]);
    const titled = heightOf(await renderSvg(rate.id, rate.spec));
    const bare = heightOf(await renderSvg(rate.id, untitled as unknown as typeof rate.spec));
    assert.equal(titled, bare);
  });

  it('rate figure omitted without counts', async () => {
    const { context } = await loadFixtureContext();
    const uncounted = { ...context, cells: context.cells.map((cell) => ({ ...cell, operationsPerStep: null })) };
    const { omitted } = buildFigures(uncounted, []);
    assert.match(omitted.find((entry) => entry.id === 'rate-vs-dimension')?.reason ?? '', /recorded an operation count/);
  });

  it('intervals are explicit lower and upper fields', async () => {
    const { figures } = await fixtureFigures();
    const bars = figure(figures, 'nll-by-objective');
    const values = (bars.spec.data as { values: Array<Record<string, unknown>> }).values;
    const ssm = values.find((datum) => datum.objective === 'ssm' && datum.source === 'ours' && datum.nll === 1093.5)!;
    const halfWidth = (4.30265273 * 0.5) / Math.sqrt(3);
    assert.ok(Math.abs((ssm.low as number) - (1093.5 - halfWidth)) < 1e-6);
    assert.ok(Math.abs((ssm.high as number) - (1093.5 + halfWidth)) < 1e-6);
    assert.ok(bars.notes.some((note) => note.includes('fdssm (2 errored (out of memory))')));
  });

  it('missing artifact files are noted', async () => {
    const { figures } = await fixtureFigures();
    const gallery = figure(figures, 'artifacts-density');
    assert.equal((gallery.spec.data as { values: unknown[] }).values.length, 1);
    assert.ok(gallery.notes.some((note) => note.includes('missing-density.png') && note.includes('file not found')));
  });

  it('prefixes SVG ids so inline figures do not clash', () => {
    const svg = '<svg><defs><clipPath id="clip1"><rect/></clipPath></defs><g clip-path="url(#clip1)"/><use href="#clip1"/></svg>';
    const prefixed = prefixSvgIds(svg, 'figure-a');
    assert.ok(prefixed.includes('id="figure-a-clip1"'));
    assert.ok(prefixed.includes('url(#figure-a-clip1)'));
    assert.ok(prefixed.includes('href="#figure-a-clip1"'));
    assert.ok(!/id="clip1"/.test(prefixed));
  });
});
