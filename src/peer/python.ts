/**
 * Finds a Python interpreter that can import torch, and the command that starts the PyTorch peer.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { PeerCommand } from './driver.js';

/** Interpreters tried in order when EBFLOW_PYTHON is not set. */
export const DEFAULT_PYTHON_CANDIDATES: readonly string[] = ['/usr/bin/python3', 'python3'];

export const TORCH_INSTALL_HINT =
  'Install PyTorch with `sudo apt-get install python3-torch libopenblas0-openmp` on Debian or Ubuntu ' +
  '(without an OpenBLAS package Debian\'s torch falls back to the slow reference BLAS), or with `pip install torch`; ' +
  'then run again, or set EBFLOW_PYTHON to an interpreter that has torch.';

export interface PythonAttempt {
  python: string;
  /** Why this interpreter was not used: not found, or the last line of its error output. */
  problem: string;
}

export type TorchPythonSearch =
  | { found: true; python: string; torchVersion: string; attempts: PythonAttempt[] }
  | { found: false; attempts: PythonAttempt[]; message: string };

export interface TorchPythonSearchOptions {
  /** Environment to read EBFLOW_PYTHON from; the process environment when absent. */
  env?: NodeJS.ProcessEnv;
  /** Interpreters to try when EBFLOW_PYTHON is not set. */
  candidates?: readonly string[];
  /** Time allowed for one `import torch`, ms. */
  timeoutMs?: number;
}

/**
 * Returns the first interpreter that imports torch, with torch's version.
 *
 * EBFLOW_PYTHON, when set, is the only interpreter tried, so an explicit choice is never replaced
 * silently by another one. Otherwise `/usr/bin/python3` comes before the `python3` on PATH, because
 * Debian installs torch for the system Python. Each try starts Python once (about 1–3 s with torch).
 */
export async function findTorchPython(options: TorchPythonSearchOptions = {}): Promise<TorchPythonSearch> {
  const env = options.env ?? process.env;
  const explicit = env.EBFLOW_PYTHON?.trim();
  const candidates = explicit ? [explicit] : [...new Set(options.candidates ?? DEFAULT_PYTHON_CANDIDATES)];
  const attempts: PythonAttempt[] = [];

  for (const python of candidates) {
    const outcome = await importTorch(python, env, options.timeoutMs ?? 60_000);
    if (outcome.ok) return { found: true, python, torchVersion: outcome.version, attempts };
    attempts.push({ python, problem: outcome.problem });
  }

  const tried = attempts
    .map((attempt) => `${explicit ? 'EBFLOW_PYTHON=' : ''}${attempt.python} (${attempt.problem})`)
    .join('; ');
  return {
    found: false,
    attempts,
    message: `no Python interpreter with torch was found, so the PyTorch peer cannot run. Tried: ${tried}. ${TORCH_INSTALL_HINT}`,
  };
}

type ImportOutcome = { ok: true; version: string } | { ok: false; problem: string };

function importTorch(python: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ImportOutcome> {
  return new Promise((resolve) => {
    const child = spawn(python, ['-c', 'import torch; print(torch.__version__)'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    // A timer of our own, because spawn's `timeout` option leaves its timer running when the
    // interpreter is not found, which would hold the process open.
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ ok: false, problem: error.code === 'ENOENT' ? 'not found' : error.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0 && stdout.trim() !== '') {
        resolve({ ok: true, version: stdout.trim() });
        return;
      }
      const lastLine = stderr.trim().split('\n').pop() ?? '';
      let problem = lastLine !== '' ? lastLine : `exit code ${code}`;
      if (timedOut) problem = `no response within ${timeoutMs} ms`;
      resolve({ ok: false, problem });
    });
  });
}

/** Returns the path of benchmarks/peers/pytorch_peer.py, searched upward from this module. */
export function pytorchPeerScriptPath(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(directory, 'benchmarks', 'peers', 'pytorch_peer.py');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(directory);
    if (parent === directory) {
      throw new Error(`PyTorch peer: benchmarks/peers/pytorch_peer.py was not found above ${fileURLToPath(import.meta.url)}; ` +
        'run from a checkout of ebflow-bench or pass --peer-command');
    }
    directory = parent;
  }
}

/** Returns the command that starts the PyTorch peer with `python`. */
export function pytorchPeerCommand(python: string, env?: NodeJS.ProcessEnv): PeerCommand {
  return { command: python, args: [pytorchPeerScriptPath()], shell: false, env };
}
