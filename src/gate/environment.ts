/**
 * What the gate records about the machine and the code next to every run.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';

import { currentCpuModel, currentCpuSignature } from './baseline.js';

/** The machine, backend and code a gate run measured. */
export interface GateEnvironment {
  /** tfjs backend name ("wasm", "cpu", "tensorflow"). */
  backend: string;
  /** npm package that provided the backend. */
  backendPackage: string;
  cpuModel: string;
  /**
   * Vendor, family and model number ("GenuineIntel family 6 model 207"), where /proc/cpuinfo
   * gives them. Absent in older runs, and outside Linux.
   */
  cpuSignature?: string;
  /** Logical CPUs the operating system reports. */
  cpuCount: number;
  platform: string;
  architecture: string;
  nodeVersion: string;
  tfjsCoreVersion: string;
  /** `git rev-parse HEAD`, with "-dirty" when tracked files differ from it, or "unknown". */
  codeRevision: string;
}

/** Collects the environment for the given backend. Runs two read-only git commands (a few ms). */
export function collectGateEnvironment(backend: string, backendPackage: string): GateEnvironment {
  return {
    backend,
    backendPackage,
    cpuModel: currentCpuModel(),
    ...signatureField(currentCpuSignature()),
    cpuCount: os.cpus().length,
    platform: os.platform(),
    architecture: os.arch(),
    nodeVersion: process.versions.node,
    tfjsCoreVersion: readPackageVersion('@tensorflow/tfjs-core'),
    codeRevision: readCodeRevision(),
  };
}

function signatureField(signature: string | null): { cpuSignature?: string } {
  return signature === null ? {} : { cpuSignature: signature };
}

function readCodeRevision(): string {
  try {
    const revision = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const changes = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return changes === '' ? revision : `${revision}-dirty`;
  } catch {
    // Outside a git checkout (for example an unpacked release) there is no revision to record.
    return 'unknown';
  }
}

function readPackageVersion(name: string): string {
  try {
    const require = createRequire(import.meta.url);
    const manifest = require.resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
