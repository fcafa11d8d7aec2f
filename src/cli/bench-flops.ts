/**
 * Counts the floating-point operations of one training step and compares the rate a step
 * reaches with the backend's matrix-product rate.
 *
 * Usage: node dist/src/cli/bench-flops.js [--backend <name>] [--cells fc784,fc3072,cnn]
 *                                         [--objectives ml,sml,ssm,dsm,fdssm] [--steps 10] [--out <file.csv>]
 *
 * For each cell (synthetic 8-bit images, batch 100, the EBFlow paper's hyper-parameters) and objective:
 * 1. Build a session and run 3 warm-up steps.
 * 2. Count the operations of one step with `countStepOperations`: its matrix products
 *    (BatchMatMul: 2·batch·m·k·n; Conv2D: 2·output size·Kh·Kw·Cin), its LAPACK calls and the
 *    products that OpenBLAS adds into one output outside the tfjs kernels. Element-wise work is
 *    not counted.
 * 3. Time `--steps` further steps and take the median wall-clock time.
 * 4. Time the backend's product [100×D]·[D×D] (best of 20 after 3 warm-ups), the rate the
 *    step's products run at when they are as efficient as that product.
 * The printed ratio is (counted operations / median step time) / matrix-product rate: 1 means
 * the step takes no longer than its products would at the measured rate. A count marked
 * "partial" (the CSV's `partial` column) left out part of a factorisation that ran in float64
 * JavaScript, so its rate is too low.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import * as tf from '@tensorflow/tfjs-core';
import { stringify } from 'csv-stringify/sync';

import { backendRequestFromEnv, computeLabel, selectBackend } from '../backend/select.js';
import { OBJECTIVE_NAMES, type ObjectiveName } from '../objectives/objective.js';
import { RandomStream } from '../random/stream.js';
import { describeBlas } from '../tensor/native-blas.js';
import { resolveTrainingConfig } from '../train/config.js';
import { countStepOperations } from '../runner/operation-count.js';
import { createTrainingSession } from '../train/session-impl.js';
import type { ArchitectureName } from '../train/session.js';

const USAGE =
  'Usage: node dist/src/cli/bench-flops.js [--backend gpu|node|wasm|cpu|auto] [--cells fc784,fc3072,cnn] ' +
  '[--objectives ml,sml,ssm,dsm,fdssm] [--steps 10] [--out <file.csv>]';

const BATCH = 100;
const WARMUP_STEPS = 3;

/** The cells this tool measures, by name. */
const CELLS: Record<string, { architecture: ArchitectureName; imageShape: [number, number, number] }> = {
  fc784: { architecture: 'fc', imageShape: [28, 28, 1] },
  fc3072: { architecture: 'fc', imageShape: [32, 32, 3] },
  cnn: { architecture: 'cnn', imageShape: [28, 28, 1] },
};

interface StepCensus {
  cell: string;
  objective: ObjectiveName;
  dimension: number;
  /** Operations of the step's matrix products and LAPACK calls, GFLOP. */
  gigaOperations: number;
  /** True when a factorisation ran in float64 JavaScript, whose operations the count leaves partly out. */
  partial: boolean;
  medianMs: number;
  /** gigaOperations / medianMs, GFLOP/s. */
  stepRate: number;
  /** Rate of the backend's [100×D]·[D×D] product, GFLOP/s. */
  matMulRate: number;
}

/** Returns the best rate of the product [100×D]·[D×D] on the current backend, GFLOP/s. */
function matMulRate(dimension: number): number {
  const random = new RandomStream(7);
  const left = tf.tensor2d(random.normalArray(BATCH * dimension), [BATCH, dimension]);
  const right = tf.tensor2d(random.normalArray(dimension * dimension), [dimension, dimension]);
  let best = Infinity;
  for (let run = 0; run < 23; run++) {
    const start = performance.now();
    const product = tf.matMul(left, right);
    product.dataSync();
    product.dispose();
    if (run >= 3) best = Math.min(best, performance.now() - start);
  }
  tf.dispose([left, right]);
  return (2 * BATCH * dimension * dimension) / best / 1e6;
}

