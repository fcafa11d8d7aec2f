import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '/work/main/dist/src/backend/select.js';
import { resolveTrainingConfig } from '/work/main/dist/src/train/config.js';
import { createTrainingSession } from '/work/main/dist/src/train/session-impl.js';
const [cell, objective] = process.argv.slice(2);
const shape = cell === 'fc3072' ? [32,32,3] : [28,28,1];
const architecture = cell === 'cnn' ? 'cnn' : 'fc';
await selectBackend('wasm');
const config = resolveTrainingConfig({ dataset: 'synthetic', architecture, objective, imageShape: shape, depth: 2, batchSize: 100, seed: 0 });
const session = await createTrainingSession(config);
for (let i = 0; i < 3; i++) await session.step();
const agg = new Map(); let total = 0; let n = 0;
const t0 = performance.now();
const reps = 3;
for (let r = 0; r < reps; r++) {
  const p = await tf.profile(async () => { await session.step(); });
  for (const k of p.kernels) { const e = agg.get(k.name) ?? [0, 0]; e[0] += k.kernelTimeMs; e[1] += 1; agg.set(k.name, e); total += k.kernelTimeMs; n++; }
}
const wall = (performance.now() - t0) / reps;
const times = [];
for (let i = 0; i < 7; i++) { const s = performance.now(); await session.step(); times.push(performance.now() - s); }
times.sort((a,b)=>a-b);
console.log(`${cell} ${objective}: median ${times[3].toFixed(1)} ms; profiled wall ${wall.toFixed(1)}, kernel sum ${(total/reps).toFixed(1)}, kernels/step ${n/reps}`);
for (const [name, [ms, c]] of [...agg].sort((a,b)=>b[1][0]-a[1][0]).slice(0, 14)) console.log(`  ${name.padEnd(22)} ${(ms/reps).toFixed(2).padStart(8)} ms  ${(c/reps).toFixed(0).padStart(5)} calls`);
session.dispose();
