/**
 * A Node.js module-resolution hook that lets tfjs-core's ES-module sources load in Node.
 *
 * `@tensorflow/tfjs-core` 4.22 ships its ES-module build under `dist/` with relative imports
 * that have no file extension (`./gradients/Abs_grad`), which Node's ES-module loader rejects.
 * This hook appends `.js` (or `/index.js` for a folder) to such imports, and only for
 * importers inside `@tensorflow/tfjs-core/dist/`; every other import resolves unchanged.
 * `register-gradients.ts` installs it with `module.register`.
 */

interface ResolveContext {
  parentURL?: string;
}

interface ResolveResult {
  url: string;
  format?: string | null;
  shortCircuit?: boolean;
}

type NextResolve = (specifier: string, context?: ResolveContext) => Promise<ResolveResult>;

const TFJS_CORE_DIST = '/@tensorflow/tfjs-core/dist/';

/** Resolves an extensionless relative import made by a tfjs-core ES-module file. */
export async function resolve(specifier: string, context: ResolveContext, nextResolve: NextResolve): Promise<ResolveResult> {
  const importer = context.parentURL ?? '';
  const isExtensionlessRelative = specifier.startsWith('.') && !/\.(js|mjs|cjs|json)$/.test(specifier);
  if (!importer.includes(TFJS_CORE_DIST) || !isExtensionlessRelative) {
    return nextResolve(specifier, context);
  }
  try {
    return await nextResolve(`${specifier}.js`, context);
  } catch {
    return nextResolve(`${specifier}/index.js`, context);
  }
}
