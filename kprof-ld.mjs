import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '/work/main/dist/src/backend/select.js';
import { logAbsDet } from '/work/main/dist/src/tensor/linalg.js';
import { nativeBlas } from '/work/main/dist/src/tensor/native-blas.js';
await selectBackend('wasm');
const n = Number(process.argv[2] ?? 784);
const w = tf.variable(tf.randomNormal([n, n], 0, 1 / Math.sqrt(n)));
const T = {}; const add = (k, t) => T[k] = Math.min(T[k] ?? 1e9, t);
const blas = nativeBlas();
for (let r = 0; r < 9; r++) {
  let t = performance.now();
  const g = tf.grad((m) => logAbsDet(m))(w); g.dataSync(); g.dispose(); add('grad logAbsDet total', performance.now() - t);
  t = performance.now(); const tr = tf.transpose(w); tr.dataSync(); add('transpose', performance.now() - t);
  t = performance.now(); const v = tr.dataSync(); add('dataSync', performance.now() - t); tr.dispose();
  const piv = new Int32Array(n);
  t = performance.now(); blas.sgetrf(n, v, piv); add('sgetrf', performance.now() - t);
  t = performance.now(); blas.sgetri(n, v, piv); add('sgetri', performance.now() - t);
  t = performance.now(); const x = tf.tensor2d(v, [n, n]); add('upload', performance.now() - t);
  t = performance.now(); const y = tf.mul(tf.scalar(1), x); y.dataSync(); add('mul', performance.now() - t); tf.dispose([x, y]);
}
console.log(n, Object.entries(T).map(([k, v]) => `${k} ${v.toFixed(2)}`).join('; '));
