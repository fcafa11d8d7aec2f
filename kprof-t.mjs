import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '/work/main/dist/src/backend/select.js';
await selectBackend('wasm');
const m = tf.backend().wasm;
console.log(Object.keys(m).filter(k => /mem|asm|HEAP/i.test(k)), m.asm && Object.keys(m.asm).slice(0, 5), m.asm?.memory instanceof WebAssembly.Memory, m.wasmMemory instanceof WebAssembly.Memory);
