/**
 * The peer protocol, version 1: messages between ebflow-bench and a peer engine process.
 *
 * A peer is a long-running process that reads JSON requests, one per line, on standard input and
 * writes JSON responses, one per line, on standard output. It sends `hello` once at start, responds
 * to every `run` with a `result` or an `error`, and exits on `shutdown`. Every message carries
 * `protocol: 1`. benchmarks/peers/PROTOCOL.md is the full description for peer authors.
 *
 * This module only types, validates and encodes messages; it starts no process.
 */
import { OBJECTIVE_NAMES, type ObjectiveName } from '../objectives/objective.js';

export const PEER_PROTOCOL_VERSION = 1;

export type PeerArchitecture = 'fc' | 'cnn';
export const PEER_ARCHITECTURES: readonly PeerArchitecture[] = ['fc', 'cnn'];

/** Image shape [H, W, C] of one sample; D = H·W·C. */
export type ImageShape = [number, number, number];

/**
 * Hyper-parameters that change a step's values but hardly its cost. A peer fills every missing
 * key with the MNIST defaults of its architecture (see PROTOCOL.md).
 */
export interface PeerHyperparameters {
  learningRate: number;
  weightDecay: number;
  /** Global L2-norm gradient clipping threshold, or null for none. */
  gradientClip: number | null;
  /** EMA decay, or null for no EMA. */
  emaDecay: number | null;
  /** DSM noise standard deviation σ, in logit-space units. */
  sigma: number;
  /** FDSSM direction norm ε, in logit-space units. */
  epsilon: number;
  /** Weight λ of the low-energy term of SSM, DSM and FDSSM. */
  energyWeight: number;
  /** SSM slice count k. */
  slices: number;
  /** Logit scale α_l of the preprocessing. */
  logitScale: number;
  /** Residual smooth leaky ReLU in the FC model (the CNN model always uses it). */
  residual: boolean;
}

/** Ask the peer to time one cell: `warmup` untimed steps, then `iterations` timed steps. */
export interface RunRequest {
  protocol: typeof PEER_PROTOCOL_VERSION;
  type: 'run';
  /** Echoed in the response. */
  id: string;
  arch: PeerArchitecture;
  objective: ObjectiveName;
  /** Sample shape; an FC request may send `D` instead, meaning [1, D, 1]. */
  imageShape: ImageShape;
  /** Dense layer count of the FC model; the CNN model always has 6 convolutions. */
  L: number;
  batch: number;
  warmup: number;
  iterations: number;
  /** Intra-op threads the peer must use for this run. */
  threads: number;
  seed: number;
  hyper?: Partial<PeerHyperparameters>;
}

export interface ShutdownRequest {
  protocol: typeof PEER_PROTOCOL_VERSION;
  type: 'shutdown';
}

export type PeerRequest = RunRequest | ShutdownRequest;

/** First line a peer writes: who it is and what it runs on. */
export interface HelloMessage {
  protocol: typeof PEER_PROTOCOL_VERSION;
  type: 'hello';
  /** Engine name, such as "pytorch" or "jax". */
  engine: string;
  /** Engine version, such as torch.__version__. */
  version: string;
  /** Intra-op threads at start. */
  threads: number;
  /** Logical CPU count of the peer's machine, when known. */
  maxThreads?: number;
  /** BLAS library description, or null when unknown. */
  blas?: string | null;
  machine?: string;
  /** Language runtime, such as "Python 3.11.2". */
  runtime?: string;
  /** OMP_WAIT_POLICY the peer's OpenMP runtime started with, or null when unset. */
  ompWaitPolicy?: string | null;
}

/** Timings of one `run`. */
export interface ResultMessage {
  protocol: typeof PEER_PROTOCOL_VERSION;
  type: 'result';
  id: string;
  /** Wall-clock time of each timed step, ms, in order; warm-up steps excluded. */
  samplesMs: number[];
  medianMs: number;
  /** Loss of the last step, or null when it was not finite. */
  lastLoss: number | null;
  /** Threads the peer actually used. */
  threads: number;
  D?: number;
  parameters?: number;
  /** NaN entries of the per-sample loss set to 0 over all steps, as the reference does. */
  nanEntries?: number;
}

