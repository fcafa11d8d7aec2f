// Compiles every WebAssembly text file under src/ (*.wat) to a binary module at the same path
// under dist/, where the compiled TypeScript loads it. Run by `npm run build` after tsc.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import createWabt from 'wabt';

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
    module = wabt.parseWat(name, readFileSync(source, 'utf8'), { simd: true, bulk_memory: true });
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
