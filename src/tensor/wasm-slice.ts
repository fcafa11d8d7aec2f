/**
 * Replaces the wasm backend's Slice and SplitV kernels, which copy the whole input out of the
 * WebAssembly heap into a fresh JavaScript buffer for every slice (tfjs-backend-wasm 4.22.0 calls
 * `readSync`), with kernels that read the input in place.
 *
 * The copies cost more than the slices: `tf.split` of a [2B, D] tensor into two halves read the
 * tensor twice and allocated 2 · 8BD bytes of short-lived JavaScript memory, whose garbage
 * collection ran on the step's thread. In an FC SSM step at D = 784 the SplitV kernels took
 * 3–9 ms of a 30–55 ms step (project machine, tf.profile), and their `readSync` calls were the
 * largest JavaScript cost in a CPU profile after the matrix products. String tensors keep the
 * original kernels.
 */
import * as tf from '@tensorflow/tfjs-core';

import { replaceWasmKernel, restoreWasmKernel } from './wasm-memory.js';

/** The members of tfjs-backend-wasm's BackendWasm (4.22.0) these kernels use. */
interface WasmSliceBackend {
  dataIdMap: { get(dataId: object): unknown };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(tensor: tf.TensorInfo): tf.TypedArray;
}

let originals: tf.KernelConfig[] | null = null;

/** Makes Slice and SplitV on wasm read their input in place; a second call does nothing. */
export function installInPlaceSliceKernels(): void {
  if (originals !== null) return;
  const slice = replaceWasmKernel(
    tf.Slice,
    (original) => (args) => {
      const { x } = args.inputs as { x: tf.TensorInfo };
      if (x.dtype === 'string') return original.kernelFunc(args);
      const { begin, size } = args.attrs as unknown as { begin: number | number[]; size?: number | number[] };
      const [start, extent] = tf.slice_util.parseSliceParams(x, begin, size);
      return sliceInPlace(args.backend as WasmSliceBackend, x, start, extent);
    },
    'installInPlaceSliceKernels',
  );
  const splitV = replaceWasmKernel(
    tf.SplitV,
    (original) => (args) => {
      const { x } = args.inputs as { x: tf.TensorInfo };
      if (x.dtype === 'string') return original.kernelFunc(args);
      const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
      const splitAxis = tf.util.parseAxisParam(axis, x.shape)[0]!;
      const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, splitAxis);
      const start = x.shape.map(() => 0);
      return sizes.map((size) => {
        const extent = x.shape.slice();
        extent[splitAxis] = size;
        const part = sliceInPlace(args.backend as WasmSliceBackend, x, start, extent);
        start[splitAxis]! += size;
        return part;
      });
    },
    'installInPlaceSliceKernels',
  );
  originals = [slice, splitV];
}

/** Restores the copying kernels; tests use it to compare both. */
export function uninstallInPlaceSliceKernels(): void {
  if (originals === null) return;
  for (const original of originals) restoreWasmKernel(original);
  originals = null;
}

/**
 * Returns a new tensor holding x[start : start + extent] (every axis). Copies the output's
 * elements once, one contiguous run of the innermost axes at a time; reads nothing else.
 */
function sliceInPlace(backend: WasmSliceBackend, x: tf.TensorInfo, start: number[], extent: number[]): tf.TensorInfo {
  // Every allocation comes before the views, since allocating can grow, and so detach, the heap.
  // Looking x up moves it here when it is on another backend; then the output is allocated.
  backend.dataIdMap.get(x.dataId);
  const out = backend.makeOutput(extent, x.dtype);
  const count = tf.util.sizeFromShape(extent);
  if (count === 0) return out;
  const source = backend.typedArrayFromHeap(x);
  const target = backend.typedArrayFromHeap(out);
  const strides = tf.util.computeStrides(x.shape);
  const rank = x.shape.length;
  if (rank === 0) {
    target[0] = source[0]!;
    return out;
  }

  // The axes after `inner` are taken whole, so each run of `runLength` output elements (axis
  // `inner` and those after it) is contiguous in the input.
  let inner = rank - 1;
  let runLength = extent[inner]!;
  while (inner > 0 && extent[inner] === x.shape[inner]) {
    inner -= 1;
    runLength *= extent[inner]!;
  }
  if (inner === 0 || runLength === count) {
    const offset = start.reduce((sum, s, axis) => sum + s * (strides[axis] ?? 1), 0);
    target.set(source.subarray(offset, offset + count));
    return out;
  }

  // Walk the outer axes [0, inner) like an odometer, copying one run per position.
  const index = new Array<number>(inner).fill(0);
  let offset = start.reduce((sum, s, axis) => sum + s * (strides[axis] ?? 1), 0);
  for (let written = 0; written < count; written += runLength) {
    target.set(source.subarray(offset, offset + runLength), written);
    for (let axis = inner - 1; axis >= 0; axis -= 1) {
      index[axis]! += 1;
      offset += strides[axis]!;
      if (index[axis]! < extent[axis]!) break;
      offset -= index[axis]! * strides[axis]!;
      index[axis] = 0;
    }
  }
  return out;
}
