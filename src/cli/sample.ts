/**
 * Draws samples from a training checkpoint and writes them as a PNG grid.
 *
 * Usage: node dist/src/cli/sample.js --checkpoint <file> [--out samples.png] [--count 100]
 *          [--seed 0] [--weights ema|raw] [--batch 100] [--backend gpu|node|wasm|cpu|auto]
 *
 * The model uses the checkpoint's EMA weights, or the raw weights with --weights raw or when the
 * run had no EMA. Samples are z ~ N(0, I) mapped through the inverse flow and the inverse
 * preprocessing to 8-bit pixels, laid out 10 per row with each value p shown as p/256.
 */
import { parseArgs } from 'node:util';

import { backendRequestFromEnv, selectBackend } from '../backend/select.js';
import { RandomStream } from '../random/stream.js';
import { imageGrid } from '../sampling/grid.js';
import { writePng } from '../sampling/png.js';
import { sampleImages } from '../sampling/sample.js';
import { loadCheckpointModel } from '../train/session-impl.js';

const USAGE = `Usage: node dist/src/cli/sample.js --checkpoint <file> [options]

Draws samples from the model of a training checkpoint (written by saveCheckpoint) and writes
them as a PNG grid, 10 images per row.

Options:
  --checkpoint <file>   the checkpoint to load (required)
  --out <file>          the PNG to write (default: samples.png)
  --count <n>           number of samples (default: 100)
  --seed <n>            seed of the base-noise stream (default: 0)
  --weights ema|raw     EMA shadows (default) or raw trained parameters
  --batch <n>           samples per inversion call (default: 100)
  --backend <name>      TensorFlow.js backend: gpu, node, wasm, cpu or auto (default: auto, or
                        the environment variable EBFLOW_BACKEND)
  --help, -h            show this help`;

function positiveInteger(option: string, text: string | undefined, fallback: number, minimum = 1): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < minimum) {
    throw new Error(`sample: --${option} must be an integer ≥ ${minimum}, received "${text}". Run with --help for the options.`);
  }
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      checkpoint: { type: 'string' },
      out: { type: 'string', default: 'samples.png' },
      count: { type: 'string' },
      seed: { type: 'string' },
      weights: { type: 'string', default: 'ema' },
      batch: { type: 'string' },
      backend: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.checkpoint === undefined) {
    throw new Error(`sample: --checkpoint is required.\n${USAGE}`);
  }
  if (values.weights !== 'ema' && values.weights !== 'raw') {
    throw new Error(`sample: --weights must be "ema" or "raw", received "${values.weights}"`);
  }
  const count = positiveInteger('count', values.count, 100);
  const seed = positiveInteger('seed', values.seed, 0, 0);
  const batchSize = positiveInteger('batch', values.batch, 100);

  const selection = await selectBackend(values.backend ?? backendRequestFromEnv());
  const loaded = await loadCheckpointModel(values.checkpoint, { weights: values.weights });
  try {
    const { config } = loaded;
    console.log(
      `backend ${selection.name}; ${config.dataset} ${config.architecture} ${config.objective} model after ${loaded.iteration} iterations, ` +
        `${loaded.weights === 'ema' ? 'EMA' : 'raw'} weights`,
    );
    const start = performance.now();
    const samples = await sampleImages(loaded, count, new RandomStream(seed), { batchSize });
    await writePng(values.out as string, imageGrid(samples));
    console.log(`wrote ${count} samples to ${values.out} in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  } finally {
    loaded.dispose();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
