/**
 * Drives one peer process over the JSON-lines peer protocol.
 *
 * `PeerProcess.start` spawns the command, waits for its `hello` and returns a handle. `run` sends
 * one `run` request and waits for its `result`. Requests go one at a time. Every failure becomes
 * a typed error: the peer's own `error` response (`PeerRunError`), a line that breaks the protocol
 * (`PeerProtocolError`, which also stops the peer), a peer that exits or cannot start
 * (`PeerCrashError`, with the end of its standard error) and a peer that does not respond in time
 * (`PeerTimeoutError`, which stops it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

import {
  PEER_PROTOCOL_VERSION,
  PeerProtocolError,
  encodePeerRequest,
  parsePeerMessage,
  type HelloMessage,
  type PeerMessage,
  type ResultMessage,
  type RunRequest,
} from './protocol.js';

/** How to start a peer. */
export interface PeerCommand {
  /** Executable path or name; a whole command line when `shell` is true. */
  command: string;
  args: string[];
  /** Run `command` through /bin/sh (for `--peer-command "<cmd>"`). */
  shell: boolean;
  /** Environment of the peer; the parent's environment when absent. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface PeerProcessOptions {
  /** Time allowed for the `hello` line, ms (importing torch can take several seconds). */
  helloTimeoutMs: number;
  /** Time allowed for the peer to exit after `shutdown` before it is killed, ms. */
  shutdownTimeoutMs: number;
  /** Bytes of the peer's standard error kept for error messages (the end is kept). */
  stderrTailBytes: number;
}

export const DEFAULT_PEER_PROCESS_OPTIONS: PeerProcessOptions = {
  helloTimeoutMs: 120_000,
  shutdownTimeoutMs: 10_000,
  stderrTailBytes: 8_192,
};

/** The fields of a run request except the envelope (protocol, type, id), which the driver fills in. */
export type RunSpec = Omit<RunRequest, 'protocol' | 'type' | 'id'>;

/** The peer responded to a request with an `error` message. */
export class PeerRunError extends Error {
  constructor(readonly requestId: string | null, readonly peerMessage: string, context: string) {
    super(`peer reported an error for ${context}: ${peerMessage}`);
    this.name = 'PeerRunError';
  }
}

/** The peer exited, was killed or could not be started. */
export class PeerCrashError extends Error {
  constructor(message: string, readonly stderrTail: string) {
    super(stderrTail.trim() === ''
      ? `${message}; its standard error was empty`
      : `${message}; its standard error ended with:\n${indent(stderrTail.trimEnd())}`);
    this.name = 'PeerCrashError';
  }
}

/** The peer did not respond in time and was stopped. */
export class PeerTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerTimeoutError';
  }
}

function indent(text: string): string {
  return text.split('\n').map((line) => `  | ${line}`).join('\n');
}

/** Renders a command for messages: the shell line, or the arguments quoted where needed. */
export function describePeerCommand(command: PeerCommand): string {
  if (command.shell) return command.command;
  return [command.command, ...command.args].map((part) => (/^[\w@%+=:,./-]+$/.test(part) ? part : JSON.stringify(part))).join(' ');
}

interface Waiter {
  /** Description of the awaited message, for error messages ("hello", "run run-3 (fc/ml …)"). */
  context: string;
  requestId: string | null;
  resolve(message: PeerMessage): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | null;
}

export class PeerProcess {
  /** The peer's `hello` message. */
  hello!: HelloMessage;

  private readonly child: ChildProcess;
  private readonly description: string;
  private stderrTail = '';
  private lineNumber = 0;
  private waiter: Waiter | null = null;
  /** Set once the peer can no longer take requests; later calls reject with it. */
  private failure: Error | null = null;
  private shuttingDown = false;
  private exited = false;
  private readonly exitPromise: Promise<void>;
  private nextRequestNumber = 1;

  private constructor(command: PeerCommand, private readonly options: PeerProcessOptions) {
    this.description = describePeerCommand(command);
    // A process group of its own lets `kill` reach the grandchildren a shell command starts.
    this.child = spawn(command.command, command.args, {
      shell: command.shell,
      env: command.env ?? process.env,
      cwd: command.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });

    let resolveExit!: () => void;
    this.exitPromise = new Promise((resolve) => { resolveExit = resolve; });

    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => this.keepStderr(chunk));
    // Writes to a peer that has just died fail with EPIPE; the exit handler reports the crash.
    this.child.stdin?.on('error', () => undefined);

    const lines = createInterface({ input: this.child.stdout!, crlfDelay: Infinity });
    lines.on('line', (line) => this.receiveLine(line));

