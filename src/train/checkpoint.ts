/**
 * The checkpoint file format: everything a training run needs to resume exactly, in one file.
 *
 * Layout (all integers little-endian):
 *
 *   bytes 0–7     the ASCII magic "EBFLOWCK"
 *   bytes 8–11    H, the header's length in bytes (uint32)
 *   next H bytes  the header, UTF-8 JSON (`CheckpointHeader`): format version, the training config
 *                 and its sha256, the model's architecture, the step counters and random-stream
 *                 state, and per tensor its group, name, shape, dtype and byte range
 *   the rest      the payload: the tensors' values back to back (float32 or int32), whose
 *                 sha256 the header records
 *
 * Tensors are named after their layer and field, such as "dense[0].weight" or
 * "conv[2].spectralState.u", so a mismatch can say which tensor differs. Reading checks the magic,
 * the lengths, the payload checksum and the config hash, and rejects a damaged file with a
 * `CheckpointError` that says what is wrong. `checkpointMismatches` lists every difference between
 * a checkpoint and the session or model it is restored into. Writing goes to a temporary file in
 * the same folder that is renamed over the target, so an interrupted write never leaves a partial
 * checkpoint under the target's name.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import type * as tf from '@tensorflow/tfjs-core';

import type { EnergyFlow } from '../models/energy-flow.js';
import type { RandomState } from '../random/stream.js';
import type { TrainingConfig } from './session.js';

/** The version this code writes and the only one it reads. */
export const CHECKPOINT_FORMAT_VERSION = 1;
/** The first eight bytes of every checkpoint. */
export const CHECKPOINT_MAGIC = 'EBFLOWCK';
const PREAMBLE_BYTES = 12;

/**
 * Config keys that locate input files rather than define the run. They are stored but neither
 * hashed nor compared, so a checkpoint can resume with the data in another folder.
 */
export const LOCATION_KEYS: readonly (keyof TrainingConfig)[] = ['cifarDirectory'];

/** The role of a stored tensor: a trained parameter, its optimiser state, its EMA shadow, a buffer, or the data order. */
export type CheckpointTensorGroup = 'parameter' | 'optimizer' | 'ema' | 'buffer' | 'dataOrder';
export type CheckpointDtype = 'float32' | 'int32';

export interface CheckpointTensor {
  group: CheckpointTensorGroup;
  /** The parameter or buffer name, such as "dense[0].weight"; "order" for the data order. */
  name: string;
  shape: number[];
  /** Float32Array for float32, Int32Array for int32; row-major, `shape`'s product elements. */
  values: Float32Array | Int32Array;
}

/** The scalar state of a session besides its tensors. */
export interface CheckpointCounters {
  /** Training iterations run so far, updated or skipped. */
  iteration: number;
  nonFiniteSteps: number;
  /** RMSprop updates applied so far. */
  optimizerUpdates: number;
  /** EMA updates applied so far, or null when the run has no EMA. */
  emaUpdates: number | null;
  random: RandomState;
}

/** A checkpoint's contents, as written or as read back. */
export interface CheckpointContents {
  config: TrainingConfig;
  /** `model.architecture` of the saved model ("fc", "cnn"). */
  architecture: string;
  counters: CheckpointCounters;
  tensors: CheckpointTensor[];
}

/** One tensor's entry in the header. */
export interface CheckpointTensorEntry {
  group: CheckpointTensorGroup;
  name: string;
  shape: number[];
  dtype: CheckpointDtype;
  /** Offset from the start of the payload, a multiple of 4. */
  byteOffset: number;
  byteLength: number;
}

/** The JSON header of a checkpoint file. */
export interface CheckpointHeader {
  format: 'ebflow-checkpoint';
  formatVersion: number;
  config: TrainingConfig;
  /** `configHash(config)`, hex sha256. */
  configHash: string;
  architecture: string;
  counters: CheckpointCounters;
  tensors: CheckpointTensorEntry[];
  payloadBytes: number;
  /** Hex sha256 of the payload. */
  payloadSha256: string;
}

/** The reason a checkpoint could not be used. */
export type CheckpointProblem = 'missing' | 'corrupt' | 'unsupported' | 'mismatch';

