/**
 * Side-by-side comparison of two result folders: per matching cell, the ratio of median
 * ms/iteration and the NLL difference. Cells of result sets whose scenario hashes differ are
 * reported as not comparable, never compared.
 */
import { cellKeyString, summarizeSet, type CellSummary } from './cells.js';
import { environmentsOf } from './page.js';
import type { LoadedResults, ResultSet } from './records.js';
import { median } from './statistics.js';
import { onOff, rowStateOf, standardNotes } from './tables.js';
import { createTable, type ReportTable, type RowState, type TableRow, type TableValue } from './table.js';

function keyValues(cell: CellSummary): Record<string, TableValue> {
  const key = cell.key;
  return {
    dataset: key.dataset,
    architecture: key.architecture,
    objective: key.objective,
    variant: key.variant,
    channels: key.channels,
    dimension: key.dimension,
    layers: key.layers,
    batch_size: key.batchSize,
    map: onOff(key.matchAfterPreprocessing),
    ema: onOff(key.ema),
    explicit_derivatives: onOff(key.explicitDerivatives),
    measure: key.measure,
  };
}

function sideValues(prefix: 'a' | 'b', cell: CellSummary | undefined): Record<string, TableValue> {
  return {
    [`${prefix}_runs`]: cell?.counts.completed ?? null,
    [`${prefix}_status`]: cell?.status ?? 'missing',
    [`${prefix}_median_ms`]: cell?.timing?.median ?? null,
    [`${prefix}_nll_nats`]: cell?.nllNats?.mean ?? null,
  };
}

function backendsOf(set: ResultSet | undefined): string | null {
  if (set === undefined) {
    return null;
  }
  return [...new Set(environmentsOf(set).map((group) => `${group.environment.backend} on ${group.environment.cpuModel}`))].join('; ');
}

/** Returns the worse of two row states, so a comparison row shows a failure on either side. */
function combinedState(a: CellSummary | undefined, b: CellSummary | undefined): RowState {
  const order: RowState[] = ['failed', 'partial', 'skipped', 'missing', 'ok'];
  const states = [rowStateOf(a), rowStateOf(b)];
  return order.find((state) => states.includes(state)) ?? 'ok';
}

/**
 * Builds the comparison table of result folders A and B.
 *
 * 1. Pair result sets by scenario name and hash. A name whose hashes differ between A and B gives
 *    one "not comparable" row per hash pair; a set on one side only gives "only in A/B" rows.
 * 2. Within a paired set, match cells by their key (everything but the seed) and report B's
 *    median ms divided by A's and B's mean NLL minus A's.
 */
export function buildComparisonTable(a: LoadedResults, b: LoadedResults): ReportTable {
  const rows: TableRow[] = [];
  const names = [...new Set([...a.sets, ...b.sets].map((set) => set.scenarioName))].sort();

  for (const name of names) {
    const setsA = a.sets.filter((set) => set.scenarioName === name);
    const setsB = b.sets.filter((set) => set.scenarioName === name);
    const hashesA = new Set(setsA.map((set) => set.scenarioHash));

    for (const setA of setsA) {
      const setB = setsB.find((candidate) => candidate.scenarioHash === setA.scenarioHash);
      if (setB !== undefined) {
        rows.push(...compareSets(setA, setB));
      } else if (setsB.length > 0) {
        rows.push(notComparableRow(name, setA, setsB, 'a'));
      } else {
        rows.push(...oneSidedRows(setA, 'a'));
      }
    }
    for (const setB of setsB.filter((set) => !hashesA.has(set.scenarioHash))) {
      if (setsA.length > 0) {
        rows.push(notComparableRow(name, setB, setsA, 'b'));
      } else {
        rows.push(...oneSidedRows(setB, 'b'));
      }
    }
  }

  return createTable({
    id: 'comparison',
    title: 'Comparison of two result sets',
    file: 'comparison.csv',
    description:
      `A = ${a.resultsDir}, B = ${b.resultsDir}. One row per cell group present in either; ms ratio = B’s median ms/iteration ÷ A’s ` +
      '(below 1: B is faster); NLL difference = B − A in nats. Scenarios whose hashes differ between A and B are not comparable and get one row per pair of hashes.',
    columns: [
      { key: 'scenario', label: 'scenario', format: 'text' },
      { key: 'hash', label: 'hash', format: 'text' },
      { key: 'comparison', label: 'comparison', format: 'text' },
      { key: 'dataset', label: 'dataset', format: 'text' },
      { key: 'architecture', label: 'architecture', format: 'text' },
      { key: 'objective', label: 'objective', format: 'text' },
      { key: 'variant', label: 'variant', format: 'text' },
      { key: 'channels', label: 'C', format: 'integer' },
      { key: 'dimension', label: 'D', format: 'integer' },
      { key: 'layers', label: 'L', format: 'integer' },
      { key: 'batch_size', label: 'batch', format: 'integer' },
      { key: 'map', label: 'MaP', format: 'text' },
      { key: 'ema', label: 'EMA', format: 'text' },
      { key: 'explicit_derivatives', label: 'explicit derivatives', format: 'text' },
      { key: 'measure', label: 'measure', format: 'text' },
      { key: 'a_runs', label: 'A runs', format: 'integer' },
      { key: 'b_runs', label: 'B runs', format: 'integer' },
      { key: 'a_status', label: 'A status', format: 'text' },
      { key: 'b_status', label: 'B status', format: 'text' },
      { key: 'a_median_ms', label: 'A median ms', format: 'milliseconds', measured: true },
      { key: 'b_median_ms', label: 'B median ms', format: 'milliseconds', measured: true },
      { key: 'ms_ratio', label: 'B ÷ A ms', format: 'ratio' },
      { key: 'a_nll_nats', label: 'A NLL', format: 'nats', measured: true },
      { key: 'b_nll_nats', label: 'B NLL', format: 'nats', measured: true },
      { key: 'nll_diff_nats', label: 'B − A NLL', format: 'signedNats' },
      { key: 'a_backend', label: 'A backend', format: 'text' },
      { key: 'b_backend', label: 'B backend', format: 'text' },
    ],
    rows,
    notes: standardNotes(rows),
    agreement: [],
  });
}