    this.child.on('error', (error) => {
      this.exited = true;
      this.fail(new PeerCrashError(`peer command ${JSON.stringify(this.description)} could not be started (${error.message})`,
        this.stderrTail));
      resolveExit();
    });
    this.child.on('close', (code, signal) => {
      this.exited = true;
      if (!this.shuttingDown) {
        const how = signal === null ? `exited with code ${code}` : `was killed by signal ${signal}`;
        const during = this.waiter === null ? 'while idle' : `while the driver waited for ${this.waiter.context}`;
        this.fail(new PeerCrashError(`peer ${JSON.stringify(this.description)} ${how} ${during}`, this.stderrTail));
      }
      resolveExit();
    });
  }

  /**
   * Starts the peer and waits for its `hello` line.
   *
   * Rejects with `PeerCrashError` when the command cannot start or exits first, with
   * `PeerProtocolError` when the first line is not a valid `hello`, and with `PeerTimeoutError`
   * after `helloTimeoutMs`.
   */
  static async start(command: PeerCommand, options: Partial<PeerProcessOptions> = {}): Promise<PeerProcess> {
    const peer = new PeerProcess(command, { ...DEFAULT_PEER_PROCESS_OPTIONS, ...options });
    const message = await peer.expect('hello', null, peer.options.helloTimeoutMs);
    if (message.type !== 'hello') {
      const error = new PeerProtocolError(peer.lineNumber, JSON.stringify(message),
        `is a "${message.type}" message, but a peer must start with "hello"`);
      peer.fail(error);
      throw error;
    }
    peer.hello = message;
    return peer;
  }

  /** Whether the peer is running and can take requests. */
  get usable(): boolean {
    return this.failure === null && !this.exited && !this.shuttingDown;
  }

  /** The end of the peer's standard error so far. */
  get stderr(): string {
    return this.stderrTail;
  }

  /**
   * Sends one `run` request and returns the peer's `result`.
   *
   * Rejects with `PeerRunError` when the peer responds with `error` (the peer stays usable), with
   * `PeerProtocolError` when a result has the wrong id or sample count, and with
   * `PeerCrashError` or `PeerTimeoutError` (the peer is stopped). `timeoutMs` bounds the whole run.
   */
  async run(spec: RunSpec, timeoutMs: number): Promise<ResultMessage> {
    const id = `run-${this.nextRequestNumber++}`;
    const request: RunRequest = { protocol: PEER_PROTOCOL_VERSION, type: 'run', id, ...spec };
    const shape = spec.imageShape.join('×');
    const context = `run ${id} (${spec.arch}/${spec.objective}, ${shape}, ${spec.threads} thread${spec.threads === 1 ? '' : 's'})`;

    if (this.failure !== null) throw this.failure;
    if (this.shuttingDown || this.exited) {
      throw new Error(`peer driver: ${context} was sent after the peer ${JSON.stringify(this.description)} was shut down`);
    }
    const response = this.expect(context, id, timeoutMs);
    this.child.stdin?.write(encodePeerRequest(request));
    const message = await response;

    if (message.type === 'error') throw new PeerRunError(message.id, message.message, context);
    if (message.type !== 'result') {
      throw this.failWithProtocolError(`is a "${message.type}" message, but the driver expected the result of ${id}`, message);
    }
    if (message.id !== id) {
      throw this.failWithProtocolError(`responds to request ${JSON.stringify(message.id)}, but the driver waited for ${id}`, message);
    }
    if (message.samplesMs.length !== spec.iterations) {
      throw this.failWithProtocolError(
        `has ${message.samplesMs.length} samples, but ${id} asked for ${spec.iterations} timed iterations`, message);
    }
    return message;
  }

  /** Sends `shutdown` and waits for the peer to exit; kills it after `shutdownTimeoutMs`. */
  async shutdown(): Promise<void> {
    if (this.exited) return;
    this.shuttingDown = true;
    this.child.stdin?.write(encodePeerRequest({ protocol: PEER_PROTOCOL_VERSION, type: 'shutdown' }));
    this.child.stdin?.end();
    const timer = setTimeout(() => this.kill(), this.options.shutdownTimeoutMs);
    await this.exitPromise;
    clearTimeout(timer);
  }

  /** Kills the peer's process group at once; safe to call more than once. */
  kill(): void {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      this.child.kill('SIGKILL');
    }
  }

  /** Resolves once the peer process has exited. */
  waitForExit(): Promise<void> {
    return this.exitPromise;
  }

  private expect(context: string, requestId: string | null, timeoutMs: number): Promise<PeerMessage> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.waiter !== null) {
      return Promise.reject(new Error(`peer driver: ${context} was sent while ${this.waiter.context} is still pending; send one request at a time`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { context, requestId, resolve, reject, timer: null };
      waiter.timer = setTimeout(() => {
        const seconds = (timeoutMs / 1000).toFixed(1);
        this.fail(new PeerTimeoutError(
          `peer ${JSON.stringify(this.description)} did not respond to ${context} within ${seconds} s, so it was stopped; ` +
          'raise the time limit if the step is slow'));
      }, timeoutMs);
      this.waiter = waiter;
    });
  }

  private receiveLine(line: string): void {
    this.lineNumber += 1;
    if (line.trim() === '') return;
    let message: PeerMessage;
    try {
      message = parsePeerMessage(line, this.lineNumber);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    const waiter = this.waiter;
    if (waiter === null) {
      this.fail(new PeerProtocolError(this.lineNumber, line, 'arrived while no request was pending'));
      return;
    }
    this.settle(waiter);
    waiter.resolve(message);
  }

  private failWithProtocolError(problem: string, message: PeerMessage): PeerProtocolError {
    const error = new PeerProtocolError(this.lineNumber, JSON.stringify(message), problem);
    this.fail(error);
    return error;
  }

  /** Marks the peer unusable, rejects the pending request and stops the process. */
  private fail(error: Error): void {
    if (this.failure === null) this.failure = error;
    const waiter = this.waiter;
    if (waiter !== null) {
      this.settle(waiter);
      waiter.reject(error);
    }
    this.kill();
  }

  private settle(waiter: Waiter): void {
    if (waiter.timer !== null) clearTimeout(waiter.timer);
    this.waiter = null;
  }

  private keepStderr(chunk: string): void {
    this.stderrTail += chunk;
    if (this.stderrTail.length > this.options.stderrTailBytes) {
      this.stderrTail = this.stderrTail.slice(this.stderrTail.length - this.options.stderrTailBytes);
    }
  }
}
