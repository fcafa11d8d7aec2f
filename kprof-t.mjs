import { RandomStream } from '/work/main/dist/src/random/stream.js';
let worst = 0, worstAt = 0;
const a = new RandomStream(99), b = new RandomStream(99);
const v = a.normalArray(2_000_000);
for (let i = 0; i < v.length; i++) { const e = b.normal(); const err = Math.abs(v[i] - e) / Math.max(1, Math.abs(e)); if (err > worst) { worst = err; worstAt = e; } }
console.log('worst', worst, 'at', worstAt);
for (let k = 0; k < 4; k++) { const t = performance.now(); a.normalArray(78400); const t2 = performance.now(); a.uniformArray(78400); console.log('normalArray', (t2 - t).toFixed(2), 'uniformArray', (performance.now() - t2).toFixed(2)); }
