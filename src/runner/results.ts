/**
 * The results folder: one JSON record per cell, written atomically, read back by the runner (to
 * resume) and by the reporter.
 *
 * Layout (results/README.md describes it for users):
 *   <results>/<scenario name>/scenario.json        the resolved scenario (manifest) with its hash
 *   <results>/<scenario name>/<cell id>.json       one ResultRecord; "/" in the id becomes "_"
 *   <results>/<scenario name>/<cell id>-density.png the heat-map of a 2-D toy cell (its record's `artifacts`)
 *   <results>/<scenario name>.old-<timestamp>/     a folder moved aside by --fresh
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';

import { compareIds } from '../scenarios/resolve.js';
import type { CellParameters, ResolvedScenario, ToyPlan } from '../scenarios/scenario.js';
import type { TrainingConfig } from '../train/session.js';
import { RESULT_SCHEMA_VERSION, type CellOutcome, type ResultRecord } from './record.js';

/** The folder of a results root that contains the timing gate's baselines, which are not records. */
export const BASELINES_FOLDER = 'baselines';

/** Name of the manifest file in a scenario's results folder. */
export const MANIFEST_FILE = 'scenario.json';
/** Suffix of temporary files. Readers ignore them, and the runner deletes abandoned ones. */
export const TEMP_SUFFIX = '.tmp';
/** Marks folders moved aside by --fresh; readers skip them. */
export const OLD_FOLDER_MARK = '.old-';

const OUTCOME_STATUSES: readonly CellOutcome['status'][] = ['completed', 'diverged', 'errored', 'skipped'];

/** The manifest: the resolved scenario as written next to its records. */
export interface ScenarioManifest {
  schemaVersion: typeof RESULT_SCHEMA_VERSION;
  name: string;
  hash: string;
  file: string;
  description: string;
  estimatedMinutes: number | null;
  measure: ResolvedScenario['scenario']['measure'];
  divergence: ResolvedScenario['scenario']['divergence'];
  cells: { cellId: string; parameters: CellParameters; config: TrainingConfig | null; toy?: ToyPlan; skipReason: string | null }[];
}

/** A file a reader left out, and why. */
export interface SkippedFile {
  file: string;
  reason: string;
}

export interface ReadOptions {
  /** Called for each file that is not a readable result record. */
  onSkippedFile?: (skipped: SkippedFile) => void;
}

/** Returns the folder of one scenario's records. */
export function scenarioResultsDirectory(resultsRoot: string, scenarioName: string): string {
  return join(resultsRoot, scenarioName);
}

/**
 * Returns the file name of a cell's record: the cell id with "/" replaced by "_", plus ".json".
 * Cell ids contain no "_" (variant names are restricted to letters, digits and "-"), so the name
 * is unique per cell.
 */
export function cellFileName(cellId: string): string {
  return `${cellId.replaceAll('/', '_')}.json`;
}

/** Builds the manifest of a resolved scenario. */
export function manifestOf(resolved: ResolvedScenario): ScenarioManifest {
  const { scenario } = resolved;
  return {
    schemaVersion: RESULT_SCHEMA_VERSION,
    name: scenario.name,
    hash: resolved.hash,
    file: resolved.file,
    description: scenario.description,
    estimatedMinutes: scenario.estimatedMinutes,
    measure: scenario.measure,
    divergence: scenario.divergence,
    cells: resolved.cells.map(({ cellId, parameters, config, toy, skipReason }) => ({ cellId, parameters, config, toy, skipReason })),
  };
}

export interface AtomicWriteHooks {
  /** Called after the temporary file is written and synced, before the rename; tests use it to simulate a crash. */
  beforeRename?: (temporaryFile: string) => void;
}

/**
 * Writes `value` as JSON to `file` atomically: even if the process dies midway, `file` is absent,
 * has its old content, or has the complete new content. The steps are: write a temporary file in
 * the same folder, fsync it, rename it over `file`, then fsync the folder so the rename is
 * durable. Non-finite numbers are written as null, because JSON has no NaN or Infinity.
 */
export function writeJsonAtomic(file: string, value: unknown, hooks: AtomicWriteHooks = {}): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, hooks);
}