/** An unreadable, damaged or mismatched checkpoint, with a message that names the problem and the fix. */
export class CheckpointError extends Error {
  constructor(
    readonly path: string,
    readonly problem: CheckpointProblem,
    message: string,
  ) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** A model tensor with its checkpoint name. */
export interface NamedVariable {
  name: string;
  variable: tf.Variable;
}

/** The shape of a tensor a session expects in a checkpoint, for `checkpointMismatches`. */
export interface ExpectedTensor {
  group: CheckpointTensorGroup;
  name: string;
  shape: number[];
}

const IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Returns the hex sha256 of the config's canonical JSON (keys sorted, `LOCATION_KEYS` left out).
 * Two configs that define the same run have the same hash. O(size of the config).
 */
export function configHash(config: TrainingConfig): string {
  return createHash('sha256').update(canonicalJson(withoutLocations(config)) ?? '').digest('hex');
}

/**
 * Names the model's trainable variables and its buffers (non-trained state such as spectral-norm
 * vectors) after their layer and field: "<layer name>.<field>", for example "dense[0].weight" or
 * "conv[1].spectralState.v". A tensor not found among its layer's fields is named by position
 * ("dense[0].variables[1]"). O(number of layers).
 */
export function namedModelTensors(model: EnergyFlow): { parameters: NamedVariable[]; buffers: NamedVariable[] } {
  const parameters: NamedVariable[] = [];
  const buffers: NamedVariable[] = [];
  for (const layer of model.layers) {
    layer.variables.forEach((variable, i) => {
      parameters.push({ name: `${layer.name}.${fieldPath(layer, variable) ?? `variables[${i}]`}`, variable });
    });
    const layerBuffers = (layer as { buffers?: unknown }).buffers;
    if (Array.isArray(layerBuffers)) {
      layerBuffers.forEach((variable: tf.Variable, i) => {
        buffers.push({ name: `${layer.name}.${fieldPath(layer, variable) ?? `buffers[${i}]`}`, variable });
      });
    }
  }
  // Buffers the model keeps outside its layers.
  const modelBuffers = (model as { buffers?: unknown }).buffers;
  if (Array.isArray(modelBuffers)) {
    const known = new Set(buffers.map((entry) => entry.variable));
    modelBuffers.forEach((variable: tf.Variable, i) => {
      if (!known.has(variable)) buffers.push({ name: `model.buffers[${i}]`, variable });
    });
  }

  const parameterOrder = new Map(model.variables.map((variable, i) => [variable, i]));
  if (parameters.length !== model.variables.length || parameters.some((entry) => !parameterOrder.has(entry.variable))) {
    throw new Error(
      `checkpoint: the variables of ${model.architecture}'s layers (${parameters.length}) differ from model.variables ` +
        `(${model.variables.length}); a model must list exactly its layers' variables`,
    );
  }
  parameters.sort((a, b) => (parameterOrder.get(a.variable) as number) - (parameterOrder.get(b.variable) as number));
  const names = new Set<string>();
  for (const { name } of [...parameters, ...buffers]) {
    if (names.has(name)) {
      throw new Error(`checkpoint: two tensors of the ${model.architecture} model are both named "${name}"; give the layers distinct names`);
    }
    names.add(name);
  }
  return { parameters, buffers };
}

/**
 * Writes `contents` to `path` atomically: the file is written and flushed under a temporary name
 * in the same folder, then renamed to `path`, replacing an existing file. Two passes over the
 * tensors (checksum, write). O(total tensor bytes).
 */
export async function writeCheckpoint(path: string, contents: CheckpointContents): Promise<void> {
  if (!IS_LITTLE_ENDIAN) {
    // NOTE: the payload is the host's float32 bytes; big-endian hosts would need a byte swap.
    throw new CheckpointError(path, 'unsupported', 'checkpoint: writing needs a little-endian host; this host is big-endian');
  }

  // 1. The header with the byte ranges and the payload checksum.
  const entries: CheckpointTensorEntry[] = [];
  const hash = createHash('sha256');
  let offset = 0;
  for (const tensor of contents.tensors) {
    checkTensor(tensor);
    const bytes = tensorBytes(tensor.values);
    entries.push({
      group: tensor.group,
      name: tensor.name,
      shape: [...tensor.shape],
      dtype: tensor.values instanceof Int32Array ? 'int32' : 'float32',
      byteOffset: offset,
      byteLength: bytes.length,
    });
    hash.update(bytes);
    offset += bytes.length;
  }
  const header: CheckpointHeader = {
    format: 'ebflow-checkpoint',
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    config: contents.config,
    configHash: configHash(contents.config),
    architecture: contents.architecture,
    counters: contents.counters,
    tensors: entries,
    payloadBytes: offset,
    payloadSha256: hash.digest('hex'),
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const preamble = Buffer.alloc(PREAMBLE_BYTES);
  preamble.write(CHECKPOINT_MAGIC, 0, 'ascii');
  preamble.writeUInt32LE(headerBytes.length, 8);

  // 2. The temporary file, flushed, then renamed over the target.
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const file = await open(temporary, 'wx');
  try {
    await file.write(preamble);
    await file.write(headerBytes);
    for (const tensor of contents.tensors) await file.write(tensorBytes(tensor.values));
    await file.sync();
    await file.close();
    await rename(temporary, path);
  } catch (error) {
    await file.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
}

/**
 * Reads and checks a checkpoint file. Throws a `CheckpointError` when the file is missing, is not
 * a checkpoint, is truncated, fails its payload checksum or config hash, or has a newer format
 * version. O(file size).
 */
export async function readCheckpoint(path: string): Promise<CheckpointContents> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CheckpointError(path, 'missing', `checkpoint ${path} not found; pass the path of a file written by saveCheckpoint`);
    }
    throw error;
  }
  return decodeCheckpoint(bytes, path);
}

