/**
 * Text formatting for the bench CLI: durations, numbers and the summary table.
 */
import type { CellSummary } from '../runner/sweep.js';
import type { ResultRecord } from '../runner/record.js';

/** Formats seconds as "850 ms", "12.3 s", "4m 03s" or "2h 05m". */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(Math.round(seconds - minutes * 60)).padStart(2, '0')}s`;
  const hours = Math.floor(minutes / 60);
  return `${hours}h ${String(minutes - hours * 60).padStart(2, '0')}m`;
}

/** Formats a time per iteration given in ms, choosing ms or s. */
export function formatIterationTime(ms: number): string {
  return ms < 1000 ? `${ms.toPrecision(3)} ms/it` : `${(ms / 1000).toPrecision(3)} s/it`;
}

/** Formats a number with `digits` significant digits, or "–" for null and "NaN" for non-finite values. */
export function formatNumber(value: number | null | undefined, digits = 4): string {
  if (value === null || value === undefined) return '–';
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 10 ** digits) return value.toFixed(0);
  return value.toPrecision(digits);
}

/**
 * Formats a median's confidence interval for a log line: "95% CI 1.2–3.4 ms", or with fewer
 * than 6 samples its true coverage, such as "75% CI 1.2–3.4 ms, too few steps for 95%". One
 * sample (coverage 0) has no interval.
 */
export function formatMedianConfidence(timing: { medianCiMs: [number, number]; medianCiLevel: number }): string {
  const range = `${formatNumber(timing.medianCiMs[0])}–${formatNumber(timing.medianCiMs[1])} ms`;
  if (timing.medianCiLevel >= 0.95) return `95% CI ${range}`;
  if (!(timing.medianCiLevel > 0)) return 'no CI from 1 timed step';
  return `${Math.floor(timing.medianCiLevel * 100)}% CI ${range}, too few steps for 95%`;
}

/** Formats a median's interval as "low–high ms", with its coverage when it is below 95% (fewer than 6 samples). */
export function formatMedianInterval(timing: { medianCiMs: [number, number]; medianCiLevel: number }): string {
  const range = `${formatNumber(timing.medianCiMs[0])}–${formatNumber(timing.medianCiMs[1])}`;
  return timing.medianCiLevel < 0.95 ? `${range} (${Math.floor(timing.medianCiLevel * 100)}%)` : range;
}

/** Formats an estimate in minutes as "~12 min" or "~2.5 h". */
export function formatMinutes(minutes: number | null): string {
  if (minutes === null) return 'no estimate';
  return minutes < 90 ? `~${Math.round(minutes)} min` : `~${(minutes / 60).toFixed(1)} h`;
}

/** Describes a record's outcome in one line, such as "completed" or "diverged at step 37 (NaN)". */
export function describeOutcome(record: ResultRecord): string {
  const outcome = record.outcome;
  switch (outcome.status) {
    case 'completed':
      return 'completed';
    case 'diverged':
      return `diverged at step ${outcome.step} (${outcome.firstNonFiniteValue})`;
    case 'errored':
      return `errored: ${outcome.message}`;
    case 'skipped':
      return `skipped: ${outcome.reason}`;
  }
}

const MAX_OUTCOME_WIDTH = 40;

/**
 * Renders the end-of-run table: per cell its outcome, median ms per iteration with the 95%
 * interval, iterations per second, final NLL (nats) and bits/dim, and whether this run produced
 * the record.
 */
export function summaryTable(cells: readonly CellSummary[]): string {
  const header = ['cell', 'outcome', 'median ms/it', '95% CI of median', 'it/s', 'NLL nats', 'bits/dim', 'record'];
  const rows = cells.map(({ cellId, record, ranNow }) => {
    const timing = record.timing;
    let outcome = describeOutcome(record);
    if (outcome.length > MAX_OUTCOME_WIDTH) outcome = `${outcome.slice(0, MAX_OUTCOME_WIDTH - 1)}…`;
    return [
      cellId,
      outcome,
      timing ? formatNumber(timing.medianMs) : '–',
      timing ? formatMedianInterval(timing) : '–',
      timing ? formatNumber(1000 / timing.medianMs, 3) : '–',
      formatNumber(record.finalNll?.nllNats ?? null, 6),
      formatNumber(record.finalNll?.bitsPerDim ?? null, 4),
      ranNow ? 'new' : 'kept',
    ];
  });
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const numeric = new Set([2, 3, 4, 5, 6]);
  const render = (row: string[]): string =>
    row.map((cell, column) => (numeric.has(column) ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join('  ').trimEnd();
  return [render(header), render(widths.map((width) => '-'.repeat(width))), ...rows.map(render)].join('\n');
}
