/**
 * Trains one toy EBFlow model and writes its result record, plus a density heat-map PNG for the
 * 2-D data sets. The toys are the 2-D data sets of Table 1 and the 10-D multimodal experiment of
 * Figure A4 of Chao et al., NeurIPS 2023.
 *
 * Usage: node dist/src/cli/toys.js --dataset sine --objective dsm --iterations 500 --seed 0 --out DIR
 * (--help lists every option). Progress goes to stderr, and the paths of the written files to
 * stdout.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { backendRequestFromEnv, selectBackend } from '../backend/select.js';
import { collectEnvironment } from '../runner/environment.js';
import { cellFileName } from '../runner/results.js';
import { parseToyArguments, ToyArgumentError, TOYS_USAGE, type ToyArguments } from '../toys/cli-arguments.js';
import type { Toy2dDataset } from '../toys/datasets.js';
import { renderDensityPng } from '../toys/heatmap.js';
import { defaultMultimodalConfig, trainMultimodal, type MultimodalConfig } from '../toys/multimodal.js';
import { multimodalRecord, toy2dRecord, type RunContext, type ToyRunRecord } from '../toys/record.js';
import { defaultToy2dConfig, trainToy2d, type Toy2dConfig } from '../toys/train-2d.js';
import type { ToyStepProgress } from '../toys/training-loop.js';

/** Iterations left out of the timing summary: the first ones include tfjs's kernel warm-up. */
const WARMUP_ITERATIONS = 3;

function toy2dConfigFrom(args: ToyArguments): Toy2dConfig {
  const config = defaultToy2dConfig(args.dataset as Toy2dDataset, args.objective);
  return {
    ...config,
    iterations: args.iterations ?? config.iterations,
    batchSize: args.batch ?? config.batchSize,
    seed: args.seed,
    dataSeed: args.dataSeed,
    learningRate: args.learningRate ?? config.learningRate,
    gradientClip: args.gradientClip ?? config.gradientClip,
    evaluateEvery: args.evaluateEvery ?? config.evaluateEvery,
    evaluationPoints: args.evaluationPoints ?? config.evaluationPoints,
    base: args.base,
    blocks: args.blocks ?? config.blocks,
    hidden: args.hidden ?? config.hidden,
    networkInit: args.networkInit,
    trainPoints: args.trainPoints ?? config.trainPoints,
    chunkRows: args.chunkRows ?? config.chunkRows,
  };
}

function multimodalConfigFrom(args: ToyArguments): MultimodalConfig {
  const config = defaultMultimodalConfig(args.mask);
  return {
    ...config,
    iterations: args.iterations ?? config.iterations,
    batchSize: args.batch ?? config.batchSize,
    seed: args.seed,
    dataSeed: args.dataSeed,
    learningRate: args.learningRate ?? config.learningRate,
    gradientClip: args.gradientClip ?? config.gradientClip,
    evaluateEvery: args.evaluateEvery ?? config.evaluateEvery,
    evaluationPoints: args.evaluationPoints ?? config.evaluationPoints,
    base: args.base,
    blocks: args.blocks ?? config.blocks,
    trainPoints: args.trainPoints ?? config.trainPoints,
  };
}

/** Prints a progress line to stderr every `every` iterations and at the last one. */
function progressPrinter(total: number): (progress: ToyStepProgress) => void {
  const every = Math.max(1, Math.round(total / 20));
  return ({ iteration, loss, skipped, milliseconds }) => {
    if (iteration % every !== 0 && iteration !== total) return;
    const note = skipped ? ' (update skipped: non-finite loss or gradient)' : '';
    process.stderr.write(`iteration ${iteration}/${total}: loss ${loss.toFixed(4)} nats, ${milliseconds.toFixed(0)} ms${note}\n`);
  };
}

function writeJson(path: string, record: ToyRunRecord): void {
  // Write to a temporary file first, so a reader never sees half a record.
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(record, null, 1)}\n`);
  renameSync(temporary, path);
}

async function main(argv: string[]): Promise<number> {
  let args: ToyArguments;
  try {
    args = parseToyArguments(argv);
  } catch (error) {
    if (error instanceof ToyArgumentError) {
      process.stderr.write(`toys: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (args.help) {
    process.stdout.write(`${TOYS_USAGE}\n`);
    return 0;
  }

  const backend = await selectBackend(args.backend ?? backendRequestFromEnv());
  const environment = collectEnvironment(backend);
  mkdirSync(args.out, { recursive: true });
  const startedAt = new Date().toISOString();
  const context = (): RunContext => ({ environment, startedAt, finishedAt: new Date().toISOString(), warmupIterations: WARMUP_ITERATIONS });

  let record: ToyRunRecord;
  if (args.dataset === 'multimodal10') {
    const config = multimodalConfigFrom(args);
    process.stderr.write(`toys: multimodal10 with mask ${config.mask}, ML, ${config.iterations} iterations at batch ${config.batchSize}, backend ${backend.name}\n`);
    const result = await trainMultimodal(config, progressPrinter(config.iterations));
    record = multimodalRecord(result, context());
    process.stderr.write(`toys: final test NLL ${result.finalNll.toFixed(4)} nats per point on ${config.evaluationPoints} points\n`);
  } else {
    const config = toy2dConfigFrom(args);
    process.stderr.write(
      `toys: ${config.dataset} with ${config.objective}, ${config.iterations} iterations at batch ${config.batchSize}, ` +
        `${config.base} base, backend ${backend.name}\n`,
    );
    const result = await trainToy2d(config, progressPrinter(config.iterations));
    const runName = `${config.dataset}/${config.objective}/B${config.batchSize}/seed${config.seed}/${config.base}`;
    const pngName = cellFileName(runName).replace(/\.json$/, '-density.png');
    writeFileSync(join(args.out, pngName), renderDensityPng(result.grid));
    record = toy2dRecord(result, context(), pngName);
    const final = result.evaluations[result.evaluations.length - 1].metrics;
    process.stderr.write(
      `toys: KL ${final.kl.toFixed(4)} nats, the authors' KL-type quantity ${final.klReference.toFixed(4)} nats, ` +
        `Fisher divergence ${final.fisher.toFixed(4)} on ${final.points} points\n`,
    );
    process.stdout.write(`${join(args.out, pngName)}\n`);
  }
  const recordPath = join(args.out, cellFileName(record.cellId));
  writeJson(recordPath, record);
  process.stdout.write(`${recordPath}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`toys: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
