/**
 * What a result record says about the machine and the code it ran on.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { join } from 'node:path';

import { projectRoot } from '../scenarios/catalog.js';
import type { BlasStatus } from '../tensor/native-blas.js';
import type { LapackThreadsStatus } from '../tensor/threads/lapack-threads.js';
import type { KernelThreadStatus } from '../tensor/threads/pool.js';
import type { BackendAttempt, EnvironmentInfo } from './record.js';

/** The backend a run computes on, as `selectBackend` returns it. */
export interface BackendInfo {
  name: string;
  attempts: BackendAttempt[];
  blas?: BlasStatus;
  kernelThreads?: KernelThreadStatus;
  lapackThreads?: LapackThreadsStatus;
}

/**
 * Returns the code revision: `git rev-parse HEAD`, with "+dirty" appended when `git status
 * --porcelain` lists changes (results/ is git-ignored, so records do not count), or "unknown"
 * when `root` is not in a git work tree or git is missing. Runs two git processes.
 */
export function codeRevision(root = projectRoot()): string {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return status.trim() === '' ? head : `${head}+dirty`;
  } catch {
    return 'unknown';
  }
}

/**
 * Returns the installed version of the project itself and of every package in its
 * dependencies and optionalDependencies, read from node_modules/<name>/package.json. Packages
 * that are not installed (such as the optional native tfjs backends) are left out.
 */
export function packageVersions(root = projectRoot()): Record<string, string> {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    dependencies?: Record<string, string>;
    optionalDependencies?: Record<string, string>;
  };
  const versions: Record<string, string> = { [manifest.name]: manifest.version };
  const names = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.optionalDependencies ?? {})].sort();
  for (const name of names) {
    const file = join(root, 'node_modules', name, 'package.json');
    if (!existsSync(file)) continue;
    try {
      versions[name] = (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
    } catch {
      // An unreadable manifest leaves the package out rather than failing the run.
    }
  }
  return versions;
}

/** Collects the environment of this process for `backend`. Runs git twice; call it once per run. */
export function collectEnvironment(backend: BackendInfo): EnvironmentInfo {
  const processors = cpus();
  return {
    backend: backend.name,
    ...(backend.blas === undefined ? {} : { blas: backend.blas }),
    ...(backend.kernelThreads === undefined ? {} : { kernelThreads: backend.kernelThreads }),
    ...(backend.lapackThreads === undefined ? {} : { lapackThreads: backend.lapackThreads }),
    backendAttempts: backend.attempts,
    nodeVersion: process.version,
    packages: packageVersions(),
    cpuModel: processors[0]?.model.trim() ?? 'unknown',
    cpuCount: processors.length,
    platform: `${process.platform}-${process.arch}`,
    hostname: hostname(),
    codeRevision: codeRevision(),
  };
}
