/**
 * Rendering Vega-Lite specifications to SVG (vega-lite compile, then a headless vega View) and
 * SVG to PNG (resvg, with the DejaVu Sans family the figures ask for).
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

import type { VegaLiteSpec } from './figures.js';

/** Compiles a Vega-Lite spec to a Vega spec; throws with the figure id when compilation fails. */
export function compileSpec(id: string, spec: VegaLiteSpec): vega.Spec {
  try {
    return compile(spec as unknown as TopLevelSpec).spec;
  } catch (error) {
    throw new Error(`report figure ${id}: Vega-Lite could not compile the spec: ${(error as Error).message}`);
  }
}

/** Renders a Vega-Lite spec to an SVG document string without a browser. */
export async function renderSvg(id: string, spec: VegaLiteSpec): Promise<string> {
  const view = new vega.View(vega.parse(compileSpec(id, spec)), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Renders an SVG document to PNG bytes at `scale` times its size. */
export function svgToPng(svg: string, scale = 2): Buffer {
  const image = new Resvg(svg, {
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
  });
  return image.render().asPng();
}

/**
 * Makes the ids of an SVG unique within a page by prefixing them (Vega numbers its clip paths
 * and gradients from 1 in every view, so two inline SVGs would otherwise share ids).
 */
export function prefixSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_match, id: string) => `id="${prefix}-${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_match, id: string) => `url(#${prefix}-${id})`)
    .replace(/href="#([^"]+)"/g, (_match, id: string) => `href="#${prefix}-${id}"`);
}
