/**
 * The gate's comparison: is the current run slower than the baseline, cell by cell and ratio by
 * ratio, beyond the threshold and beyond the noise?
 *
 * Two quantities are compared, both chosen to cancel the machine's speed:
 * - each cell's step time in calibration units (step time / calibration kernel time measured just
 *   before the step's block), as the Hodges–Lehmann shift of the log times with a Mann–Whitney
 *   interval (see statistics.ts);
 * - each objective's time divided by the reference objective's time at the same architecture and
 *   D, both from one run, as a bootstrap interval on the change of that ratio.
 *
 * A change counts only when it is beyond its threshold (now/baseline > t for a regression,
 * < 1/t for an improvement) and its interval excludes 1. A change beyond the threshold whose
 * interval includes 1 passes with a note. A cell the baseline measured but the current run did
 * not (its session could not be built or a step threw) fails the gate too.
 */
import { cpuBaselinePath, measuredSamples, referenceCellSamples, referenceRatioSamples } from './baseline.js';
import type { GateBaseline, GateRun, GateSamples } from './records.js';
import { listCells, listRatios, thresholdFor, type GateScenario } from './scenario.js';
import { bootstrapRatioOfRatios, mannWhitneyShift, median, type ChangeEstimate } from './statistics.js';

/** Exit codes of `bench:check`. */
export const GATE_EXIT_CODES = {
  /** No regression (improvements are reported). */
  pass: 0,
  /** At least one regression, a cell that is no longer measured, or an improvement with --fail-on-improvement. */
  fail: 1,
  /** Invalid usage or input: a bad option, scenario or switch value, a missing or malformed baseline, a crash. */
  error: 2,
  /** The baseline was recorded with another scenario hash, backend or baseline schema version. */
  notComparable: 3,
} as const;

/**
 * Bootstrap resamples per ratio. With 2000, the 95% bounds of one example (18 samples per side,
 * log-noise 0.15) moved by at most 3% over 20 seeds; the fixed seed makes each verdict repeatable.
 */
const BOOTSTRAP_RESAMPLES = 2000;
const BOOTSTRAP_SEED = 7;

/** The verdict on one quantity that both runs measured. */
export type ChangeVerdict =
  /** Slower beyond the threshold, and significant. */
  | 'regression'
  /** Faster beyond 1/threshold, and significant. */
  | 'improvement'
  /** The change, significant or not, lies within [1/threshold, threshold]. */
  | 'within-threshold'
  /** Beyond the threshold, but the interval includes 1: passes with a note. */
  | 'not-significant'
  /** A ratio that moved only because its reference objective changed (see the note). */
  | 'explained';

/** The comparison of one cell or ratio. */
export type QuantityComparison = {
  id: string;
  kind: 'cell' | 'ratio';
  /** The objective the quantity names: the cell's, or the ratio's numerator. */
  objective: string;
  threshold: number;
} & (
  | {
      verdict: ChangeVerdict;
      estimate: ChangeEstimate;
      /** Median in calibration units (cells) or median ratio (ratios), baseline reference run and now. */
      baselineMedian: number;
      currentMedian: number;
      /** Median step time on the run's clock, ms (cells only): for orientation, never compared. */
      baselineStepMs?: number;
      currentStepMs?: number;
      note?: string;
    }
  /** The baseline measured it but the current run did not (fails the gate for cells). */
  | { verdict: 'not-measured'; reason: string }
  /** The current run measured it but the baseline did not. */
  | { verdict: 'new'; reason: string }
  /** Neither run measured it. */
  | { verdict: 'absent'; reason: string }
);

export interface GateComparison {
  outcome: 'pass' | 'fail' | 'not-comparable';
  exitCode: (typeof GATE_EXIT_CODES)[keyof typeof GATE_EXIT_CODES];
  /** Reasons the baseline is not comparable (empty when it is). */
  notComparableReasons: string[];
  /** Differences worth knowing that do not block the comparison (other CPU, other tfjs version). */
  notes: string[];
  confidence: number;
  failOnImprovement: boolean;
  cells: QuantityComparison[];
  ratios: QuantityComparison[];
  /** The cells and ratios that made the gate fail. */
  failures: QuantityComparison[];
  /** Objectives named by `failures`, each once, in scenario order. */
  failingObjectives: string[];
  /** `cpuSignature`: vendor, family and model number, absent where not recorded. */
  baseline: { recordedAt: string; codeRevision: string; cpuModel: string; cpuSignature?: string; cpuCount: number; backend: string; clock: string; runs: number };
  current: {
    startedAt: string;
    codeRevision: string;
    cpuModel: string;
    cpuSignature?: string;
    cpuCount: number;
    backend: string;
    clock: string;
    /** Test-only slowdowns as "objective:factor". */
    injection: string[];
  };
}

