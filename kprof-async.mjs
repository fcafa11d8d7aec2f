import koffi from 'koffi';
const lib = koffi.load('libopenblas.so.0');
const sgetrf = lib.func('void sgetrf_(int *m, int *n, float *a, int *lda, int *ipiv, int *info)');
const sgetri = lib.func('void sgetri_(int *n, float *a, int *lda, int *ipiv, float *work, int *lwork, int *info)');
const setThreads = lib.func('void openblas_set_num_threads(int threads)');
const n = Number(process.argv[2] ?? 784);
function mat(seed) { const a = new Float32Array(n*n); let s = seed; for (let i = 0; i < a.length; i++) { s = (s * 1103515245 + 12345) % 2147483648; a[i] = (s / 2147483648 - 0.5) * 2 / Math.sqrt(n); } return a; }
function job(a) { // sync
  const size = new Int32Array([n]); const info = new Int32Array(1); const piv = new Int32Array(n);
  sgetrf(size, size, a, size, piv, info);
  const lw = new Int32Array([64*n]); const work = new Float32Array(64*n);
  sgetri(size, a, size, piv, work, lw, info); return a;
}
function call(f, ...args) { return new Promise((res, rej) => f.async(...args, (e, r) => e ? rej(e) : res(r))); }
async function jobAsync(a) {
  const size = new Int32Array([n]); const info = new Int32Array(1); const piv = new Int32Array(n);
  await call(sgetrf, size, size, a, size, piv, info);
  const lw = new Int32Array([64*n]); const work = new Float32Array(64*n);
  await call(sgetri, size, a, size, piv, work, lw, info); return a;
}
const A = mat(1), B = mat(2);
for (const threads of [2, 1]) {
  setThreads(threads);
  let best = 1e9; for (let r = 0; r < 7; r++) { const a = A.slice(), b = B.slice(); const t = performance.now(); job(a); job(b); best = Math.min(best, performance.now()-t); }
  console.log(`sequential, ${threads} threads: ${best.toFixed(1)} ms for two`);
}
setThreads(1);
let best = 1e9; let ra, rb;
for (let r = 0; r < 7; r++) { const a = A.slice(), b = B.slice(); const t = performance.now(); [ra, rb] = await Promise.all([jobAsync(a), jobAsync(b)]); best = Math.min(best, performance.now()-t); }
console.log(`concurrent async, 1 thread each: ${best.toFixed(1)} ms for two`);
const sa = job(A.slice()), sb = job(B.slice());
let diff = 0; for (let i = 0; i < n*n; i++) diff = Math.max(diff, Math.abs(sa[i]-ra[i]), Math.abs(sb[i]-rb[i]));
console.log('max diff vs sequential', diff);
