// Compiles every WebAssembly text file under src/ (*.wat) to a binary module at the same path
// under dist/, where the compiled TypeScript loads it, after inlining its helper functions
// (wat-inline.mjs). Run by `npm run build` after tsc.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import createWabt from 'wabt';

import { inlineHelpers } from './wat-inline.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function textFiles(folder) {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return textFiles(path);
    return entry.name.endsWith('.wat') ? [path] : [];
  });
}

const wabt = await createWabt();
for (const source of textFiles(join(root, 'src'))) {
  const name = relative(root, source);
  let module;
  try {
    // The text as written is checked first, so that errors point at its lines. The module
    // compiled is the one with its helper functions inlined (see wat-inline.mjs).
    const text = readFileSync(source, 'utf8');
    const features = { simd: true, bulk_memory: true };
    const written = wabt.parseWat(name, text, features);
    try {
      written.validate();
    } finally {
      written.destroy();
    }
    module = wabt.parseWat(name, inlineHelpers(text), features);
    module.validate();
  } catch (error) {
    // wabt's error carries its own minified source in the stack, so print only the message.
    console.error(`build-wasm: ${error.message}`);
    process.exit(1);
  }
  try {
    const target = join(root, 'dist', name.replace(/\.wat$/, '.wasm'));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}