export interface CompareOptions {
  /** Fail on significant improvements beyond the threshold too, so the baseline gets refreshed. */
  failOnImprovement: boolean;
  /** Compare with a baseline recorded on another CPU model instead of calling it not comparable. */
  allowOtherCpu?: boolean;
}

/** The facts of the current run that `comparabilityProblems` checks. */
export interface ComparabilityCheck {
  scenarioHash: string;
  backend: string;
  /** This machine's CPU model; when given, a baseline from another model is not comparable unless `allowOtherCpu`. */
  cpuModel?: string;
  /**
   * This machine's CPU signature (`currentCpuSignature`). When it and the baseline's are both
   * known and differ, the baseline is not comparable unless `allowOtherCpu`.
   */
  cpuSignature?: string | null;
  allowOtherCpu?: boolean;
}

/**
 * Lists why a baseline cannot be compared with a run of the given scenario hash, backend and CPU
 * (model name, and the signature where both runs recorded one): an empty list means comparable.
 * Cheap, so the CLI calls it before the sweep.
 *
 * Another CPU model is not comparable because calibration removes differences in speed but not
 * in how a CPU favours one kind of work. With the same code, on a 2-vCPU Intel Xeon against a
 * baseline from an AMD EPYC, the ML steps at D = 400 and 784 took ×1.41 and ×1.28 the units, and
 * the check failed.
 */
export function comparabilityProblems(baseline: GateBaseline, current: ComparabilityCheck): string[] {
  const problems: string[] = [];
  const recordedOn = baseline.environment.cpuModel;
  if (current.cpuModel !== undefined && recordedOn !== current.cpuModel && current.allowOtherCpu !== true) {
    problems.push(
      `CPU model differs: the baseline was recorded on "${recordedOn}", this run is on "${current.cpuModel}", and timing ratios ` +
        'between objectives differ between CPU models; record a baseline for this model with "npm run bench:baseline" ' +
        `(it writes ${cpuBaselinePath(baseline.scenario.name, current.cpuModel, current.cpuSignature ?? null)}, which bench:check then reads on this CPU), ` +
        'or pass --allow-other-cpu to compare anyway',
    );
  }
  const recordedSignature = baseline.environment.cpuSignature;
  const sameModelName = current.cpuModel === undefined || recordedOn === current.cpuModel;
  if (
    sameModelName &&
    recordedSignature !== undefined &&
    current.cpuSignature !== undefined &&
    current.cpuSignature !== null &&
    recordedSignature !== current.cpuSignature &&
    current.allowOtherCpu !== true
  ) {
    problems.push(
      `CPU differs: the baseline was recorded on "${recordedOn}" of ${recordedSignature}, this run is on ${current.cpuSignature}, ` +
        'and timing ratios between objectives differ between CPUs; record a baseline for this CPU with "npm run bench:baseline" ' +
        `(it writes ${cpuBaselinePath(baseline.scenario.name, recordedOn, current.cpuSignature)}, which bench:check then reads on this CPU), ` +
        'or pass --allow-other-cpu to compare anyway',
    );
  }
  if (baseline.scenario.hash !== current.scenarioHash) {
    problems.push(
      `scenario hash differs: the baseline has ${baseline.scenario.hash.slice(0, 12)}…, the scenario now hashes to ` +
        `${current.scenarioHash.slice(0, 12)}… (its measurement part or the gate's measurement procedure changed); ` +
        'record a new baseline with "npm run bench:baseline"',
    );
  }
  if (baseline.environment.backend !== current.backend) {
    // A label is the backend's name, with "+openblas" when OpenBLAS computes its matrix products.
    const [baselineBackend] = baseline.environment.backend.split('+');
    const blasSetting = baseline.environment.backend.endsWith('+openblas')
      ? ' with OpenBLAS installed (and EBFLOW_BLAS unset)'
      : ' and the environment variable EBFLOW_BLAS=off';
    problems.push(
      `backend differs: the baseline was recorded on "${baseline.environment.backend}", this run uses "${current.backend}"; ` +
        `run with --backend ${baselineBackend}${blasSetting}, or record a baseline for "${current.backend}" with --output`,
    );
  }
  return problems;
}

