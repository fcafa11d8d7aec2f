/**
 * The table model shared by the CSV, Markdown, HTML and terminal outputs, and its formatting.
 *
 * A value of null is a value we do not have. CSV writes it as an empty field. The page, the
 * Markdown and the text output write the row's state ("missing", "failed", "skipped") in the
 * measured columns of rows without a completed run, and "—" elsewhere (not applicable, no
 * published value, a single run without an interval). No output ever turns null into 0.
 */
import { stringify } from 'csv-stringify/sync';

export type TableValue = number | string | null;

/** Display format of a column on the page; CSV always keeps 6 significant digits. */
export type ValueFormat =
  | 'text'
  | 'integer'
  | 'milliseconds'
  | 'nats'
  | 'bitsPerDim'
  | 'ratio'
  | 'rate'
  | 'metric'
  | 'exponent'
  | 'signedNats'
  | 'signedBitsPerDim';

export interface TableColumn {
  /** Column name in the CSV header (snake_case). */
  key: string;
  /** Column heading on the page. */
  label: string;
  format: ValueFormat;
  /** A primary measurement: when null in a row without a completed run, the row's state is shown instead of "—". */
  measured?: boolean;
}

/**
 * Outcome of the cell behind a row. `ok`: every run completed. `partial`: some runs diverged or
 * errored, and the numbers come from the rest. `failed`: no run completed because of divergence or
 * errors. `skipped`: the runner skipped every run. `missing`: no record at all.
 */
export type RowState = 'ok' | 'partial' | 'failed' | 'skipped' | 'missing';

export interface TableRow {
  values: Record<string, TableValue>;
  state: RowState;
}

export interface ReportTable {
  id: string;
  title: string;
  /** File name of the CSV under tables/. */
  file: string;
  /** Summary of the table's contents and the source of its numbers. */
  description: string;
  columns: TableColumn[];
  rows: TableRow[];
  /** Caveats about this table's data, shown under it. */
  notes: string[];
  /** Sentences comparing our numbers with the published ones (`paper-results.ts`), generated from the data. */
  agreement: string[];
}

/** Returns the table with every column present in every row, absent values as null. */
export function createTable(table: ReportTable): ReportTable {
  for (const row of table.rows) {
    for (const column of table.columns) {
      if (row.values[column.key] === undefined) {
        row.values[column.key] = null;
      }
    }
  }
  return table;
}

/** Rounds a finite number to 6 significant digits for the CSV files. */
function roundForCsv(value: number): number {
  return Number.isFinite(value) ? Number(value.toPrecision(6)) : value;
}

/** Returns the table as CSV text: a header of column keys, missing values as empty fields. */
export function tableToCsv(table: ReportTable): string {
  const records = table.rows.map((row) =>
    table.columns.map((column) => {
      const value = row.values[column.key];
      if (value === null || value === undefined) {
        return '';
      }
      return typeof value === 'number' ? roundForCsv(value) : value;
    }),
  );
  return stringify(records, { header: true, columns: table.columns.map((column) => column.key) });
}

/** Text shown for a null value: the row's state in measured columns of rows without a completed run, else "—". */
export function emptyText(row: TableRow, column: TableColumn): string {
  if (column.measured === true && (row.state === 'missing' || row.state === 'failed' || row.state === 'skipped')) {
    return row.state;
  }
  return '—';
}

/** Formats one cell of a row for the page, the Markdown and the text output. */
export function formatCell(row: TableRow, column: TableColumn): string {
  const value = row.values[column.key];
  return value === null || value === undefined ? emptyText(row, column) : formatValue(value, column.format);
}

/** Formats a non-null value; null or undefined becomes "—". */
export function formatValue(value: TableValue | undefined, format: ValueFormat): string {
  if (value === null || value === undefined) {
    return '—';
  }
  if (typeof value === 'string') {
    return value;
  }
  if (!Number.isFinite(value)) {
    return String(value);
  }
  switch (format) {
    case 'text':
      return String(value);
    case 'integer':
      return Math.round(value).toString();
    case 'milliseconds':
    case 'rate':
      return formatSignificant(value, 3);
    case 'nats':
      return value.toFixed(1);
    case 'signedNats':
      return signed(value.toFixed(1), value);
    case 'bitsPerDim':
      return value.toFixed(3);
    case 'signedBitsPerDim':
      return signed(value.toFixed(3), value);
    case 'ratio':
      return `${formatSignificant(value, 3)}×`;
    case 'metric':
      return formatSignificant(value, 4);
    case 'exponent':
      return value.toFixed(2);
  }
}

function signed(text: string, value: number): string {
  return value > 0 ? `+${text}` : text;
}

/** Shows `digits` significant digits, without exponent notation between 1e-4 and 1e6. */
export function formatSignificant(value: number, digits: number): string {
  if (value === 0) {
    return '0';
  }
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6 || magnitude < 1e-4) {
    return value.toExponential(digits - 1);
  }
  if (magnitude >= 10 ** digits) {
    return Math.round(value).toString();
  }
  return Number(value.toPrecision(digits)).toString();
}

/** Marker appended to a row's first cell on the page and in text output, by row state. */
export function stateMarker(state: RowState): string {
  switch (state) {
    case 'ok':
      return '';
    case 'partial':
      return ' ⚠ partial';
    case 'failed':
      return ' ✗ failed';
    case 'skipped':
      return ' (skipped)';
    case 'missing':
      return ' (missing)';
  }
}

/** Returns the table as a Markdown table; failed and partial rows carry a marker in their first cell. */
export function tableToMarkdown(table: ReportTable): string {
  const header = `| ${table.columns.map((column) => escapeMarkdown(column.label)).join(' | ')} |`;
  const rule = `|${table.columns.map(() => '---').join('|')}|`;
  const lines = table.rows.map((row) => {
    const cells = table.columns.map((column, index) => {
      const text = formatCell(row, column);
      return escapeMarkdown(index === 0 ? text + stateMarker(row.state) : text);
    });
    return `| ${cells.join(' | ')} |`;
  });
  return [header, rule, ...lines].join('\n');
}

function escapeMarkdown(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** Returns the table as aligned plain text for a terminal, with the same markers as the Markdown. */
export function tableToText(table: ReportTable): string {
  const cells = table.rows.map((row) =>
    table.columns.map((column, index) => {
      const text = formatCell(row, column);
      return index === 0 ? text + stateMarker(row.state) : text;
    }),
  );
  const headers = table.columns.map((column) => column.label);
  const widths = headers.map((header, index) => Math.max(header.length, ...cells.map((line) => line[index].length)));
  const format = (line: string[]): string => line.map((text, index) => text.padEnd(widths[index])).join('  ').trimEnd();
  return [format(headers), format(widths.map((width) => '-'.repeat(width))), ...cells.map(format)].join('\n');
}
