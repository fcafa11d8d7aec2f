/**
 * Replaces the wasm backend's Identity kernel, which copies the tensor, with one that shares its
 * storage, as the cpu backend and wasm's own Reshape do. tfjs runs Identity for every
 * `tf.clone`, and so for every tensor a custom gradient saves: an FC DSM step at D = 784 ran
 * about 60 of them (2 ms), a CNN step about 170. Sharing is safe because tensors are immutable:
 * kernels write only to outputs they allocate, and a variable's `assign` swaps storage rather
 * than overwriting it.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The members of tfjs-backend-wasm's BackendWasm (4.22.0) this kernel uses. */
interface WasmBackendReferences {
  incRef(dataId: object): void;
}

let originalKernel: tf.KernelConfig | null = null;

/** Makes the wasm backend's Identity share storage; a second call does nothing. */
export function installSharedIdentityKernel(): void {
  if (originalKernel !== null) return;
  const original = tf.getKernel(tf.Identity, 'wasm');
  if (original === undefined) {
    throw new Error('installSharedIdentityKernel: the wasm backend registered no Identity kernel; import @tensorflow/tfjs-backend-wasm first.');
  }
  tf.unregisterKernel(tf.Identity, 'wasm');
  tf.registerKernel({
    kernelName: tf.Identity,
    backendName: 'wasm',
    kernelFunc: (args) => {
      const { x } = args.inputs as { x: tf.TensorInfo };
      if (x.dtype === 'string') return original.kernelFunc(args);
      (args.backend as WasmBackendReferences).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
  originalKernel = original;
}

/** Restores the copying kernel; tests use it to compare both. */
export function uninstallSharedIdentityKernel(): void {
  if (originalKernel === null) return;
  tf.unregisterKernel(tf.Identity, 'wasm');
  tf.registerKernel(originalKernel);
  originalKernel = null;
}