/**
 * Compares a run with the baseline. Returns a not-comparable result without statistics when
 * `comparabilityProblems` finds a problem. Cost: one Mann–Whitney interval per cell and one
 * 2000-resample bootstrap per ratio, well under a second for a few dozen cells of ~12 samples.
 */
export function compareWithBaseline(scenario: GateScenario, baseline: GateBaseline, run: GateRun, options: CompareOptions): GateComparison {
  const notComparableReasons = comparabilityProblems(baseline, {
    scenarioHash: run.scenario.hash,
    backend: run.environment.backend,
    cpuModel: run.environment.cpuModel,
    cpuSignature: run.environment.cpuSignature,
    allowOtherCpu: options.allowOtherCpu,
  });
  const cells = notComparableReasons.length > 0 ? [] : listCells(scenario).map((cell) => compareCell(scenario, baseline, run, cell.id, cell.objective));
  const ratios =
    notComparableReasons.length > 0
      ? []
      : listRatios(scenario).map((ratio) => {
          const comparison = compareRatio(scenario, baseline, run, ratio.id, ratio.numerator.id, ratio.denominator.id, ratio.numerator.objective);
          return explainByReference(comparison, cells.find((cell) => cell.id === ratio.denominator.id));
        });

  const failures = [...cells, ...ratios].filter(
    (entry) =>
      entry.verdict === 'regression' ||
      (entry.kind === 'cell' && entry.verdict === 'not-measured') ||
      (options.failOnImprovement && entry.verdict === 'improvement'),
  );
  const failingObjectives: string[] = [];
  for (const entry of failures) {
    if (!failingObjectives.includes(entry.objective)) failingObjectives.push(entry.objective);
  }

  let outcome: GateComparison['outcome'] = failures.length > 0 ? 'fail' : 'pass';
  if (notComparableReasons.length > 0) outcome = 'not-comparable';
  const exitCodes = { pass: GATE_EXIT_CODES.pass, fail: GATE_EXIT_CODES.fail, 'not-comparable': GATE_EXIT_CODES.notComparable } as const;
  const exitCode = exitCodes[outcome];

  return {
    outcome,
    exitCode,
    notComparableReasons,
    notes: environmentNotes(baseline, run),
    confidence: scenario.comparison.confidence,
    failOnImprovement: options.failOnImprovement,
    cells,
    ratios,
    failures,
    failingObjectives,
    baseline: {
      recordedAt: baseline.recordedAt,
      codeRevision: baseline.environment.codeRevision,
      cpuModel: baseline.environment.cpuModel,
      ...(baseline.environment.cpuSignature === undefined ? {} : { cpuSignature: baseline.environment.cpuSignature }),
      cpuCount: baseline.environment.cpuCount,
      backend: baseline.environment.backend,
      clock: baseline.runs[0].clock,
      runs: baseline.runs.length,
    },
    current: {
      startedAt: run.startedAt,
      codeRevision: run.environment.codeRevision,
      cpuModel: run.environment.cpuModel,
      ...(run.environment.cpuSignature === undefined ? {} : { cpuSignature: run.environment.cpuSignature }),
      cpuCount: run.environment.cpuCount,
      backend: run.environment.backend,
      clock: run.clock,
      injection: run.injection.map((injection) => `${injection.objective}:${injection.factor}`),
    },
  };
}

/**
 * Returns the verdict for an estimate against a threshold t > 1: beyond t (or below 1/t) and an
 * interval that excludes 1 is a regression (improvement); beyond but including 1 is
 * "not-significant"; anything within [1/t, t] is "within-threshold".
 */