/** Writes `content` to `file` atomically, in the same steps as `writeJsonAtomic`. */
export function writeFileAtomic(file: string, content: string | Uint8Array, hooks: AtomicWriteHooks = {}): void {
  const folder = dirname(file);
  mkdirSync(folder, { recursive: true });
  const temporary = join(folder, temporaryName(basename(file)));

  const descriptor = openSync(temporary, 'w');
  try {
    // writeFileSync on a descriptor repeats the write until every byte is written.
    writeFileSync(descriptor, content);
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
  hooks.beforeRename?.(temporary);
  renameSync(temporary, file);
  syncFolder(folder);
}

function syncFolder(folder: string): void {
  let descriptor: number | undefined;
  try {
    descriptor = openSync(folder, 'r');
    fsyncSync(descriptor);
  } catch {
    // Some file systems (and Windows) do not allow fsync on a folder; the rename is still atomic.
  } finally {
    if (descriptor !== undefined) closeSync(descriptor);
  }
}

/**
 * Age after which a temporary file counts as abandoned even when its writer may run on another
 * machine. NOTE: a guessed bound; a record write takes milliseconds, so ten minutes is generous.
 */
export const ABANDONED_TEMPORARY_MS = 10 * 60 * 1000;

const NAME_SEPARATOR = '~';

/** Returns ".<file>~<host>~<pid>~<random>.tmp", so a reader can tell whose write a temporary file belongs to. */
function temporaryName(fileName: string): string {
  const random = Math.random().toString(36).slice(2, 10);
  return `.${fileName}${NAME_SEPARATOR}${hostname()}${NAME_SEPARATOR}${process.pid}${NAME_SEPARATOR}${random}${TEMP_SUFFIX}`;
}

/**
 * Tells whether a temporary file was left by an interrupted write: its writer ran on this host and
 * that process is gone, or the file is older than `ABANDONED_TEMPORARY_MS`. A write in progress
 * (another shard writing to a shared folder) is left alone.
 */
function isAbandoned(name: string, modifiedMs: number, nowMs: number): boolean {
  if (nowMs - modifiedMs > ABANDONED_TEMPORARY_MS) return true;
  const parts = name.slice(0, -TEMP_SUFFIX.length).split(NAME_SEPARATOR);
  if (parts.length < 4) return false;
  const pid = Number(parts[parts.length - 2]);
  const host = parts[parts.length - 3];
  if (host !== hostname() || !Number.isSafeInteger(pid)) return false;
  // writeJsonAtomic is synchronous, so no write of this process is in progress right now.
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // ESRCH: no such process. EPERM means it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Deletes temporary files left by interrupted writes in `folder` and returns their names. */
export function removeStaleTemporaryFiles(folder: string, nowMs = Date.now()): string[] {
  if (!existsSync(folder)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(folder)) {
    if (!name.startsWith('.') || !name.endsWith(TEMP_SUFFIX)) continue;
    const path = join(folder, name);
    if (!isAbandoned(name, statSync(path).mtimeMs, nowMs)) continue;
    unlinkSync(path);
    removed.push(name);
  }
  return removed;
}

/**
 * Parses the text of a record file. Returns the record, or the reason it is not a readable
 * record. Losses, NLL values and toy metrics written as null (non-finite numbers) come back as
 * NaN.
 */
export function parseRecord(text: string): ResultRecord | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `invalid JSON (${(error as Error).message})`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const record = value as Partial<ResultRecord> & Record<string, unknown>;
  if (record.schemaVersion !== RESULT_SCHEMA_VERSION) {
    return `schemaVersion ${JSON.stringify(record.schemaVersion)} is not ${RESULT_SCHEMA_VERSION}, the version this code reads`;
  }
  if (typeof record.cellId !== 'string') return 'cellId is missing';
  if (typeof record.scenario?.name !== 'string' || typeof record.scenario?.hash !== 'string') return 'scenario name or hash is missing';
  if (!OUTCOME_STATUSES.includes(record.outcome?.status as CellOutcome['status'])) {
    return `outcome.status ${JSON.stringify(record.outcome?.status)} is not one of ${OUTCOME_STATUSES.join(', ')}`;
  }
  if (!Array.isArray(record.losses)) return 'losses is missing';

  record.losses = record.losses.map((loss) => (typeof loss === 'number' ? loss : Number.NaN));
  const restoreNll = (nll: { nllNats: unknown; bitsPerDim: unknown } | null | undefined): void => {
    if (!nll) return;
    if (typeof nll.nllNats !== 'number') nll.nllNats = Number.NaN;
    if (typeof nll.bitsPerDim !== 'number') nll.bitsPerDim = Number.NaN;
  };
  restoreNll(record.finalNll);
  for (const point of record.evaluations ?? []) restoreNll(point.result);
  if (typeof record.metrics === 'object' && record.metrics !== null) {
    const metrics = record.metrics as Record<string, unknown>;
    for (const key of ['kl', 'klReference', 'fisher']) {
      if (metrics[key] === null) metrics[key] = Number.NaN;
    }
  }
  return record as ResultRecord;
}

/**
 * Reads every result record under `folder`: a scenario's folder or a whole results root (its
 * sub-folders are searched, except those moved aside by --fresh and the gate's `baselines/`). Files that are not readable
 * records (the manifest and temporary files aside) are skipped and passed to
 * `options.onSkippedFile`. Records come back sorted by scenario name, then cell id. Reads every
 * file once: O(total bytes).
 */
export function readResults(folder: string, options: ReadOptions = {}): ResultRecord[] {
  return readRecordFiles(folder, options).map(({ record }) => record);
}

/** A record with the path of the file it was read from. */
interface RecordFile {
  record: ResultRecord;
  file: string;
}

/** Does what `readResults` does and also returns each record's file. */
function readRecordFiles(folder: string, options: ReadOptions = {}): RecordFile[] {
  const found: RecordFile[] = [];
  if (!existsSync(folder)) return found;
  const visit = (current: string): void => {
    for (const name of readdirSync(current).sort()) {
      const path = join(current, name);
      if (statSync(path).isDirectory()) {
        const isResultFolder = !name.startsWith('.') && !name.includes(OLD_FOLDER_MARK) && !(current === folder && name === BASELINES_FOLDER);
        if (isResultFolder) visit(path);
        continue;
      }
      if (!name.endsWith('.json') || name === MANIFEST_FILE || name.startsWith('.')) continue;
      const parsed = parseRecord(readFileSync(path, 'utf8'));
      if (typeof parsed === 'string') options.onSkippedFile?.({ file: path, reason: parsed });
      else found.push({ record: parsed, file: path });
    }
  };
  visit(folder);
  return found.sort(
    (a, b) => compareIds(a.record.scenario.name, b.record.scenario.name) || compareIds(a.record.cellId, b.record.cellId),
  );
}

/** Reads a scenario folder's manifest, or returns null when there is none (or it is unreadable). */
export function readManifest(folder: string): ScenarioManifest | null {
  const file = join(folder, MANIFEST_FILE);
  if (!existsSync(file)) return null;
  try {
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as ScenarioManifest;
    return typeof manifest.hash === 'string' ? manifest : null;
  } catch {
    return null;
  }
}

/**
 * Moves `folder` to `<folder>.old-<timestamp>` (UTC to the second, ISO 8601 basic format such as 20260105T143000Z) and returns
 * the new path. Nothing is deleted.
 */
export function moveAside(folder: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  let target = `${folder}${OLD_FOLDER_MARK}${stamp}`;
  for (let n = 2; existsSync(target); n++) target = `${folder}${OLD_FOLDER_MARK}${stamp}-${n}`;
  renameSync(folder, target);
  return target;
}

export interface MergedScenario {
  name: string;
  hash: string;
  folder: string;
  /** Records written to the target folder. */
  records: number;
  /** Images the kept records name (toy heat-maps) that were not found next to their source record; the record is merged without them. */
  missingArtifacts: { cellId: string; path: string }[];
  /** Cell ids run more than once across the sources; the kept record has the better outcome, then the later finish. */
  duplicates: string[];
}

export interface MergeSummary {
  scenarios: MergedScenario[];
  skippedFiles: SkippedFile[];
}

/** Thrown when sources to merge hold results of different versions of one scenario. */
export class MixedHashError extends Error {
  constructor(
    readonly scenarioName: string,
    readonly filesByHash: Record<string, string[]>,
  ) {
    const lines = Object.entries(filesByHash).map(([hash, files]) => `  hash ${hash.slice(0, 12)}…: ${files.slice(0, 3).join(', ')}${files.length > 3 ? ` and ${files.length - 3} more` : ''}`);
    super(
      `merge: scenario "${scenarioName}" has results of ${Object.keys(filesByHash).length} different scenario versions (hashes), which are not comparable:\n` +
        `${lines.join('\n')}\nmerge only folders produced from the same scenario file and code; move the others away first`,
    );
    this.name = 'MixedHashError';
  }
}

const OUTCOME_RANK: Record<CellOutcome['status'], number> = { completed: 3, diverged: 2, skipped: 1, errored: 0 };

/**
 * Combines the records of several result folders (shards) into `<resultsRoot>/<scenario name>/`.
 * Records already in the target take part like any source. Throws `MixedHashError`, before
 * writing anything, when one scenario's records or manifests carry different hashes. When a cell
 * appears more than once, the copy with the better outcome (completed > diverged > skipped >
 * errored), then the later `finishedAt`, is kept. O(total bytes).
 */
export function mergeResults(sources: string[], resultsRoot: string): MergeSummary {
  const skippedFiles: SkippedFile[] = [];
  const byScenario = new Map<string, { records: Map<string, RecordFile>; hashes: Record<string, string[]>; duplicates: Set<string>; manifest: ScenarioManifest | null }>();

  const folders = sources.map((source) => resolve(source));
  for (const source of folders) {
    if (!existsSync(source)) throw new Error(`merge: source folder ${source} does not exist; pass folders that hold result records`);
  }

  // Targets that already exist take part, so a merge never drops what is there.
  const take = (folder: string): void => {
    const found = readRecordFiles(folder, { onSkippedFile: (skipped) => skippedFiles.push(skipped) });
    for (const { record, file } of found) {
      const name = record.scenario.name;
      let group = byScenario.get(name);
      if (!group) {
        group = { records: new Map(), hashes: {}, duplicates: new Set(), manifest: null };
        byScenario.set(name, group);
      }
      (group.hashes[record.scenario.hash] ??= []).push(join(folder, cellFileName(record.cellId)));
      const previous = group.records.get(record.cellId)?.record;
      // The same record reached through two folders (a copy) is not a duplicate run.
      const copy = previous !== undefined && previous.startedAt === record.startedAt && previous.finishedAt === record.finishedAt;
      if (copy) continue;
      if (previous) {
        group.duplicates.add(record.cellId);
        const better =
          OUTCOME_RANK[record.outcome.status] - OUTCOME_RANK[previous.outcome.status] ||
          compareIds(record.finishedAt, previous.finishedAt);
        if (better <= 0) continue;
      }
      group.records.set(record.cellId, { record, file });
    }
    collectManifests(folder);
  };
  const collectManifests = (folder: string): void => {
    const candidates = [folder, ...(existsSync(folder) ? readdirSync(folder).map((name) => join(folder, name)) : [])];
    for (const candidate of candidates) {
      if (!existsSync(candidate) || !statSync(candidate).isDirectory() || candidate.includes(OLD_FOLDER_MARK)) continue;
      const manifest = readManifest(candidate);
      if (!manifest) continue;
      let group = byScenario.get(manifest.name);
      if (!group) {
        group = { records: new Map(), hashes: {}, duplicates: new Set(), manifest: null };
        byScenario.set(manifest.name, group);
      }
      (group.hashes[manifest.hash] ??= []).push(join(candidate, MANIFEST_FILE));
      group.manifest ??= manifest;
    }
  };

  for (const source of folders) take(source);
  for (const [name] of [...byScenario]) {
    const target = resolve(scenarioResultsDirectory(resultsRoot, name));
    if (!folders.includes(target) && existsSync(target)) take(target);
  }

  // Check every scenario before writing anything.
  for (const [name, group] of byScenario) {
    if (Object.keys(group.hashes).length > 1) throw new MixedHashError(name, group.hashes);
  }

  const scenarios: MergedScenario[] = [];
  for (const [name, group] of [...byScenario].sort(([a], [b]) => compareIds(a, b))) {
    const folder = scenarioResultsDirectory(resultsRoot, name);
    if (group.manifest) writeJsonAtomic(join(folder, MANIFEST_FILE), group.manifest);
    const missingArtifacts: MergedScenario['missingArtifacts'] = [];
    for (const { record, file } of group.records.values()) {
      // Images first, so a merged record never names a file the target lacks.
      for (const artifact of record.artifacts ?? []) {
        if (!copyArtifact(artifact.path, dirname(file), folder)) missingArtifacts.push({ cellId: record.cellId, path: artifact.path });
      }
      writeJsonAtomic(join(folder, cellFileName(record.cellId)), record);
    }
    scenarios.push({
      name,
      hash: Object.keys(group.hashes)[0],
      folder,
      records: group.records.size,
      missingArtifacts,
      duplicates: [...group.duplicates].sort(compareIds),
    });
  }
  return { scenarios, skippedFiles };
}

/**
 * Copies an artifact named by a record (a path relative to the record's folder) from
 * `sourceFolder` to the same relative path under `targetFolder`, atomically. Absolute paths are
 * left as they are. Returns false when the source file does not exist or the path leaves the
 * record's folder.
 */
function copyArtifact(path: string, sourceFolder: string, targetFolder: string): boolean {
  if (isAbsolute(path)) return existsSync(path);
  const source = resolve(sourceFolder, path);
  const target = resolve(targetFolder, path);
  if (!source.startsWith(resolve(sourceFolder)) || !existsSync(source)) return false;
  if (source !== target) writeFileAtomic(target, readFileSync(source));
  return true;
}