function compareSets(setA: ResultSet, setB: ResultSet): TableRow[] {
  const cellsA = summarizeSet(setA);
  const cellsB = summarizeSet(setB);
  const byKey = new Map<string, { a?: CellSummary; b?: CellSummary }>();
  for (const cell of cellsA) {
    byKey.set(cellKeyString(cell.key), { a: cell });
  }
  for (const cell of cellsB) {
    const entry = byKey.get(cellKeyString(cell.key)) ?? {};
    entry.b = cell;
    byKey.set(cellKeyString(cell.key), entry);
  }
  const rows: TableRow[] = [];
  for (const { a, b } of byKey.values()) {
    const cell = (a ?? b)!;
    let comparison = 'comparable';
    if (a === undefined) {
      comparison = 'only in B';
    } else if (b === undefined) {
      comparison = 'only in A';
    }
    const msA = a?.timing?.median ?? null;
    const msB = b?.timing?.median ?? null;
    const nllA = a?.nllNats?.mean ?? null;
    const nllB = b?.nllNats?.mean ?? null;
    rows.push({
      state: combinedState(a, b),
      values: {
        scenario: setA.scenarioName,
        hash: setA.scenarioHash.slice(0, 12),
        comparison,
        ...keyValues(cell),
        ...sideValues('a', a),
        ...sideValues('b', b),
        ms_ratio: msA !== null && msB !== null && msA > 0 ? msB / msA : null,
        nll_diff_nats: nllA !== null && nllB !== null ? nllB - nllA : null,
        a_backend: backendsOf(setA),
        b_backend: backendsOf(setB),
      },
    });
  }
  return rows;
}

function notComparableRow(name: string, set: ResultSet, others: ResultSet[], side: 'a' | 'b'): TableRow {
  const otherHashes = others.map((other) => other.scenarioHash.slice(0, 12)).join(', ');
  const own = set.scenarioHash.slice(0, 12);
  return {
    state: 'missing',
    values: {
      scenario: name,
      hash: side === 'a' ? `A ${own} vs B ${otherHashes}` : `B ${own} vs A ${otherHashes}`,
      comparison: 'not comparable: scenario hashes differ',
      [`${side}_runs`]: set.records.filter((run) => run.record.outcome.status === 'completed').length,
      [`${side}_status`]: `${set.records.length} record(s)`,
      [`${side}_backend`]: backendsOf(set),
    },
  };
}

function oneSidedRows(set: ResultSet, side: 'a' | 'b'): TableRow[] {
  return summarizeSet(set).map((cell) => ({
    state: 'missing' as RowState,
    values: {
      scenario: set.scenarioName,
      hash: set.scenarioHash.slice(0, 12),
      comparison: side === 'a' ? 'only in A' : 'only in B',
      ...keyValues(cell),
      ...sideValues(side, cell),
      [`${side}_backend`]: backendsOf(set),
    },
  }));
}

/** Writes the comparison's summary sentences: how many cells matched and the range of ratios. */
export function describeComparison(table: ReportTable): string[] {
  const comparable = table.rows.filter((row) => row.values.comparison === 'comparable');
  const ratios = comparable.map((row) => row.values.ms_ratio).filter((value): value is number => typeof value === 'number');
  const notComparable = table.rows.filter((row) => String(row.values.comparison).startsWith('not comparable'));
  const sentences = [`${comparable.length} cell group(s) are in both result sets.`];
  if (ratios.length > 0) {
    const sorted = [...ratios].sort((x, y) => x - y);
    sentences.push(
      `B’s median ms/iteration is ${sorted[0].toPrecision(3)}× to ${sorted[sorted.length - 1].toPrecision(3)}× A’s (median ratio ${median(sorted).toPrecision(3)}×, ${ratios.length} cell(s) timed on both sides).`,
    );
  }
  if (notComparable.length > 0) {
    sentences.push(`${notComparable.length} scenario hash pair(s) differ and are not comparable: ${[...new Set(notComparable.map((row) => row.values.scenario))].join(', ')}.`);
  }
  return sentences;
}
