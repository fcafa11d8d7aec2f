/**
 * Fills masked regions of test images by MCMC with the model of a training checkpoint, and
 * writes the masked inputs, the results and the originals as a PNG grid.
 *
 * Usage: node dist/src/cli/inpaint.js --checkpoint <file> [--out inpainting.png] [--count 10]
 *          [--first 0] [--mask square|digit] [--side 14] [--iterations 500] [--step 0.5]
 *          [--snr 0.1] [--smoothing 0.01] [--seed 0] [--weights ema|raw] [--nested]
 *          [--cifar-directory <folder>] [--backend gpu|node|wasm|cpu|auto]
 *
 * The images are the test split of the checkpoint's data set, from index --first. Masks: a
 * centred square of --side pixels, or (MNIST only) the strokes of the MNIST training digit with
 * the same index, pixels brighter than 127. The chain is the one of src/sampling/inpaint.ts.
 */
import { parseArgs } from 'node:util';

import { backendRequestFromEnv, selectBackend } from '../backend/select.js';
import { loadMnist } from '../data/mnist.js';
import { RandomStream } from '../random/stream.js';
import { inpaintImages, inpaintingGrid, INPAINTING_DEFAULTS, squareMask, strokeMask } from '../sampling/inpaint.js';
import { writePng } from '../sampling/png.js';
import { loadCheckpointModel, loadDataset } from '../train/session-impl.js';

const USAGE = `Usage: node dist/src/cli/inpaint.js --checkpoint <file> [options]

Fills a masked region of test images by MCMC (a Langevin-type corrector with blur smoothing)
with the model of a training checkpoint, and writes a PNG grid: for each group of 10 images a row
of masked inputs (masked pixels grey), a row of results and a row of originals.

Options:
  --checkpoint <file>       the checkpoint to load (required)
  --out <file>              the PNG to write (default: inpainting.png)
  --count <n>               images to fill (default: 10)
  --first <n>               index of the first test image (default: 0)
  --mask square|digit       a centred square (default), or the strokes of the MNIST training
                            digit with the same index (28×28 grey images only)
  --side <n>                side of the square mask in pixels (default: half the image side)
  --iterations <n>          MCMC iterations (default: ${INPAINTING_DEFAULTS.iterations})
  --step <η>                step size η (default: ${INPAINTING_DEFAULTS.stepSize})
  --snr <value>             signal-to-noise ratio of the noise term (default: ${INPAINTING_DEFAULTS.snr})
  --smoothing <c>           weight of the blur drift (default: ${INPAINTING_DEFAULTS.smoothing})
  --seed <n>                seed of the chain's random stream (default: 0)
  --weights ema|raw         EMA shadows (default) or raw trained parameters
  --nested                  compute scores with nested tf.grad instead of explicit formulas
  --cifar-directory <dir>   folder of the CIFAR-10 batches, when the checkpoint is a CIFAR-10 run
  --backend <name>          TensorFlow.js backend: gpu, node, wasm, cpu or auto (default: auto,
                            or the environment variable EBFLOW_BACKEND)
  --help, -h                show this help`;

function integer(option: string, text: string | undefined, fallback: number, minimum: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < minimum) {
    throw new Error(`inpaint: --${option} must be an integer ≥ ${minimum}, received "${text}". Run with --help for the options.`);
  }
  return value;
}

function nonNegative(option: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!(Number.isFinite(value) && value >= 0)) {
    throw new Error(`inpaint: --${option} must be a finite number ≥ 0, received "${text}"`);
  }
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      checkpoint: { type: 'string' },
      out: { type: 'string', default: 'inpainting.png' },
      count: { type: 'string' },
      first: { type: 'string' },
      mask: { type: 'string', default: 'square' },
      side: { type: 'string' },
      iterations: { type: 'string' },
      step: { type: 'string' },
      snr: { type: 'string' },
      smoothing: { type: 'string' },
      seed: { type: 'string' },
      weights: { type: 'string', default: 'ema' },
      nested: { type: 'boolean', default: false },
      'cifar-directory': { type: 'string' },
      backend: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.checkpoint === undefined) throw new Error(`inpaint: --checkpoint is required.\n${USAGE}`);
  if (values.weights !== 'ema' && values.weights !== 'raw') {
    throw new Error(`inpaint: --weights must be "ema" or "raw", received "${values.weights}"`);
  }
  if (values.mask !== 'square' && values.mask !== 'digit') {
    throw new Error(`inpaint: --mask must be "square" or "digit", received "${values.mask}"`);
  }
  const count = integer('count', values.count, 10, 1);
  const first = integer('first', values.first, 0, 0);
  const iterations = integer('iterations', values.iterations, INPAINTING_DEFAULTS.iterations, 1);
  const seed = integer('seed', values.seed, 0, 0);

  const selection = await selectBackend(values.backend ?? backendRequestFromEnv());
  const loaded = await loadCheckpointModel(values.checkpoint, { weights: values.weights });
  try {
    const config = { ...loaded.config };
    if (values['cifar-directory'] !== undefined) config.cifarDirectory = values['cifar-directory'];
    const dataset = await loadDataset(config, new RandomStream(config.seed));
    if (first + count > dataset.sizes.test) {
      throw new Error(`inpaint: --first ${first} and --count ${count} reach past the ${dataset.sizes.test} test images of ${dataset.name}; lower --first or --count`);
    }
    const indices = Array.from({ length: count }, (_, i) => first + i);
    const images = { pixels: dataset.batch('test', indices), count, imageShape: config.imageShape };
    const [height, width, channels] = config.imageShape;

    let mask: Uint8Array;
    if (values.mask === 'digit') {
      if (height !== 28 || width !== 28) {
        throw new Error(`inpaint: --mask digit uses 28×28 MNIST strokes, but the images are ${height}×${width}; use --mask square`);
      }
      const mnist = await loadMnist();
      mask = strokeMask(mnist.batch('train', indices));
    } else {
      const side = integer('side', values.side, Math.floor(Math.min(height, width) / 2), 1);
      mask = squareMask(count, config.imageShape, side);
    }

    console.log(
      `backend ${selection.name}; ${config.dataset} ${config.architecture} ${config.objective} model after ${loaded.iteration} iterations, ` +
        `${loaded.weights === 'ema' ? 'EMA' : 'raw'} weights; ${count} test images of ${height}×${width}×${channels}, ${values.mask} mask, ${iterations} iterations`,
    );
    const start = performance.now();
    const result = await inpaintImages(loaded, images, mask, new RandomStream(seed), {
      iterations,
      stepSize: nonNegative('step', values.step, INPAINTING_DEFAULTS.stepSize),
      snr: nonNegative('snr', values.snr, INPAINTING_DEFAULTS.snr),
      smoothing: nonNegative('smoothing', values.smoothing, INPAINTING_DEFAULTS.smoothing),
      explicitDerivatives: !values.nested,
      onIteration: (iteration, total) => {
        if (iteration % 50 === 0 || iteration === total) {
          process.stderr.write(`iteration ${iteration}/${total} (${((performance.now() - start) / 1000).toFixed(1)} s)\n`);
        }
      },
    });
    if (result.nonFiniteIterations > 0) {
      console.error(`warning: ${result.nonFiniteIterations} of ${iterations} iterations had a non-finite noise scale (zero or non-finite score norm)`);
    }
    await writePng(values.out as string, inpaintingGrid(images, result.completed, mask));
    console.log(`wrote ${values.out} in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  } finally {
    loaded.dispose();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
