/**
 * The runner's public API: run a scenario, read and merge result folders, and the record types.
 */
export type { CellContext, CellPosition, SessionFactory } from './cell.js';
export { runCell } from './cell.js';
export { codeRevision, collectEnvironment, packageVersions, type BackendInfo } from './environment.js';
export type * from './events.js';
export type * from './record.js';
export { RESULT_SCHEMA_VERSION } from './record.js';
export {
  cellFileName,
  MANIFEST_FILE,
  mergeResults,
  MixedHashError,
  moveAside,
  parseRecord,
  readManifest,
  readResults,
  scenarioResultsDirectory,
  writeJsonAtomic,
  type MergeSummary,
  type ReadOptions,
  type ScenarioManifest,
  type SkippedFile,
} from './results.js';
export { parseCellFilter, parseShard, selectShard, type CellFilter, type Shard } from './selection.js';
export {
  defaultSessionFactory,
  planRun,
  runScenario,
  ScenarioChangedError,
  type CellSummary,
  type PlanOptions,
  type RunOptions,
  type RunPlan,
  type RunSummary,
} from './sweep.js';
export { medianConfidenceInterval, runStepLoop, summarizeTiming } from './timing.js';