async function census(cell: string, objective: ObjectiveName, steps: number): Promise<StepCensus> {
  const { architecture, imageShape } = CELLS[cell];
  const config = resolveTrainingConfig({ dataset: 'synthetic', architecture, objective, imageShape, depth: 2, batchSize: BATCH, seed: 0 });
  const session = await createTrainingSession(config);
  try {
    for (let step = 0; step < WARMUP_STEPS; step++) await session.step();

    const { perStep: operations, partial } = await countStepOperations(() => session.step());

    const times: number[] = [];
    for (let step = 0; step < steps; step++) {
      const start = performance.now();
      await session.step();
      times.push(performance.now() - start);
    }
    times.sort((x, y) => x - y);
    const medianMs = times[Math.floor(times.length / 2)];
    const dimension = imageShape[0] * imageShape[1] * imageShape[2];
    const gigaOperations = operations / 1e9;
    return { cell, objective, dimension, gigaOperations, partial, medianMs, stepRate: gigaOperations / (medianMs / 1000), matMulRate: matMulRate(dimension) };
  } finally {
    session.dispose();
  }
}

function parseList<T extends string>(text: string, allowed: readonly T[], option: string): T[] {
  const values = text.split(',').map((value) => value.trim());
  for (const value of values) {
    if (!allowed.includes(value as T)) {
      throw new Error(`bench-flops: invalid ${option} value '${value}'; expected a comma-separated list of ${allowed.join(', ')}.`);
    }
  }
  return values as T[];
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string' },
      cells: { type: 'string', default: 'fc784,fc3072,cnn' },
      objectives: { type: 'string', default: OBJECTIVE_NAMES.join(',') },
      steps: { type: 'string', default: '10' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const cells = parseList(values.cells, Object.keys(CELLS), '--cells');
  const objectives = parseList(values.objectives, OBJECTIVE_NAMES, '--objectives');
  const steps = Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`bench-flops: --steps must be a positive integer, received '${values.steps}'.`);

  const selection = await selectBackend(values.backend ?? backendRequestFromEnv());
  console.log(`backend: ${computeLabel(selection)}; ${describeBlas(selection.blas)}`);
  console.log('cell     objective  GFLOP/step  median ms  step GFLOP/s  matMul GFLOP/s  ratio');
  const rows: StepCensus[] = [];
  for (const cell of cells) {
    for (const objective of objectives) {
      const row = await census(cell, objective, steps);
      rows.push(row);
      console.log(
        `${cell.padEnd(8)} ${objective.padEnd(9)} ${row.gigaOperations.toFixed(3).padStart(11)} ${row.medianMs.toFixed(1).padStart(10)} ` +
          `${row.stepRate.toFixed(1).padStart(13)} ${row.matMulRate.toFixed(1).padStart(15)} ${(row.stepRate / row.matMulRate).toFixed(2).padStart(6)}` +
          (row.partial ? '  partial' : ''),
      );
    }
  }
  if (rows.some((row) => row.partial)) {
    console.log('partial: a factorisation ran in float64 JavaScript (no OpenBLAS), whose work the count leaves partly out, so the rate is too low.');
  }
  if (values.out !== undefined) {
    const header = ['cell', 'objective', 'D', 'backend', 'gflop_per_step', 'partial', 'median_ms', 'step_gflops', 'matmul_gflops', 'ratio'];
    const records = rows.map((row) => [
      row.cell,
      row.objective,
      row.dimension,
      computeLabel(selection),
      row.gigaOperations.toFixed(4),
      String(row.partial),
      row.medianMs.toFixed(2),
      row.stepRate.toFixed(2),
      row.matMulRate.toFixed(2),
      (row.stepRate / row.matMulRate).toFixed(3),
    ]);
    writeFileSync(values.out, stringify([header, ...records]));
    console.log(`wrote ${values.out}`);
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 2;
  },
);
