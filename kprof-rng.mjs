import { RandomStream } from '/work/main/dist/src/random/stream.js';
const r = new RandomStream(1);
for (let k = 0; k < 5; k++) {
  let t = performance.now(); r.normalArray(78400); const a = performance.now() - t;
  t = performance.now(); r.uniformArray(78400); const b = performance.now() - t;
  console.log(`normalArray(78400) ${a.toFixed(2)} ms, uniformArray ${b.toFixed(2)} ms`);
}