/** Decodes and checks the bytes of a checkpoint file; `path` is only used in messages. O(size). */
export function decodeCheckpoint(bytes: Uint8Array, path: string): CheckpointContents {
  const corrupt = (reason: string): CheckpointError =>
    new CheckpointError(path, 'corrupt', `checkpoint ${path} is damaged: ${reason}. Use another checkpoint or write it again`);

  // 1. The preamble and the header.
  if (bytes.length < PREAMBLE_BYTES) {
    throw corrupt(`it has ${bytes.length} bytes, fewer than the ${PREAMBLE_BYTES}-byte preamble (the file is truncated)`);
  }
  const magic = Buffer.from(bytes.subarray(0, 8)).toString('latin1');
  if (magic !== CHECKPOINT_MAGIC) {
    throw new CheckpointError(
      path,
      'corrupt',
      `${path} is not an EBFlow checkpoint: it starts with ${JSON.stringify(magic)}, not "${CHECKPOINT_MAGIC}"; pass a file written by saveCheckpoint`,
    );
  }
  const headerLength = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32LE(8);
  if (PREAMBLE_BYTES + headerLength > bytes.length) {
    throw corrupt(`the header declares ${headerLength} bytes but only ${bytes.length - PREAMBLE_BYTES} follow the preamble (the file is truncated)`);
  }
  let header: CheckpointHeader;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength)).toString('utf8')) as CheckpointHeader;
  } catch (error) {
    throw corrupt(`its header is not valid JSON (${(error as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || header.format !== 'ebflow-checkpoint') {
    throw corrupt('its header has no "format": "ebflow-checkpoint" entry');
  }
  if (header.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
    throw new CheckpointError(
      path,
      'unsupported',
      `checkpoint ${path} has format version ${JSON.stringify(header.formatVersion)}, but this code reads version ${CHECKPOINT_FORMAT_VERSION} only; ` +
        'read it with the version of ebflow-bench that wrote it',
    );
  }

  // 2. The payload's length and checksum, and the config hash.
  const payload = bytes.subarray(PREAMBLE_BYTES + headerLength);
  if (payload.length < header.payloadBytes) {
    throw corrupt(`its payload has ${payload.length} bytes, the header declares ${header.payloadBytes} (the file is truncated)`);
  }
  if (payload.length > header.payloadBytes) {
    throw corrupt(`its payload has ${payload.length} bytes, ${payload.length - header.payloadBytes} more than the header declares`);
  }
  const payloadSha256 = createHash('sha256').update(payload).digest('hex');
  if (payloadSha256 !== header.payloadSha256) {
    throw corrupt(`the payload's sha256 is ${payloadSha256}, the header records ${header.payloadSha256} (checksum mismatch)`);
  }
  const recomputedHash = configHash(header.config);
  if (recomputedHash !== header.configHash) {
    throw corrupt(`the config's sha256 is ${recomputedHash}, the header records ${header.configHash} (the header was edited or corrupted)`);
  }

  const counterProblem = checkCounters(header.counters);
  if (counterProblem !== null) throw corrupt(`its header's counters are invalid: ${counterProblem}`);

  // 3. The tensors.
  const tensors: CheckpointTensor[] = [];
  let expectedOffset = 0;
  for (const entry of header.tensors) {
    const label = describeTensor(entry.group, entry.name);
    const elements = Array.isArray(entry.shape) ? entry.shape.reduce((product, size) => product * size, 1) : Number.NaN;
    const validEntry =
      (entry.dtype === 'float32' || entry.dtype === 'int32') &&
      entry.byteOffset === expectedOffset &&
      entry.byteLength === elements * 4 &&
      entry.byteOffset + entry.byteLength <= payload.length;
    if (!validEntry) {
      throw corrupt(`the header's entry for ${label} (shape ${formatShape(entry.shape)}, ${entry.dtype}, bytes ${entry.byteOffset}+${entry.byteLength}) is inconsistent`);
    }
    // Copy, so the typed array is aligned and does not keep the whole file alive.
    const copy = new Uint8Array(entry.byteLength);
    copy.set(payload.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength));
    const values = entry.dtype === 'int32' ? new Int32Array(copy.buffer) : new Float32Array(copy.buffer);
    tensors.push({ group: entry.group, name: entry.name, shape: [...entry.shape], values });
    expectedOffset += entry.byteLength;
  }
  if (expectedOffset !== header.payloadBytes) {
    throw corrupt(`the header's tensors cover ${expectedOffset} bytes of the ${header.payloadBytes}-byte payload`);
  }
  return { config: header.config, architecture: header.architecture, counters: header.counters, tensors };
}