export function classifyChange(estimate: ChangeEstimate, threshold: number): Exclude<ChangeVerdict, 'explained'> {
  const [low, high] = estimate.interval;
  if (estimate.ratio > threshold) return low > 1 ? 'regression' : 'not-significant';
  if (estimate.ratio < 1 / threshold) return high < 1 ? 'improvement' : 'not-significant';
  return 'within-threshold';
}

function compareCell(scenario: GateScenario, baseline: GateBaseline, run: GateRun, id: string, objective: string): QuantityComparison {
  const threshold = thresholdFor(scenario, id, 'cell');
  const reference = referenceCellSamples(baseline, id);
  const current = measuredSamples(run, id);
  const base = { id, kind: 'cell' as const, objective, threshold };
  if (reference === null && current === null) {
    return { ...base, verdict: 'absent', reason: `neither the baseline nor this run measured it (${unmeasuredReason(run, id)})` };
  }
  if (reference === null) {
    return { ...base, verdict: 'new', reason: 'the baseline did not measure it; refresh the baseline to start gating it' };
  }
  if (current === null) {
    return { ...base, verdict: 'not-measured', reason: `this run did not measure it: ${unmeasuredReason(run, id)}` };
  }
  const estimate = mannWhitneyShift(logs(reference.samples.normalized), logs(current.normalized), scenario.comparison.confidence);
  const verdict = classifyChange(estimate, threshold);
  return {
    ...base,
    verdict,
    estimate,
    baselineMedian: median(reference.samples.normalized),
    currentMedian: median(current.normalized),
    baselineStepMs: median(reference.samples.stepMs),
    currentStepMs: median(current.stepMs),
    note: verdict === 'not-significant' ? notSignificantNote(estimate, threshold) : undefined,
  };
}

function compareRatio(
  scenario: GateScenario,
  baseline: GateBaseline,
  run: GateRun,
  id: string,
  numeratorId: string,
  denominatorId: string,
  objective: string,
): QuantityComparison {
  const threshold = thresholdFor(scenario, id, 'ratio');
  const base = { id, kind: 'ratio' as const, objective, threshold };
  const reference = referenceRatioSamples(baseline, numeratorId, denominatorId);
  const numerator = measuredSamples(run, numeratorId);
  const denominator = measuredSamples(run, denominatorId);
  if (reference === null || numerator === null || denominator === null) {
    // The cells' own comparisons report (and, where needed, fail on) the missing measurement.
    const side = reference === null ? 'the baseline' : 'this run';
    return { ...base, verdict: 'absent', reason: `${side} did not measure both ${numeratorId} and ${denominatorId}` };
  }
  const estimate = bootstrapRatioOfRatios(
    logs(reference.numerator.normalized),
    logs(numerator.normalized),
    logs(reference.denominator.normalized),
    logs(denominator.normalized),
    { confidence: scenario.comparison.confidence, resamples: BOOTSTRAP_RESAMPLES, seed: BOOTSTRAP_SEED },
  );
  const verdict = classifyChange(estimate, threshold);
  return {
    ...base,
    verdict,
    estimate,
    baselineMedian: medianRatio(reference.numerator, reference.denominator),
    currentMedian: medianRatio(numerator, denominator),
    note: verdict === 'not-significant' ? notSignificantNote(estimate, threshold) : undefined,
  };
}

/**
 * Turns a ratio's regression into "explained" when its reference objective itself improved
 * (and a ratio's improvement when the reference regressed): the ratio then moved because of the
 * reference, which the reference cell already reports.
 */
function explainByReference(ratio: QuantityComparison, referenceCell: QuantityComparison | undefined): QuantityComparison {
  if (referenceCell === undefined || !('estimate' in referenceCell) || !('estimate' in ratio)) return ratio;
  const movedUp = ratio.verdict === 'regression' && referenceCell.verdict === 'improvement';
  const movedDown = ratio.verdict === 'improvement' && referenceCell.verdict === 'regression';
  if (!movedUp && !movedDown) return ratio;
  const direction = movedUp ? 'got faster' : 'got slower';
  return {
    ...ratio,
    verdict: 'explained',
    note: `${referenceCell.id} itself ${direction} (×${formatFactor(referenceCell.estimate.ratio)}), which moves every ratio to it`,
  };
}

