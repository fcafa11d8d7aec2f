import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '/work/main/dist/src/backend/select.js';
import { transposedToeplitz } from '/work/main/dist/src/tensor/toeplitz.js';
import { logAbsDet } from '/work/main/dist/src/tensor/linalg.js';
await selectBackend('wasm');
for (const [h, w, c] of [[28, 28, 1], [14, 14, 4], [7, 7, 16]]) {
  const filter = tf.variable(tf.randomNormal([7, 7, c, c], 0, 0.05));
  let tb = 1e9, tg = 1e9, tl = 1e9;
  for (let r = 0; r < 6; r++) {
    let t = performance.now();
    const T = transposedToeplitz(filter, [h, w, c]); T.dataSync(); tb = Math.min(tb, performance.now() - t); T.dispose();
    t = performance.now();
    const g = tf.grad((f) => tf.sum(tf.mul(transposedToeplitz(f, [h, w, c]), 1.5)))(filter); g.dataSync(); g.dispose(); tg = Math.min(tg, performance.now() - t);
    t = performance.now();
    const g2 = tf.grad((f) => logAbsDet(tf.add(transposedToeplitz(f, [h, w, c]), tf.eye(784))))(filter); g2.dataSync(); g2.dispose(); tl = Math.min(tl, performance.now() - t);
  }
  console.log(`${h}x${w}x${c}: build ${tb.toFixed(2)} ms, build+mul+grad ${tg.toFixed(2)} ms, logdet(T+I) with grad ${tl.toFixed(2)} ms`);
}
