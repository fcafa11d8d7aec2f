/**
 * Running a whole scenario: choose the cells (shard, filter, resume), run each one, write each
 * record atomically as soon as the cell ends, and return a summary.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { CellPlan, ResolvedScenario } from '../scenarios/scenario.js';
import type { TrainingConfig, TrainingSession } from '../train/session.js';
import { runCell, type SessionFactory } from './cell.js';
import { collectEnvironment, type BackendInfo } from './environment.js';
import type { RunEvent } from './events.js';
import type { EnvironmentInfo, ResultRecord } from './record.js';
import {
  cellFileName,
  writeFileAtomic,
  manifestOf,
  MANIFEST_FILE,
  moveAside,
  readManifest,
  readResults,
  removeStaleTemporaryFiles,
  scenarioResultsDirectory,
  writeJsonAtomic,
  type AtomicWriteHooks,
} from './results.js';
import { selectShard, type CellFilter, type Shard } from './selection.js';
import { defaultToyTrainers, type ToyTrainers } from './toy-cell.js';

export interface RunOptions {
  /** The results root; records go to `<resultsRoot>/<scenario name>/`. Default "results". */
  resultsRoot?: string;
  /** The backend the run computes on (from `selectBackend`). */
  backend: BackendInfo;
  /** Creates each cell's session; default: `createTrainingSession` of src/train/session-impl.ts. */
  createSession?: SessionFactory;
  shard?: Shard | null;
  only?: CellFilter | null;
  /** Move existing results aside to `<folder>.old-<timestamp>` and start afresh. */
  fresh?: boolean;
  onEvent?: (event: RunEvent) => void;
  /** The environment written into records; default: `collectEnvironment(backend)`. */
  environment?: EnvironmentInfo;
  /** Test hooks for the atomic record writes. */
  writeHooks?: AtomicWriteHooks;
  /** Returns the bytes held by tfjs tensors; default reads tfjs's engine counter. */
  tensorBytes?: () => number;
  /** Trains the toy cells; default: the loops of src/toys on `backend`. */
  toyTrainers?: ToyTrainers;
}

export interface CellSummary {
  cellId: string;
  record: ResultRecord;
  /** True when this run produced the record, false when it was already there. */
  ranNow: boolean;
}

export interface RunSummary {
  scenario: string;
  hash: string;
  folder: string;
  movedAsideTo: string | null;
  /** Every selected cell with its record, sorted by cell id. */
  cells: CellSummary[];
  /** Cells of this run whose outcome is "errored". */
  erroredNow: number;
}

/** Thrown when a results folder contains results of a different version of the scenario. */
export class ScenarioChangedError extends Error {
  constructor(
    readonly file: string,
    readonly foundHash: string,
    readonly expectedHash: string,
    readonly scenarioName: string,
    readonly folder: string,
  ) {
    super(
      `results: ${file} was written for a different version of scenario "${scenarioName}" ` +
        `(hash ${foundHash.slice(0, 12)}…; the scenario now hashes to ${expectedHash.slice(0, 12)}…), ` +
        'so its results are not comparable with a new run. ' +
        `Rerun with --fresh to move ${folder} aside to ${folder}.old-<timestamp>/ and start afresh, ` +
        'or pass --results <another folder>.',
    );
    this.name = 'ScenarioChangedError';
  }
}

/** The statuses a re-run keeps; errored cells are run again. */
const FINAL_STATUSES = new Set(['completed', 'diverged', 'skipped']);

/** The cells a run selects, keeps and runs. */
export interface RunPlan {
  folder: string;
  /** Cells of the shard that pass the filter, sorted by id. */
  selected: CellPlan[];
  /** Selected cells with a completed, diverged or skipped record, by cell id. */
  kept: Map<string, ResultRecord>;
  /** Selected cells to run: no record yet, or an errored one. */
  toRun: CellPlan[];
}

export interface PlanOptions {
  resultsRoot?: string;
  shard?: Shard | null;
  only?: CellFilter | null;
  /** Plan as if the folder were empty (what --fresh does after moving it aside). */
  ignoreExisting?: boolean;
  /** Receives a message for each file in the folder that is not a readable record. */
  onWarning?: (message: string) => void;
}

/**
 * Works out which cells a run would run, reading (never writing) the results folder. Throws
 * ScenarioChangedError when the folder's manifest or a record has another scenario hash. O(cells
 * + bytes of the folder's records).
 */
export function planRun(resolved: ResolvedScenario, options: PlanOptions = {}): RunPlan {
  const folder = scenarioResultsDirectory(options.resultsRoot ?? 'results', resolved.scenario.name);
  const existing = options.ignoreExisting ? new Map<string, ResultRecord>() : readFolder(resolved, folder, options.onWarning ?? (() => {}));
  const selected = selectShard(resolved.cells, options.shard ?? null).filter((cell) => !options.only || options.only(cell.cellId));
  const toRun: CellPlan[] = [];
  const kept = new Map<string, ResultRecord>();
  for (const cell of selected) {
    const record = existing.get(cell.cellId);
    if (record && FINAL_STATUSES.has(record.outcome.status)) kept.set(cell.cellId, record);
    else toRun.push(cell);
  }
  return { folder, selected, kept, toRun };
}

/**
 * Runs the cells of `resolved` that the shard and filter select and that have no final record
 * yet, writing one record per cell. Emits `RunEvent`s through `options.onEvent`.
 *
 * Plan:
 * 1. Prepare the folder: --fresh moves it aside; otherwise reject a manifest or record with
 *    another scenario hash (ScenarioChangedError). Delete stale temporary files and write the
 *    manifest.
 * 2. Select: shard of the sorted cells, then the filter; keep records that are completed,
 *    diverged or skipped; run the rest (missing or errored).
 * 3. Run each cell, write its record atomically, and emit cell-end.
 */
