/**
 * Plain text for CI logs: the report of a gate comparison (a header, one table of cells, one of
 * ratios, the notes, and a closing list of what got slower) and the sweep's progress lines.
 */
import { formatFactor, formatP, type GateComparison, type QuantityComparison } from './compare.js';
import type { GateBaseline } from './records.js';
import { thresholdFor, type GateScenario } from './scenario.js';
import type { GateSweepEvent } from './sweep.js';

const VERDICT_LABELS: Record<QuantityComparison['verdict'], string> = {
  regression: 'REGRESSION',
  improvement: 'improvement',
  'within-threshold': 'ok',
  'not-significant': 'ok (noise, see note)',
  explained: 'ok (explained, see note)',
  'not-measured': 'NOT MEASURED',
  new: 'new (no baseline)',
  absent: 'absent',
};

/** Renders the comparison as lines of text (no trailing newline). O(cells + ratios). */
export function renderGateReport(comparison: GateComparison): string {
  const lines: string[] = [];
  lines.push(`Timing gate: ${headline(comparison)}`);
  lines.push(
    `baseline: recorded ${comparison.baseline.recordedAt}, revision ${shortRevision(comparison.baseline.codeRevision)}, ` +
      `${comparison.baseline.backend} (${comparison.baseline.clock} clock) on ${comparison.baseline.cpuModel}${signatureText(comparison.baseline.cpuSignature)} (${comparison.baseline.cpuCount} CPUs), ${comparison.baseline.runs} runs`,
  );
  lines.push(
    `this run: started ${comparison.current.startedAt}, revision ${shortRevision(comparison.current.codeRevision)}, ` +
      `${comparison.current.backend} (${comparison.current.clock} clock) on ${comparison.current.cpuModel}${signatureText(comparison.current.cpuSignature)} (${comparison.current.cpuCount} CPUs)`,
  );
  if (comparison.current.injection.length > 0) {
    lines.push(`TEST-ONLY slowdown injected: ${comparison.current.injection.join(', ')} (EBFLOW_INJECT_SLOWDOWN)`);
  }

  if (comparison.outcome === 'not-comparable') {
    lines.push('', 'The baseline is not comparable with this run:');
    for (const reason of comparison.notComparableReasons) lines.push(`- ${reason}`);
    return lines.join('\n');
  }

  const level = `${Math.round(comparison.confidence * 100)}%`;
  lines.push(
    '',
    `Cells: step time in calibration units; now ms = median step time on the ${comparison.current.clock} clock; ` +
      `change = the Hodges–Lehmann estimate of now / baseline from all samples, which can differ from the ratio of the ` +
      `medians shown; ${level} interval (Mann–Whitney), p-value`,
  );
  lines.push(...renderTable(comparison.cells, level, true));
  lines.push(
    '',
    'Ratios to the reference objective, both from one run; change = the change of the numerator over that of the ' +
      `denominator (each a Hodges–Lehmann estimate from all samples, so it can differ from the ratio of the medians shown), ${level} bootstrap interval`,
  );
  lines.push(...renderTable(comparison.ratios, level, false));

  const notes = [
    ...comparison.notes,
    ...[...comparison.cells, ...comparison.ratios].flatMap((entry) => {
      if ('note' in entry && entry.note !== undefined) return [`${entry.id}: ${entry.note}`];
      if ('reason' in entry && entry.verdict !== 'absent') return [`${entry.id}: ${entry.reason}`];
      return [];
    }),
  ];
  const absent = [...comparison.cells, ...comparison.ratios].filter((entry) => entry.verdict === 'absent');
  if (absent.length > 0) {
    notes.push(`${absent.length} cell(s) or ratio(s) were measured by neither run: ${absent.map((entry) => entry.id).join(', ')}`);
    const reasons = new Set(absent.flatMap((entry) => ('reason' in entry && entry.kind === 'cell' ? [entry.reason] : [])));
    for (const reason of reasons) notes.push(`  ${reason}`);
  }
  if (notes.length > 0) {
    lines.push('', 'Notes:');
    for (const note of notes) lines.push(`- ${note}`);
  }

  if (comparison.failures.length > 0) {
    lines.push('', 'What made the gate fail:');
    for (const failure of comparison.failures) lines.push(`- ${describeFailure(failure, level)}`);
    lines.push(
      'If the change is intended, record a new baseline with "npm run bench:baseline" and commit results/baselines/; ' +
        'if it is noise, rerun the check (see docs/ci-gate.md).',
    );
  }
  return lines.join('\n');
}

function headline(comparison: GateComparison): string {
  if (comparison.outcome === 'not-comparable') return `NOT COMPARABLE (exit code ${comparison.exitCode})`;
  const count = (verdict: QuantityComparison['verdict']): number =>
    [...comparison.cells, ...comparison.ratios].filter((entry) => entry.verdict === verdict).length;
  const parts = [
    `${count('regression')} regression(s)`,
    `${count('improvement')} improvement(s)`,
    `${count('not-measured')} cell(s) not measured`,
    `${count('not-significant')} large but not significant`,
  ];
  return `${comparison.outcome === 'pass' ? 'PASS' : 'FAIL'}: ${parts.join(', ')} (exit code ${comparison.exitCode})`;
}

