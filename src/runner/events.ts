/**
 * The events a scenario run emits. The runner never prints; src/cli/bench.ts turns these into
 * progress lines.
 */
import type { CellParameters } from '../scenarios/scenario.js';
import type { CellOutcome, EvaluationPoint, ResultRecord } from './record.js';
import type { Shard } from './selection.js';

export interface ScenarioStartEvent {
  type: 'scenario-start';
  scenario: string;
  hash: string;
  /** The folder the records go to. */
  folder: string;
  /** Where --fresh moved the previous results, or null. */
  movedAsideTo: string | null;
  shard: Shard | null;
  /** Cells in the whole scenario. */
  totalCells: number;
  /** Cells in this shard that pass the --only filter. */
  selectedCells: number;
  /** Selected cells already recorded as completed, diverged or skipped (not run again). */
  alreadyRecorded: number;
  /** Selected cells this run will run (missing or errored before). */
  toRun: number;
}

/** A selected cell that has a final record already and is not run again. */
export interface CellResumedEvent {
  type: 'cell-resumed';
  cellId: string;
  status: CellOutcome['status'];
}

export interface CellStartEvent {
  type: 'cell-start';
  /** 1-based position among the cells this run runs. */
  index: number;
  count: number;
  cellId: string;
  parameters: CellParameters;
  measure: 'runtime' | 'train';
  /** Timed iterations planned, or null when a seconds budget decides. */
  plannedIterations: number | null;
  /** Training-seconds budget or runtime cap, or null. */
  plannedSeconds: number | null;
}

export interface IterationEvent {
  type: 'iteration';
  cellId: string;
  phase: 'warmup' | 'timed';
  /** 1-based index within the phase. */
  index: number;
  plannedIterations: number | null;
  loss: number;
  finite: boolean;
  /** The iteration's wall-clock time, ms. */
  stepMs: number;
  /** Sum of timed iteration times so far, seconds. */
  timedSeconds: number;
  /** Estimated seconds until this cell ends (evaluations not included), or null before an estimate exists. */
  cellEtaSeconds: number | null;
  /** Estimated seconds until every cell of this run ends, or null. */
  scenarioEtaSeconds: number | null;
}

export interface EvaluationEvent {
  type: 'evaluation';
  cellId: string;
  /** "periodic" for the schedule (and step 0), "final" for the evaluation after the last iteration. */
  kind: 'periodic' | 'final';
  point: EvaluationPoint;
  /** Wall-clock seconds the evaluation took. */
  seconds: number;
}

export interface CellEndEvent {
  type: 'cell-end';
  index: number;
  count: number;
  cellId: string;
  record: ResultRecord;
  /** The record's file. */
  file: string;
  /** Wall-clock seconds of the whole cell (session setup, iterations, evaluations). */
  wallSeconds: number;
}

export interface WarningEvent {
  type: 'warning';
  /** The cell concerned, or null for the whole run. */
  cellId: string | null;
  message: string;
}

export type RunEvent =
  | ScenarioStartEvent
  | CellResumedEvent
  | CellStartEvent
  | IterationEvent
  | EvaluationEvent
  | CellEndEvent
  | WarningEvent;
