/**
 * Registers tfjs-core's gradient functions. Import this module before calling `tf.grad`.
 *
 * The Node.js entry point of `@tensorflow/tfjs-core` 4.22 (`dist/tf-core.node.js`) registers no
 * gradients: the full `@tensorflow/tfjs` package and `@tensorflow/tfjs-node` register them, but
 * this project depends on tfjs-core alone. Without this module every `tf.grad` fails with
 * "gradient function not found for Sum". tfjs-core's own ES-module file
 * `dist/register_all_gradients.js` registers all 200 of them. It needs the resolution hook in
 * `tfjs-core-resolve-hook.ts` because its imports have no file extensions.
 *
 * The gradient registry is a process-wide global shared by every copy of tfjs-core, so the
 * registrations reach the copy that `import * as tf from '@tensorflow/tfjs-core'` loads.
 * Importing this module costs about 0.6 s once per process (measured on the 2-core project
 * machine, Node 20.20). Registering again, for example after `@tensorflow/tfjs-node` registered
 * the same functions, replaces each entry with an equivalent one.
 */
import * as nodeModule from 'node:module';

import * as tf from '@tensorflow/tfjs-core';

// `module.register` exists from Node.js 20.6; package.json allows any Node.js 20.
if (typeof nodeModule.register !== 'function') {
  throw new Error(
    `register-gradients: Node.js ${process.versions.node} has no module.register, which loading tfjs-core's ` +
      'gradients needs; use Node.js 20.6 or later.',
  );
}
nodeModule.register(new URL('./tfjs-core-resolve-hook.js', import.meta.url));
await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');

/**
 * Returns dy broadcast over the axes of x that `axis` reduced, as a product with ones made by the
 * backend's Fill kernel. tfjs-core's Sum and Mean gradients build those ones as a JavaScript
 * array and upload it: B·D floats per reduction of a [B, D] tensor, about 3% of an FC FDSSM step
 * at D = 784 in a CPU profile. The gradients registered below compute the same values.
 */
function broadcastOverReducedAxes(dy: tf.Tensor, x: tf.Tensor, axis: number | number[]): tf.Tensor {
  const keptShape = x.shape.slice();
  for (const reduced of tf.util.parseAxisParam(axis, x.shape)) keptShape[reduced] = 1;
  return tf.mul(tf.reshape(dy, keptShape), tf.fill(x.shape, 1, 'float32'));
}

tf.registerGradient({
  kernelName: tf.Sum,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as tf.Tensor[];
    const gradient = broadcastOverReducedAxes(dy as tf.Tensor, x!, (attrs as unknown as tf.SumAttrs).axis);
    return { x: () => gradient };
  },
});

tf.registerGradient({
  kernelName: tf.Mean,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as tf.Tensor[];
    const axis = (attrs as unknown as tf.MeanAttrs).axis;
    const reducedSize = tf.util.parseAxisParam(axis, x!.shape).reduce((size, reduced) => size * x!.shape[reduced]!, 1);
    const gradient = tf.div(broadcastOverReducedAxes(dy as tf.Tensor, x!, axis), reducedSize);
    return { x: () => gradient };
  },
});

// The gradient of Square, dy·2x. tfjs-core's version casts x to float32 first, which on wasm
// copies a float32 tensor: 0.17 ms for the [300, 784] energy rows of an FC FDSSM step.
tf.registerGradient({
  kernelName: tf.Square,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved as tf.Tensor[];
    const input = x!.dtype === 'float32' ? x! : tf.cast(x!, 'float32');
    return { x: () => tf.mul(dy as tf.Tensor, tf.mul(input, 2)) };
  },
});
