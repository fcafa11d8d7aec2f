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

// `module.register` exists from Node.js 20.6; package.json allows any Node.js 20.
if (typeof nodeModule.register !== 'function') {
  throw new Error(
    `register-gradients: Node.js ${process.versions.node} has no module.register, which loading tfjs-core's ` +
      'gradients needs; use Node.js 20.6 or later.',
  );
}
nodeModule.register(new URL('./tfjs-core-resolve-hook.js', import.meta.url));
await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