/** A failed request; `id` is null when the request could not be read. */
export interface ErrorMessage {
  protocol: typeof PEER_PROTOCOL_VERSION;
  type: 'error';
  id: string | null;
  message: string;
}

export type PeerMessage = HelloMessage | ResultMessage | ErrorMessage;

/** A line that breaks the protocol; the message names the line number and quotes the line. */
export class PeerProtocolError extends Error {
  constructor(
    readonly lineNumber: number,
    readonly line: string,
    problem: string,
    readonly stream: 'stdout' | 'stdin' = 'stdout',
    advice = '',
  ) {
    const streamName = stream === 'stdout' ? "peer's standard output" : "peer's standard input";
    super(`peer protocol: line ${lineNumber} of the ${streamName} ${problem}. ` +
      `Line ${lineNumber}: ${quote(line)}.${advice === '' ? '' : ` ${advice}`}`);
    this.name = 'PeerProtocolError';
  }
}

const MAX_QUOTED_LENGTH = 200;

function quote(line: string): string {
  const shown = line.length > MAX_QUOTED_LENGTH ? `${line.slice(0, MAX_QUOTED_LENGTH)}…` : line;
  return JSON.stringify(shown);
}

type JsonObject = Record<string, unknown>;

/** Parses one line as a JSON object with `protocol: 1` and a string `type`, or throws. */
function parseEnvelope(line: string, lineNumber: number, stream: 'stdout' | 'stdin'): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    const advice = stream === 'stdout'
      ? 'A peer must write only protocol messages to standard output and its logs to standard error.'
      : '';
    throw new PeerProtocolError(lineNumber, line, `is not valid JSON (${(error as Error).message})`, stream, advice);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PeerProtocolError(lineNumber, line, 'is not a JSON object', stream);
  }
  const message = value as JsonObject;
  if (message.protocol !== PEER_PROTOCOL_VERSION) {
    throw new PeerProtocolError(lineNumber, line,
      `has protocol ${JSON.stringify(message.protocol)}, but only protocol ${PEER_PROTOCOL_VERSION} is supported`, stream);
  }
  if (typeof message.type !== 'string') {
    throw new PeerProtocolError(lineNumber, line, 'has no string field "type"', stream);
  }
  return message;
}

/** Checks fields one by one and reports the first invalid one against the line. */
class FieldChecker {
  constructor(
    private readonly message: JsonObject,
    private readonly line: string,
    private readonly lineNumber: number,
    private readonly stream: 'stdout' | 'stdin',
  ) {}

  fail(field: string, expected: string): never {
    const received = this.message[field] === undefined ? 'nothing' : JSON.stringify(this.message[field]);
    throw new PeerProtocolError(this.lineNumber, this.line,
      `is an invalid "${this.message.type}" message because field "${field}" must be ${expected}, received ${received}`,
      this.stream);
  }

  string(field: string): string {
    const value = this.message[field];
    if (typeof value !== 'string') this.fail(field, 'a string');
    return value;
  }

  optionalString(field: string): string | undefined {
    return this.message[field] === undefined ? undefined : this.string(field);
  }

  integer(field: string, minimum: number): number {
    const value = this.message[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) {
      this.fail(field, `an integer ≥ ${minimum}`);
    }
    return value;
  }

  optionalInteger(field: string, minimum: number): number | undefined {
    return this.message[field] === undefined ? undefined : this.integer(field, minimum);
  }

  finiteNumber(field: string): number {
    const value = this.message[field];
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(field, 'a finite number');
    return value;
  }

  oneOf<T extends string>(field: string, allowed: readonly T[]): T {
    const value = this.message[field];
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(field, `one of ${allowed.join(', ')}`);
    }
    return value as T;
  }
}

/**
 * Parses and validates one line written by a peer (hello, result or error).
 *
 * Unknown extra fields are kept, so later minor additions do not break older drivers. Throws
 * `PeerProtocolError` naming `lineNumber` (1-based) for invalid JSON, a wrong protocol version, an
 * unknown type or an invalid field. Cost: O(line length).
 */