/**
 * Lists every difference between a checkpoint and what a session or model expects: config values
 * (except `LOCATION_KEYS`), the architecture, tensors missing on either side and tensors of
 * another shape, such as "checkpoint has dense[0].weight of shape [784,784], the model expects
 * [400,400]". Returns an empty list when the checkpoint fits. The data order is left to the
 * caller. O(number of tensors + config size).
 */
export function checkpointMismatches(
  contents: CheckpointContents,
  expected: { config: TrainingConfig; architecture: string; tensors: readonly ExpectedTensor[] },
): string[] {
  const problems: string[] = [];

  const saved = withoutLocations(contents.config) as Record<string, unknown>;
  const current = withoutLocations(expected.config) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(current)])].sort();
  for (const key of keys) {
    const savedValue = canonicalJson(saved[key]);
    const currentValue = canonicalJson(current[key]);
    if (savedValue !== currentValue) {
      problems.push(`config.${key} is ${savedValue ?? 'absent'} in the checkpoint and ${currentValue ?? 'absent'} here`);
    }
  }
  if (contents.architecture !== expected.architecture) {
    problems.push(`checkpoint holds a "${contents.architecture}" model, this one is "${expected.architecture}"`);
  }

  const savedTensors = new Map(
    contents.tensors.filter((t) => t.group !== 'dataOrder').map((t) => [`${t.group}\u0000${t.name}`, t]),
  );
  for (const tensor of expected.tensors) {
    if (tensor.group === 'dataOrder') continue;
    const key = `${tensor.group}\u0000${tensor.name}`;
    const found = savedTensors.get(key);
    const label = describeTensor(tensor.group, tensor.name);
    if (found === undefined) {
      problems.push(`checkpoint has no ${label}; the model expects one of shape ${formatShape(tensor.shape)}`);
    } else if (formatShape(found.shape) !== formatShape(tensor.shape)) {
      problems.push(`checkpoint has ${label} of shape ${formatShape(found.shape)}, the model expects ${formatShape(tensor.shape)}`);
    }
    savedTensors.delete(key);
  }
  for (const extra of savedTensors.values()) {
    problems.push(`checkpoint has ${describeTensor(extra.group, extra.name)} of shape ${formatShape(extra.shape)}, which the model does not have`);
  }
  return problems;
}

