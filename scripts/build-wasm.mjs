// Compiles every WebAssembly text file under src/ (*.wat) to a binary module at the same path
// under dist/, where the compiled TypeScript loads it, after inlining its helper functions
// (wat-inline.mjs). Run by `npm run build` after tsc.
//
// A module that imports the wasm backend's memory is compiled twice: as written, and as
// <name>.shared.wasm, importing a shared memory. The second variant runs on the shared memory
// that src/tensor/threads/pool.ts gives the backend, on this thread and in worker threads. The
// backend's own binary gets a shared-memory copy too (see shareDefinedMemory).
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

/** The memory import of the kernels that work on the wasm backend's tensors, as written. */
const BACKEND_MEMORY_IMPORT = '(import "env" "memory" (memory 1))';
/** The same import of a shared memory; a shared memory needs a maximum (here 4 GiB, the backend's). */
const SHARED_MEMORY_IMPORT = '(import "env" "memory" (memory 1 65536 shared))';

/** Compiles WebAssembly text to a binary at `target`; exits with wabt's message on an error. */
function compile(wabt, name, text, target, features) {
  let module;
  try {
    module = wabt.parseWat(name, text, features);
    module.validate(features);
  } catch (error) {
    // wabt's error carries its own minified source in the stack, so print only the message.
    console.error(`build-wasm: ${error.message}`);
    process.exit(1);
  }
  try {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

/**
 * Returns a copy of a module's bytes whose own (not imported) memory is shared. Throws when the
 * module defines no memory or its memory has no maximum, which a shared memory needs. The
 * instructions stay as they are: every load and store is valid on a shared memory.
 */
function shareDefinedMemory(bytes) {
  const copy = Uint8Array.from(bytes);
  let position = 8;
  const readUnsigned = () => {
    let value = 0;
    let shift = 0;
    let byte;
    do {
      byte = copy[position++];
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return value;
  };
  while (position < copy.length) {
    const section = copy[position++];
    const length = readUnsigned();
    const start = position;
    if (section === 5) {
      readUnsigned(); // the number of memories
      if (copy[position] !== 0x01) throw new Error(`its memory has limit flags ${copy[position]}, not 1 (a maximum, not shared)`);
      copy[position] = 0x03;
      return copy;
    }
    position = start + length;
  }
  throw new Error('it defines no memory');
}

const wabt = await createWabt();
for (const source of textFiles(join(root, 'src'))) {
  const name = relative(root, source);
  const text = readFileSync(source, 'utf8');
  const features = { simd: true, bulk_memory: true };
  // The text as written is checked first, so that errors point at its lines. The module
  // compiled is the one with its helper functions inlined (see wat-inline.mjs).
  try {
    const written = wabt.parseWat(name, text, features);
    try {
      written.validate();
    } finally {
      written.destroy();
    }
  } catch (error) {
    console.error(`build-wasm: ${error.message}`);
    process.exit(1);
  }
  const inlined = inlineHelpers(text);
  const target = join(root, 'dist', name.replace(/\.wat$/, '.wasm'));
  compile(wabt, name, inlined, target, features);
  // Once the backend's memory is shared, wasm-memory.ts loads the .shared.wasm variant of every
  // module that imports it, so a memory import in any other form must stop the build here.
  if (inlined.includes('(import "env" "memory"') && !inlined.includes(BACKEND_MEMORY_IMPORT)) {
    console.error(`build-wasm: ${name} imports "env" "memory" in a form other than ${BACKEND_MEMORY_IMPORT}, the text that its shared-memory variant replaces; write the import exactly as that.`);
    process.exit(1);
  }
  if (inlined.includes(BACKEND_MEMORY_IMPORT)) {
    const shared = inlined.replace(BACKEND_MEMORY_IMPORT, SHARED_MEMORY_IMPORT);
    compile(wabt, name, shared, target.replace(/\.wasm$/, '.shared.wasm'), { ...features, threads: true });
  }
}

// The wasm backend's SIMD binary with a shared memory, next to the kernels.
const backendBinary = join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist', 'tfjs-backend-wasm-simd.wasm');
try {
  writeFileSync(join(root, 'dist', 'src', 'tensor', 'kernels', 'tfjs-backend-wasm-simd.shared.wasm'), shareDefinedMemory(readFileSync(backendBinary)));
} catch (error) {
  console.error(`build-wasm: cannot make a shared-memory copy of ${backendBinary}: ${error.message}; reinstall dependencies with \`npm ci\`.`);
  process.exit(1);
}