export function parsePeerMessage(line: string, lineNumber: number): PeerMessage {
  const message = parseEnvelope(line, lineNumber, 'stdout');
  const check = new FieldChecker(message, line, lineNumber, 'stdout');

  switch (message.type) {
    case 'hello': {
      check.string('engine');
      check.string('version');
      check.integer('threads', 1);
      check.optionalInteger('maxThreads', 1);
      if (message.blas !== undefined && message.blas !== null) check.string('blas');
      check.optionalString('machine');
      check.optionalString('runtime');
      if (message.ompWaitPolicy !== undefined && message.ompWaitPolicy !== null) check.string('ompWaitPolicy');
      return message as unknown as HelloMessage;
    }
    case 'result': {
      check.string('id');
      const samples = message.samplesMs;
      if (!Array.isArray(samples) || samples.length === 0 ||
        !samples.every((sample) => typeof sample === 'number' && Number.isFinite(sample) && sample >= 0)) {
        check.fail('samplesMs', 'a non-empty array of finite numbers ≥ 0 (milliseconds)');
      }
      check.finiteNumber('medianMs');
      if (message.lastLoss !== null) check.finiteNumber('lastLoss');
      check.integer('threads', 1);
      check.optionalInteger('D', 1);
      check.optionalInteger('parameters', 0);
      check.optionalInteger('nanEntries', 0);
      return message as unknown as ResultMessage;
    }
    case 'error': {
      if (message.id !== null) check.string('id');
      check.string('message');
      return message as unknown as ErrorMessage;
    }
    default:
      throw new PeerProtocolError(lineNumber, line,
        `has unknown type ${JSON.stringify(message.type)}; a peer sends hello, result or error`);
  }
}

/**
 * Parses and validates one request line (run or shutdown), as a peer written in TypeScript would.
 *
 * A run request that sends `D` instead of `imageShape` is returned with imageShape [1, D, 1]; a
 * CNN request without `L` gets L = 6. Throws `PeerProtocolError` naming `lineNumber` on any
 * invalid field. Cost: O(line length).
 */
export function parsePeerRequest(line: string, lineNumber: number): PeerRequest {
  const message = parseEnvelope(line, lineNumber, 'stdin');
  const check = new FieldChecker(message, line, lineNumber, 'stdin');

  if (message.type === 'shutdown') return { protocol: PEER_PROTOCOL_VERSION, type: 'shutdown' };
  if (message.type !== 'run') {
    throw new PeerProtocolError(lineNumber, line,
      `has unknown type ${JSON.stringify(message.type)}; a driver sends run or shutdown`, 'stdin');
  }

  const arch = check.oneOf('arch', PEER_ARCHITECTURES);
  let imageShape: ImageShape;
  if (message.imageShape === undefined && message.D !== undefined && arch === 'fc') {
    imageShape = [1, check.integer('D', 1), 1];
  } else {
    const shape = message.imageShape;
    if (!Array.isArray(shape) || shape.length !== 3 ||
      !shape.every((size) => typeof size === 'number' && Number.isInteger(size) && size >= 1)) {
      check.fail('imageShape', '[H, W, C] with positive integers (or "D" for arch fc)');
    }
    imageShape = shape as ImageShape;
  }

  const hyper = message.hyper;
  if (hyper !== undefined && (typeof hyper !== 'object' || hyper === null || Array.isArray(hyper))) {
    check.fail('hyper', 'an object');
  }

  const request: RunRequest = {
    protocol: PEER_PROTOCOL_VERSION,
    type: 'run',
    id: check.string('id'),
    arch,
    objective: check.oneOf('objective', OBJECTIVE_NAMES),
    imageShape,
    L: arch === 'cnn' && message.L === undefined ? 6 : check.integer('L', 1),
    batch: check.integer('batch', 1),
    warmup: check.integer('warmup', 0),
    iterations: check.integer('iterations', 1),
    threads: check.integer('threads', 1),
    seed: check.integer('seed', 0),
  };
  if (hyper !== undefined) request.hyper = hyper as Partial<PeerHyperparameters>;
  return request;
}

/** Encodes a request as one line of JSON, newline included. */
export function encodePeerRequest(request: PeerRequest): string {
  return `${JSON.stringify(request)}\n`;
}