/** Returns "dense[0].weight", "the RMSprop average of dense[0].weight", …, for messages. */
export function describeTensor(group: CheckpointTensorGroup, name: string): string {
  switch (group) {
    case 'parameter':
      return name;
    case 'optimizer':
      return `the optimiser state of ${name}`;
    case 'ema':
      return `the EMA shadow of ${name}`;
    case 'buffer':
      return `buffer ${name}`;
    case 'dataOrder':
      return 'the data order';
    default:
      return `${String(group)} ${name}`;
  }
}

/** Formats a shape as "[784,784]". */
export function formatShape(shape: readonly number[]): string {
  return Array.isArray(shape) ? `[${shape.join(',')}]` : JSON.stringify(shape);
}

/** Returns what is wrong with stored counters, or null when they are valid. */
function checkCounters(counters: CheckpointCounters | undefined): string | null {
  if (counters === null || typeof counters !== 'object') return 'the "counters" entry is missing';
  const count = (value: unknown): boolean => Number.isInteger(value) && (value as number) >= 0;
  for (const key of ['iteration', 'nonFiniteSteps', 'optimizerUpdates'] as const) {
    if (!count(counters[key])) return `${key} is ${JSON.stringify(counters[key])}, not a non-negative integer`;
  }
  if (counters.emaUpdates !== null && !count(counters.emaUpdates)) {
    return `emaUpdates is ${JSON.stringify(counters.emaUpdates)}, not null or a non-negative integer`;
  }
  const words = counters.random?.words;
  if (!Array.isArray(words) || words.length !== 4 || !words.every((word) => count(word) && word < 2 ** 32)) {
    return `random.words is ${JSON.stringify(words)}, not four 32-bit unsigned integers`;
  }
  return null;
}

function checkTensor(tensor: CheckpointTensor): void {
  const elements = tensor.shape.reduce((product, size) => product * size, 1);
  if (!(tensor.values instanceof Float32Array || tensor.values instanceof Int32Array) || tensor.values.length !== elements) {
    throw new RangeError(
      `checkpoint: ${describeTensor(tensor.group, tensor.name)} has ${tensor.values.length} values for shape ${formatShape(tensor.shape)}; ` +
        'pass a Float32Array or Int32Array with one value per element',
    );
  }
}

function tensorBytes(values: Float32Array | Int32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** Returns the name of the field of `owner` (or of one of its plain-object fields) that contains `target`. */
function fieldPath(owner: object, target: unknown): string | null {
  for (const [key, value] of Object.entries(owner)) {
    if (key === 'variables' || key === 'buffers') continue;
    if (value === target) return key;
  }
  for (const [key, value] of Object.entries(owner)) {
    if (key === 'variables' || key === 'buffers' || value === null || typeof value !== 'object' || Array.isArray(value)) continue;
    if (Object.getPrototypeOf(value) !== Object.prototype) continue;
    for (const [inner, innerValue] of Object.entries(value as object)) {
      if (innerValue === target) return `${key}.${inner}`;
    }
  }
  return null;
}

function withoutLocations(config: TrainingConfig): Partial<TrainingConfig> {
  const copy: Partial<TrainingConfig> = { ...config };
  for (const key of LOCATION_KEYS) delete copy[key];
  return copy;
}

/** JSON with object keys sorted, so equal values give equal text; undefined for undefined. */
function canonicalJson(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  return JSON.stringify(value, (_key, item: unknown) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return item;
    const sortedKeys = Object.keys(item).sort();
    const sorted: Record<string, unknown> = {};
    for (const key of sortedKeys) sorted[key] = (item as Record<string, unknown>)[key];
    return sorted;
  });
}