function notSignificantNote(estimate: ChangeEstimate, threshold: number): string {
  const direction = estimate.ratio > 1 ? 'slower' : 'faster';
  const level = Math.round(estimate.confidence * 100);
  return (
    `×${formatFactor(estimate.ratio)} (${direction}) is beyond the ×${formatFactor(threshold)} threshold but not significant at ${level}% ` +
    `(interval ×${formatFactor(estimate.interval[0])}–×${formatFactor(estimate.interval[1])}, p = ${formatP(estimate.pValue)}); ` +
    'treated as noise, rerun the check if it persists'
  );
}

function environmentNotes(baseline: GateBaseline, run: GateRun): string[] {
  const notes: string[] = [];
  const before = baseline.environment;
  const now = run.environment;
  if (before.cpuModel !== now.cpuModel || before.cpuCount !== now.cpuCount) {
    notes.push(
      `the baseline was recorded on "${before.cpuModel}" (${before.cpuCount} CPUs), this run is on "${now.cpuModel}" (${now.cpuCount} CPUs); ` +
        'calibration removes differences in speed but not in how a CPU favours one kind of work, so a failure may be a false alarm' +
        (before.cpuModel === now.cpuModel
          ? ''
          : `; "npm run bench:baseline" on this machine records ${cpuBaselinePath(baseline.scenario.name, now.cpuModel, now.cpuSignature ?? null)}, ` +
            'which bench:check then reads on this CPU'),
    );
  }
  if (before.cpuModel === now.cpuModel && before.cpuSignature !== undefined && now.cpuSignature !== undefined && before.cpuSignature !== now.cpuSignature) {
    notes.push(
      `the baseline was recorded on ${before.cpuSignature}, this run is on ${now.cpuSignature}, both named "${now.cpuModel}"; ` +
        `a failure may be a false alarm; "npm run bench:baseline" on this machine records ${cpuBaselinePath(baseline.scenario.name, now.cpuModel, now.cpuSignature)}`,
    );
  }
  if (before.cpuModel === now.cpuModel && before.cpuSignature === undefined && now.cpuSignature !== undefined) {
    notes.push(
      `the baseline records no CPU signature, so it was compared by the model name "${now.cpuModel}" alone and may come from ` +
        `another CPU of that name than this run's ${now.cpuSignature}; a failure may be a false alarm; "npm run bench:baseline" ` +
        `on this machine records ${cpuBaselinePath(baseline.scenario.name, now.cpuModel, now.cpuSignature)}`,
    );
  }
  if (before.cpuModel === now.cpuModel && before.cpuSignature !== undefined && now.cpuSignature === undefined) {
    notes.push(
      `this run records no CPU signature (/proc/cpuinfo is missing or lacks its fields), so it was compared with a baseline from ${before.cpuSignature} ` +
        `by the model name "${now.cpuModel}" alone; a failure may be a false alarm`,
    );
  }
  if (before.tfjsCoreVersion !== now.tfjsCoreVersion) {
    notes.push(`tfjs-core changed from ${before.tfjsCoreVersion} to ${now.tfjsCoreVersion}; a change in speed may come from it`);
  }
  if (before.nodeVersion !== now.nodeVersion) {
    notes.push(`Node.js changed from ${before.nodeVersion} to ${now.nodeVersion}; a change in speed may come from it`);
  }
  return notes;
}

function unmeasuredReason(run: GateRun, id: string): string {
  const cell = run.cells.find((entry) => entry.id === id);
  if (cell === undefined) return 'the run has no such cell';
  if (cell.status === 'unavailable') return `unavailable: ${cell.reason}`;
  if (cell.status === 'errored') return `a step failed: ${cell.message}`;
  return 'measured';
}

function medianRatio(numerator: GateSamples, denominator: GateSamples): number {
  return median(numerator.normalized) / median(denominator.normalized);
}

function logs(values: readonly number[]): number[] {
  return values.map((value) => Math.log(value));
}

/** Formats a factor with three significant digits ("1.52", "0.847", "12.3"). */
export function formatFactor(value: number): string {
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '-∞';
  if (value === 0) return '0';
  return value.toPrecision(3);
}

/** Formats a p-value ("0.031", "<0.001"). */
export function formatP(value: number): string {
  return value < 0.001 ? '<0.001' : value.toPrecision(2);
}
