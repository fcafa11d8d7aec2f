import { selectBackend } from '/work/main/dist/src/backend/select.js';
import { resolveTrainingConfig } from '/work/main/dist/src/train/config.js';
import { createTrainingSession } from '/work/main/dist/src/train/session-impl.js';
const [cell, objective] = process.argv.slice(2);
const shape = cell === 'fc3072' ? [32,32,3] : [28,28,1];
await selectBackend('wasm');
const config = resolveTrainingConfig({ dataset: 'synthetic', architecture: cell === 'cnn' ? 'cnn' : 'fc', objective, imageShape: shape, depth: 2, batchSize: 100, seed: 0 });
const session = await createTrainingSession(config);
for (let i = 0; i < 3; i++) await session.step();
const rows = [];
for (let i = 0; i < 15; i++) { const s = performance.now(); const r = await session.step(); rows.push({ total: performance.now() - s, ...r.phases }); }
const med = (k) => { const v = rows.map(r => r[k]).sort((a, b) => a - b); return v[7].toFixed(2); };
console.log(cell, objective, ['total', 'preprocess', 'prepare', 'forwardBackward', 'update'].map(k => `${k} ${med(k)}`).join('  '));
session.dispose();
