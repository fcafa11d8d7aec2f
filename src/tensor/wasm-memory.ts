/**
 * Direct access to tensors in the memory of tfjs-backend-wasm, for code that works on their
 * values in place instead of through one backend kernel per arithmetic operation:
 * - the project's WebAssembly SIMD kernels (`kernels/*.wat`, compiled to .wasm by `npm run
 *   build`) import that memory, and take tensors as the byte offsets of their values;
 * - native routines (OpenBLAS through `native-blas.ts`) take Float32Array views of it.
 * Any allocation can grow the memory, after which an older view no longer covers all of it (a
 * view of an unshared memory is detached), so views are made after the last allocation they
 * must survive and never kept. Only the wasm backend
 * qualifies.
 */
import { readFileSync } from 'node:fs';

import * as tf from '@tensorflow/tfjs-core';

/** The members of tfjs-backend-wasm's BackendWasm (4.22.0) used here. */
export interface WasmBackendInternals {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  wasm: { asm?: { memory?: unknown }; HEAPU8: Uint8Array };
}

/** The parts of the global WebAssembly API used here (the project's TypeScript libs omit its types). */
interface WebAssemblyApi {
  Memory: abstract new (...args: never[]) => object;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
}
const webAssembly = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

/** Instances per kernel file, with the memory they were bound to. */
const instances = new Map<string, { memory: object; exports: object }>();

/** Returns the wasm backend's WebAssembly.Memory, or null when another backend is active. */
export function backendMemory(): { buffer: ArrayBufferLike } | null {
  if (tf.getBackend() !== 'wasm') return null;
  const memory = (tf.backend() as unknown as WasmBackendInternals).wasm.asm?.memory;
  return memory instanceof webAssembly.Memory ? (memory as { buffer: ArrayBufferLike }) : null;
}

/** Returns whether the kernels can run: the current backend is wasm and exposes its memory. */
export function wasmKernelsAvailable(): boolean {
  return backendMemory() !== null;
}

/**
 * Returns the exports of `kernels/<file>` bound to the wasm backend's memory, compiling the
 * module on first use (its `.shared.wasm` variant when that memory is shared). Throws, naming `caller` and the fix, off the wasm
 * backend or when the compiled file is missing.
 */
export function wasmKernels<T>(file: string, caller: string): { backend: WasmBackendInternals; kernels: T } {
  const memory = backendMemory();
  if (memory === null) {
    throw new Error(`${caller}: the WebAssembly kernels need the wasm backend, but ${tf.getBackend()} is active; use the tensor-op path.`);
  }
  let instance = instances.get(file);
  if (instance === undefined || instance.memory !== memory) {
    // A shared memory (see threads/pool.ts) needs the variant of the module that imports one.
    const shared = memory.buffer instanceof SharedArrayBuffer;
    const url = new URL(`./kernels/${shared ? file.replace(/\.wasm$/, '.shared.wasm') : file}`, import.meta.url);
    instance = { memory, exports: instantiateCompiledModule(url, { env: { memory } }, caller) };
    instances.set(file, instance);
  }
  return { backend: tf.backend() as unknown as WasmBackendInternals, kernels: instance.exports as T };
}

/**
 * Compiles the WebAssembly module at `url` (a .wasm file that `npm run build` writes from a .wat
 * source) and returns its exports. Throws, naming `caller` and the fix, when the file is missing.
 */
export function instantiateCompiledModule(url: URL, imports: object, caller: string): object {
  return new webAssembly.Instance(compiledModule(url, caller), imports).exports;
}

/** Compiled modules by file URL: every instance of a file shares one compilation. */
const modules = new Map<string, object>();

/**
 * Returns the compiled WebAssembly module at `url`, compiling it on first use. Worker threads
 * that receive it (see threads/pool.ts) share its machine code, including what V8 optimised
 * after the module grew hot here. Throws, naming `caller` and the fix, when the file is missing.
 */
export function compiledModule(url: URL, caller: string): object {
  let module = modules.get(url.href);
  if (module === undefined) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(url);
    } catch (error) {
      throw new Error(`${caller}: cannot read ${url.pathname} (${(error as Error).message}); run \`npm run build\`, which compiles the src/**/*.wat kernels.`);
    }
    module = new webAssembly.Module(bytes);
    modules.set(url.href, module);
  }
  return module;
}

