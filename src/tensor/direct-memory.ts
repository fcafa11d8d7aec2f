/**
 * Direct access to the float32 storage of tensors on the wasm backend, so that native routines
 * (OpenBLAS through `native-blas.ts`) read their inputs and write their outputs in place,
 * without the copies of `dataSync` and `tf.tensor`.
 *
 * A tensor's values live in the module's heap. A view is a Float32Array over that heap, and
 * it becomes detached when the heap grows. Any allocation can grow it, so views are made only
 * after the last allocation they must survive, and never kept.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The members of tfjs-backend-wasm's BackendWasm (4.22.0) used here. */
interface WasmBackendInternals {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  wasm: { HEAPU8: Uint8Array };
}

function wasmBackend(caller: string): WasmBackendInternals {
  if (tf.getBackend() !== 'wasm') {
    throw new Error(`${caller}: needs the wasm backend, but ${tf.getBackend()} is active; use tensor operations there.`);
  }
  return tf.backend() as unknown as WasmBackendInternals;
}

/**
 * Returns a view of the float32 values of `tensor` on the wasm backend, valid until the next
 * allocation on the backend. Writing to it changes the tensor (and every tensor sharing its
 * storage). O(1).
 */
export function wasmFloat32View(tensor: tf.TensorInfo): Float32Array {
  const backend = wasmBackend('wasmFloat32View');
  if (tensor.dtype !== 'float32') throw new Error(`wasmFloat32View: the tensor is ${tensor.dtype}; cast it to float32 first.`);
  const entry = backend.dataIdMap.get(tensor.dataId);
  if (entry === undefined) throw new Error('wasmFloat32View: the tensor has no storage on the wasm backend; was it disposed?');
  return new Float32Array(backend.wasm.HEAPU8.buffer, entry.memoryOffset, tf.util.sizeFromShape(tensor.shape));
}

/**
 * Allocates a float32 tensor of `shape` on the wasm backend, lets `fill` write all of its values
 * through a view, and returns it. `fill` must not allocate tensors. O(1) besides `fill`.
 */
export function wasmTensorFrom(shape: number[], fill: (values: Float32Array) => void): tf.Tensor {
  const backend = wasmBackend('wasmTensorFrom');
  const info = backend.makeOutput(shape, 'float32');
  fill(wasmFloat32View(info));
  return tf.engine().makeTensorFromTensorInfo(info);
}