export async function runScenario(resolved: ResolvedScenario, options: RunOptions): Promise<RunSummary> {
  const emit = options.onEvent ?? (() => {});
  const name = resolved.scenario.name;
  const createSession = options.createSession ?? defaultSessionFactory(options.backend.name);

  // 1. Folder.
  const target = scenarioResultsDirectory(options.resultsRoot ?? 'results', name);
  let movedAsideTo: string | null = null;
  if (options.fresh && existsSync(target)) movedAsideTo = moveAside(target);

  // 2. Selection.
  const warnings: string[] = [];
  const { folder, selected, kept, toRun } = planRun(resolved, { ...options, onWarning: (message) => warnings.push(message) });
  for (const removed of removeStaleTemporaryFiles(folder)) {
    warnings.push(`deleted ${join(folder, removed)}, a temporary file left by an interrupted write`);
  }
  writeJsonAtomic(join(folder, MANIFEST_FILE), manifestOf(resolved), options.writeHooks);
  emit({
    type: 'scenario-start',
    scenario: name,
    hash: resolved.hash,
    folder,
    movedAsideTo,
    shard: options.shard ?? null,
    totalCells: resolved.cells.length,
    selectedCells: selected.length,
    alreadyRecorded: kept.size,
    toRun: toRun.length,
  });
  for (const message of warnings) emit({ type: 'warning', cellId: null, message });
  for (const [cellId, record] of kept) emit({ type: 'cell-resumed', cellId, status: record.outcome.status });

  // 3. Cells.
  const environment = options.environment ?? collectEnvironment(options.backend);
  const toyTrainers = options.toyTrainers ?? defaultToyTrainers(options.backend.name);
  // Images (toy heat-maps) go next to the records, written before the record that names them.
  const writeArtifact = (fileName: string, bytes: Uint8Array): string => {
    writeFileAtomic(join(folder, fileName), bytes, options.writeHooks);
    return fileName;
  };
  const produced = new Map<string, ResultRecord>();
  const finishedSeconds: number[] = [];
  for (const [position, cell] of toRun.entries()) {
    const remainingAfter = toRun.length - position - 1;
    const estimateRunSeconds = (cellEta: number, cellElapsed: number): number => {
      const perCell = finishedSeconds.length > 0 ? finishedSeconds.reduce((a, b) => a + b, 0) / finishedSeconds.length : cellElapsed + cellEta;
      return cellEta + remainingAfter * perCell;
    };
    const start = performance.now();
    const record = await runCell(cell, { index: position + 1, count: toRun.length }, {
      resolved,
      environment,
      createSession,
      emit,
      estimateRunSeconds,
      tensorBytes: options.tensorBytes,
      toyTrainers,
      writeArtifact,
    });
    const file = join(folder, cellFileName(cell.cellId));
    writeJsonAtomic(file, record, options.writeHooks);
    const wallSeconds = (performance.now() - start) / 1000;
    if (record.outcome.status !== 'skipped') finishedSeconds.push(wallSeconds);
    produced.set(cell.cellId, record);
    emit({ type: 'cell-end', index: position + 1, count: toRun.length, cellId: cell.cellId, record, file, wallSeconds });
  }

  const cells: CellSummary[] = selected.map((cell) => {
    const ranNow = produced.has(cell.cellId);
    return { cellId: cell.cellId, ranNow, record: (produced.get(cell.cellId) ?? kept.get(cell.cellId)) as ResultRecord };
  });
  return {
    scenario: name,
    hash: resolved.hash,
    folder,
    movedAsideTo,
    cells,
    erroredNow: [...produced.values()].filter((record) => record.outcome.status === 'errored').length,
  };
}

/**
 * Checks that the manifest and every record in `folder` belong to this version of the scenario
 * and returns the readable records by cell id. Unreadable record files go to `onWarning`; their
 * cells run again.
 */
function readFolder(resolved: ResolvedScenario, folder: string, onWarning: (message: string) => void): Map<string, ResultRecord> {
  const records = new Map<string, ResultRecord>();
  if (!existsSync(folder)) return records;
  const name = resolved.scenario.name;

  const manifest = readManifest(folder);
  if (manifest && manifest.hash !== resolved.hash) {
    throw new ScenarioChangedError(join(folder, MANIFEST_FILE), manifest.hash, resolved.hash, name, folder);
  }
  const found = readResults(folder, {
    onSkippedFile: ({ file, reason }) => onWarning(`ignoring ${file}: ${reason}; its cell will run again and overwrite it`),
  });
  for (const record of found) {
    const file = join(folder, cellFileName(record.cellId));
    if (record.scenario.hash !== resolved.hash || record.scenario.name !== name) {
      throw new ScenarioChangedError(file, record.scenario.hash, resolved.hash, name, folder);
    }
    records.set(record.cellId, record);
  }
  return records;
}

/**
 * Returns a factory that creates sessions with src/train/session-impl.ts, loaded on first use so
 * the runner (and its tests with fake sessions) does not load the training stack up front.
 */
export function defaultSessionFactory(backendName: string): SessionFactory {
  // The two native packages register the tfjs backend "tensorflow"; the session compares tfjs names.
  const tfjsName = backendName === 'tensorflow-gpu' ? 'tensorflow' : backendName;
  return async (config: TrainingConfig): Promise<TrainingSession> => {
    const { createTrainingSession } = await import('../train/session-impl.js');
    return createTrainingSession(config, { backend: tfjsName });
  };
}
