/**
 * Finding and loading scenario files: by name from benchmarks/, or by path.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ScenarioError, type ScenarioProblem } from './problems.js';
import { resolveScenario, type ConfigResolver } from './resolve.js';
import type { ResolvedScenario } from './scenario.js';
import { validateScenario } from './validate.js';

/** The scenario `npm run bench` runs without arguments. */
export const DEFAULT_SCENARIO = 'default';

let cachedRoot: string | undefined;

/**
 * Returns the project's root folder: the nearest folder above this module that contains the
 * package.json named "ebflow-bench". This works from src/ and from dist/src/.
 */
export function projectRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let folder = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(folder, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'ebflow-bench') {
          cachedRoot = folder;
          return folder;
        }
      } catch {
        // An unreadable package.json is not ours; keep walking up.
      }
    }
    const parent = dirname(folder);
    if (parent === folder) throw new Error(`scenario catalog: no package.json named "ebflow-bench" above ${fileURLToPath(import.meta.url)}`);
    folder = parent;
  }
}

/** Returns the folder of the shipped scenarios, <project>/benchmarks. */
export function benchmarksDirectory(): string {
  return join(projectRoot(), 'benchmarks');
}

/**
 * Maps a scenario argument to a file. A value that ends in ".json" or contains a path separator
 * is a path, and anything else is the name of a file in benchmarks/.
 */
export function scenarioPath(nameOrPath: string): string {
  if (nameOrPath.endsWith('.json') || nameOrPath.includes('/') || nameOrPath.includes('\\')) return resolve(nameOrPath);
  return join(benchmarksDirectory(), `${nameOrPath}.json`);
}

/** The `$schema` value that marks a JSON file in benchmarks/ as a scenario. */
export const SCENARIO_SCHEMA_REFERENCE = './scenario.schema.json';

/**
 * Names of the scenarios shipped in benchmarks/, sorted: the .json files whose "$schema" is
 * "./scenario.schema.json". Other JSON files there (the schema itself, configurations of other
 * tools) are not scenarios.
 */
export function shippedScenarioNames(): string[] {
  const folder = benchmarksDirectory();
  if (!existsSync(folder)) return [];
  return readdirSync(folder)
    .filter((file) => file.endsWith('.json') && declaresScenarioSchema(join(folder, file)))
    .map((file) => basename(file, '.json'))
    .sort();
}

function declaresScenarioSchema(file: string): boolean {
  try {
    const document = JSON.parse(readFileSync(file, 'utf8')) as { $schema?: unknown };
    return document.$schema === SCENARIO_SCHEMA_REFERENCE;
  } catch {
    return false;
  }
}

/**
 * Reads, validates and resolves a scenario file. Throws `ScenarioError` listing every problem
 * (parse errors included) when the file is not valid. Throws an Error naming the shipped
 * scenarios when the file does not exist.
 */
export function loadScenario(nameOrPath: string, resolveConfig?: ConfigResolver): ResolvedScenario {
  const file = scenarioPath(nameOrPath);
  if (!existsSync(file)) {
    throw new Error(
      `scenario "${nameOrPath}" not found at ${file}; shipped scenarios: ${shippedScenarioNames().join(', ') || '(none)'}; ` +
        'pass one of these names or the path of a .json file',
    );
  }
  let document: unknown;
  const text = readFileSync(file, 'utf8');
  try {
    document = JSON.parse(text);
  } catch (error) {
    // The parser's message is kept whole (other found values are shortened), since its position is the point.
    const message = (error as Error).message;
    const position = /at position (\d+)/.exec(message);
    let where = '';
    // V8 in Node 21 and later already ends the message with "(line N column M)".
    if (position !== null && !message.includes('(line ')) {
      const before = text.slice(0, Number(position[1])).split('\n');
      where = ` (line ${before.length}, column ${before[before.length - 1]!.length + 1})`;
    }
    throw new ScenarioError(file, [
      { path: '$', found: `unparsable JSON: ${message}${where}`, allowed: 'a JSON document', fix: 'fix the JSON syntax at that position' },
    ]);
  }
  return resolveDocument(document, projectRelative(file), resolveConfig);
}

/** Returns `file` relative to the project root when it lies inside it (so records name "benchmarks/x.json" on every machine), else unchanged. */
function projectRelative(file: string): string {
  const relativePath = relative(projectRoot(), file);
  return relativePath.startsWith('..') || isAbsolute(relativePath) ? file : relativePath.split(sep).join('/');
}

/** Validates and resolves a parsed scenario document; throws `ScenarioError` listing every problem. */
export function resolveDocument(document: unknown, file: string, resolveConfig?: ConfigResolver): ResolvedScenario {
  const validation = validateScenario(document);
  let problems: ScenarioProblem[] = validation.problems;
  if (validation.scenario) {
    const resolution = resolveScenario(validation.scenario, file, resolveConfig);
    problems = resolution.problems;
    if (resolution.resolved) return resolution.resolved;
  }
  throw new ScenarioError(file || '(in memory)', problems);
}
