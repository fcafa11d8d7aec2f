/**
 * Reading result records from disk and grouping them into result sets.
 *
 * A result set is every record of one scenario name with one scenario hash. Two sets of the same
 * scenario name with different hashes ran different scenario definitions, so the reporter lists
 * them as "not comparable" and never pools or compares their cells.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import type { ResultRecord } from '../runner/record.js';
import { BASELINES_FOLDER, MANIFEST_FILE, OLD_FOLDER_MARK, parseRecord, readManifest } from '../runner/results.js';

/** Divergences of a toy model from the smoothed target density (paper Table 1 metrics). */
export interface ToyMetrics {
  /** KL-type divergence of the model from the target, nats. */
  kl: number;
  /** The same divergence evaluated for a reference density, nats, when the cell computed one. */
  klReference?: number;
  /** Fisher divergence ½·E‖s* − s_model‖². */
  fisher: number;
}

/** An image a cell wrote, such as a density heat-map or a sample grid. */
export interface ArtifactReference {
  kind: string;
  /** Path of the image file: absolute, or relative to the record file's folder or the results folder. */
  path: string;
}

/** A result record with the optional fields some cells add (toy metrics, image artifacts). */
export interface ReportRecord extends ResultRecord {
  metrics?: Partial<ToyMetrics>;
  artifacts?: ArtifactReference[];
}

export interface LoadedRecord {
  record: ReportRecord;
  /** Absolute path of the JSON file the record came from. */
  file: string;
}

export interface ResultSet {
  scenarioName: string;
  scenarioHash: string;
  /** Scenario file as the records name it. */
  scenarioFile: string;
  /** The scenario's description from the manifest next to its records, when there is one. */
  description: string | null;
  records: LoadedRecord[];
}

export interface SkippedFile {
  file: string;
  reason: string;
}

/** A scenario name that occurs with more than one hash. */
export interface NotComparableScenario {
  scenarioName: string;
  hashes: string[];
}

export interface LoadedResults {
  resultsDir: string;
  sets: ResultSet[];
  skipped: SkippedFile[];
  notComparable: NotComparableScenario[];
}

/**
 * Reads every `*.json` record below `resultsDir` and groups the valid records into result sets by
 * scenario name and hash. The search is recursive and leaves out hidden entries, scenario
 * manifests and folders moved aside by `--fresh`. Files that do not parse, are not records, or
 * carry another schema version are listed in `skipped` with the reason. A missing folder yields no
 * sets; it is not an error, because a partial run may not have written any yet.
 */
export async function loadResults(resultsDir: string): Promise<LoadedResults> {
  const root = path.resolve(resultsDir);
  const files = await listJsonFiles(root);
  const skipped: SkippedFile[] = [];
  const loaded: LoadedRecord[] = [];

  for (const file of files) {
    const parsed = parseRecord(await readFile(file, 'utf8'));
    if (typeof parsed === 'string') {
      skipped.push({ file, reason: parsed });
      continue;
    }
    const problem = validateRecord(parsed);
    if (problem !== null) {
      skipped.push({ file, reason: problem });
      continue;
    }
    loaded.push({ record: parsed as ReportRecord, file });
  }

  const sets = groupIntoSets(loaded);
  return { resultsDir: root, sets, skipped, notComparable: findNotComparable(sets) };
}

async function listJsonFiles(folder: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return [];
    }
    throw error;
  }
  const files: string[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    // Hidden entries, folders moved aside by `--fresh`, scenario manifests and the gate's
    // baselines hold no records.
    if (entry.name.startsWith('.') || entry.name === MANIFEST_FILE || entry.name === BASELINES_FOLDER) {
      continue;
    }
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) {
      if (!entry.name.includes(OLD_FOLDER_MARK)) {
        files.push(...(await listJsonFiles(full)));
      }
    } else if (entry.isFile() && entry.name.endsWith('.json')) {
      files.push(full);
    }
  }
  return files;
}

/**
 * Returns null when `value` has the fields the reporter reads beyond those `parseRecord` checks,
 * or the first problem found.
 */
export function validateRecord(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return 'not a result record: the file does not contain a JSON object';
  }
  const record = value as Record<string, unknown>;
  const parameters = record.parameters as Record<string, unknown> | undefined;
  const hasParameters =
    typeof parameters === 'object' &&
    parameters !== null &&
    typeof parameters.dataset === 'string' &&
    typeof parameters.architecture === 'string' &&
    typeof parameters.objective === 'string' &&
    typeof parameters.dimension === 'number';
  const config = record.config as Record<string, unknown> | null | undefined;
  const hasConfig =
    typeof config === 'object' &&
    config !== null &&
    typeof config.dataset === 'string' &&
    typeof config.architecture === 'string' &&
    typeof config.objective === 'string' &&
    Array.isArray(config.imageShape);
  if (!hasParameters && !hasConfig) {
    return 'not a result record: neither "parameters" nor "config" names the dataset, architecture and objective';
  }
  if (config !== null && config !== undefined && !hasConfig) {
    return 'not a result record: "config" must be null or name the dataset, architecture, objective and imageShape';
  }
  if (record.timing !== null && (typeof record.timing !== 'object' || !Array.isArray((record.timing as Record<string, unknown>).samplesMs))) {
    return 'not a result record: "timing" must be null or contain a "samplesMs" array';
  }
  if (!Array.isArray(record.evaluations)) {
    return 'not a result record: "evaluations" must be an array';
  }
  return null;
}

function groupIntoSets(loaded: LoadedRecord[]): ResultSet[] {
  const byKey = new Map<string, ResultSet>();
  for (const entry of loaded) {
    const { name, hash, file } = entry.record.scenario;
    const key = `${name}\u0000${hash}`;
    let set = byKey.get(key);
    if (set === undefined) {
      const manifest = readManifest(path.dirname(entry.file));
      set = {
        scenarioName: name,
        scenarioHash: hash,
        scenarioFile: file,
        description: manifest !== null && manifest.hash === hash ? manifest.description : null,
        records: [],
      };
      byKey.set(key, set);
    }
    set.records.push(entry);
  }
  return [...byKey.values()].sort(
    (a, b) => a.scenarioName.localeCompare(b.scenarioName) || a.scenarioHash.localeCompare(b.scenarioHash),
  );
}

function findNotComparable(sets: ResultSet[]): NotComparableScenario[] {
  const hashesByName = new Map<string, string[]>();
  for (const set of sets) {
    hashesByName.set(set.scenarioName, [...(hashesByName.get(set.scenarioName) ?? []), set.scenarioHash]);
  }
  return [...hashesByName.entries()]
    .filter(([, hashes]) => hashes.length > 1)
    .map(([scenarioName, hashes]) => ({ scenarioName, hashes }));
}

/** Returns a short label of a result set: the scenario name, with the hash prefix when the name is ambiguous. */
export function setLabel(set: ResultSet, loaded: Pick<LoadedResults, 'notComparable'>): string {
  const ambiguous = loaded.notComparable.some((entry) => entry.scenarioName === set.scenarioName);
  return ambiguous ? `${set.scenarioName}@${set.scenarioHash.slice(0, 8)}` : set.scenarioName;
}