function renderTable(entries: readonly QuantityComparison[], level: string, isCell: boolean): string[] {
  const header = [isCell ? 'cell' : 'ratio', 'baseline', 'now', ...(isCell ? ['now ms'] : []), 'change', `${level} interval`, 'p', 'threshold', 'verdict'];
  const rows = entries.map((entry) => {
    if (!('estimate' in entry)) {
      return [entry.id, '-', '-', ...(isCell ? ['-'] : []), '-', '-', '-', `×${formatFactor(entry.threshold)}`, VERDICT_LABELS[entry.verdict]];
    }
    const [low, high] = entry.estimate.interval;
    const stepColumn: string[] = [];
    if (isCell) stepColumn.push(entry.currentStepMs === undefined ? '-' : entry.currentStepMs.toFixed(1));
    return [
      entry.id,
      formatValue(entry.baselineMedian),
      formatValue(entry.currentMedian),
      ...stepColumn,
      `×${formatFactor(entry.estimate.ratio)}`,
      `×${formatFactor(low)}–×${formatFactor(high)}`,
      formatP(entry.estimate.pValue),
      `×${formatFactor(entry.threshold)}`,
      VERDICT_LABELS[entry.verdict],
    ];
  });
  return alignColumns([header, ...rows]);
}

function alignColumns(rows: string[][]): string[] {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column])))
      .join('  ')
      .trimEnd(),
  );
}

function describeFailure(failure: QuantityComparison, level: string): string {
  if ('reason' in failure) {
    return `${failure.id}: ${failure.reason}`;
  }
  const { ratio, interval, pValue } = failure.estimate;
  const what = failure.kind === 'cell' ? 'step time' : 'ratio';
  const direction = ratio > 1 ? 'slower' : 'faster';
  return (
    `${failure.id} (${what}): ×${formatFactor(ratio)} ${direction} than the baseline ` +
    `(${level} interval ×${formatFactor(interval[0])}–×${formatFactor(interval[1])}, p ${pValue < 0.001 ? '<' : '='} ${formatP(pValue).replace('<', '')}), ` +
    `threshold ×${formatFactor(failure.threshold)}`
  );
}

function formatValue(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toPrecision(3);
}

function shortRevision(revision: string): string {
  return /^[0-9a-f]{40}/.test(revision) ? `${revision.slice(0, 10)}${revision.slice(40)}` : revision;
}

/** Returns one progress line for a sweep event, such as "gate: round 2/4 done after 35.1 s". */
export function describeSweepEvent(event: GateSweepEvent): string {
  switch (event.type) {
    case 'cell-ready':
      return `gate: ${event.cell.id} ready (warm-up ${event.warmupSeconds.toFixed(1)} s)`;
    case 'cell-unavailable':
      return `gate: ${event.cell.id} unavailable: ${event.reason}`;
    case 'cell-errored':
      return `gate: ERROR in ${event.cell.id}: ${event.message}`;
    case 'round-finished':
      return `gate: round ${event.round}/${event.rounds} done after ${event.elapsedSeconds.toFixed(1)} s`;
  }
}

/**
 * Returns a table of each cell's reference median (calibration units and ms) and the spread of
 * the runs' medians (largest / smallest), which shows how far apart runs drift on this machine:
 * a threshold should sit well above it. Warns about every cell whose spread reaches its threshold.
 */
export function renderBaselineSummary(baseline: GateBaseline, scenario: GateScenario): string {
  const rows = [['cell', 'median units', 'median ms', 'run spread']];
  const warnings: string[] = [];
  for (const [id, summary] of Object.entries(baseline.summary)) {
    const present = summary.runMedians.filter((value): value is number => value !== null);
    const spread = Math.max(...present) / Math.min(...present);
    rows.push([id, summary.medianNormalized.toPrecision(4), summary.medianStepMs.toFixed(1), `×${formatFactor(spread)}`]);
    const threshold = thresholdFor(scenario, id, 'cell');
    if (spread >= threshold) {
      warnings.push(
        `WARNING: ${id}: the runs' medians spread ×${formatFactor(spread)}, at or above its threshold ×${formatFactor(threshold)}, ` +
          'so unchanged code can fail the check; record again on a quieter machine, or raise its threshold in comparison.overrides',
      );
    }
  }
  const unmeasured = baseline.runs[0].cells.filter((cell) => !(cell.id in baseline.summary));
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  const lines = rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd());
  for (const cell of unmeasured) {
    lines.push(`${cell.id}: not measured in any run (${cell.status === 'unavailable' ? cell.reason : cell.status === 'errored' ? cell.message : ''})`);
  }
  const durations = baseline.runs.map((run) => run.durationSeconds.toFixed(0)).join(', ');
  lines.push(`${baseline.runs.length} runs on ${baseline.environment.backend}, ${baseline.environment.cpuModel}; sweep durations ${durations} s`);
  lines.push(...warnings);
  return lines.join('\n');
}

/** Returns ", <signature>" for a recorded CPU signature, or nothing. */
function signatureText(signature: string | undefined): string {
  return signature === undefined ? '' : `, ${signature}`;
}