/**
 * Replaces the wasm backend's kernel `kernelName` with the one `makeKernel` builds from the
 * original, and returns the original for `restoreWasmKernel`. Throws when the backend registered
 * no such kernel.
 */
export function replaceWasmKernel(kernelName: string, makeKernel: (original: tf.KernelConfig) => tf.KernelFunc, caller: string): tf.KernelConfig {
  const original = tf.getKernel(kernelName, 'wasm');
  if (original === undefined) {
    throw new Error(`${caller}: the wasm backend registered no ${kernelName} kernel; import @tensorflow/tfjs-backend-wasm first.`);
  }
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ kernelName, backendName: 'wasm', setupFunc: original.setupFunc, kernelFunc: makeKernel(original) });
  return original;
}

/** Registers `original` again in place of a kernel that `replaceWasmKernel` installed. */
export function restoreWasmKernel(original: tf.KernelConfig): void {
  tf.unregisterKernel(original.kernelName, 'wasm');
  tf.registerKernel(original);
}

/** Returns the byte offset of a float32 tensor's values in the wasm backend's memory. */
export function offsetOf(backend: WasmBackendInternals, tensor: tf.TensorInfo, caller: string): number {
  if (tensor.dtype !== 'float32') throw new Error(`${caller}: tensors must be float32, received ${tensor.dtype}; cast them first.`);
  // DataStorage.get moves a tensor held by another backend here (which allocates). For a disposed
  // tensor that move fails with a TypeError, so the message below replaces it.
  let entry: { memoryOffset: number } | undefined;
  try {
    entry = backend.dataIdMap.get(tensor.dataId);
  } catch {
    entry = undefined;
  }
  if (entry === undefined) throw new Error(`${caller}: a tensor has no storage on the wasm backend; was it disposed?`);
  return entry.memoryOffset;
}

/**
 * Returns a view of the float32 values of `tensor` on the wasm backend, valid until the next
 * allocation on the backend. Writing to it changes the tensor (and every tensor sharing its
 * storage). O(1).
 */
export function wasmFloat32View(tensor: tf.TensorInfo): Float32Array {
  const backend = wasmBackend('wasmFloat32View');
  const offset = offsetOf(backend, tensor, 'wasmFloat32View');
  return new Float32Array(backend.wasm.HEAPU8.buffer, offset, tf.util.sizeFromShape(tensor.shape));
}

/**
 * Allocates a float32 tensor of `shape` on the wasm backend, lets `fill` write all of its values
 * through a view, and returns it. `fill` must not allocate tensors. O(1) besides `fill`.
 */
export function wasmTensorFrom(shape: number[], fill: (values: Float32Array) => void): tf.Tensor {
  const backend = wasmBackend('wasmTensorFrom');
  // Made a tensor first, so that it is disposed (and its memory freed) when `fill` throws.
  const tensor = tf.engine().makeTensorFromTensorInfo(backend.makeOutput(shape, 'float32'));
  try {
    fill(wasmFloat32View(tensor));
  } catch (error) {
    tensor.dispose();
    throw error;
  }
  return tensor;
}

/**
 * Returns a float32 tensor of `shape` whose values `fill` writes. On the wasm backend `fill`
 * writes straight into the tensor's memory (see `wasmTensorFrom`), elsewhere into a new
 * Float32Array that becomes the tensor. Saves a JavaScript array per call on wasm: a fresh array
 * of 78,400 values cost 0.18 ms to allocate and copy into (median, project machine). O(size).
 */
export function float32TensorFrom(shape: number[], fill: (values: Float32Array) => void): tf.Tensor {
  if (wasmKernelsAvailable()) return wasmTensorFrom(shape, fill);
  const values = new Float32Array(tf.util.sizeFromShape(shape));
  fill(values);
  return tf.tensor(values, shape, 'float32');
}

function wasmBackend(caller: string): WasmBackendInternals {
  if (tf.getBackend() !== 'wasm') {
    throw new Error(`${caller}: needs the wasm backend, but ${tf.getBackend()} is active; use tensor operations there.`);
  }
  return tf.backend() as unknown as WasmBackendInternals;
}
