/**
 * Choosing which cells a run takes: a shard of the sorted grid (`--shard i/n`) and a cell-id
 * filter (`--only`).
 */

/** Shard i of n, 1-based. */
export interface Shard {
  index: number;
  count: number;
}

/**
 * Parses "i/n" with integers 1 ≤ i ≤ n. Throws a RangeError naming the value and the fix.
 */
export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!match) {
    throw new RangeError(`--shard: invalid value "${text}"; write i/n with whole numbers, such as 2/4 (shard 2 of 4)`);
  }
  const index = Number(match[1]);
  const count = Number(match[2]);
  if (count < 1 || !Number.isSafeInteger(count)) {
    throw new RangeError(`--shard: invalid shard count ${match[2]} in "${text}"; the count n must be at least 1`);
  }
  if (index < 1 || index > count) {
    throw new RangeError(`--shard: shard index ${match[1]} in "${text}" is outside 1…${count}; shards are numbered from 1 to n`);
  }
  return { index, count };
}

/**
 * Returns the cells of `shard`: with cells sorted by id, cell k (0-based) belongs to shard
 * (k mod n) + 1. `cells` must already be sorted. O(cells).
 */
export function selectShard<T>(cells: readonly T[], shard: Shard | null): T[] {
  if (shard === null) return [...cells];
  return cells.filter((_, position) => position % shard.count === shard.index - 1);
}

/** A test on cell ids. */
export type CellFilter = (cellId: string) => boolean;

/**
 * Parses an `--only` value: "/pattern/flags" is a regular expression, anything else a substring
 * of the cell id. Throws a RangeError naming the value when the expression is invalid.
 */
export function parseCellFilter(text: string): CellFilter {
  if (text.trim() === '') {
    throw new RangeError('--only: empty filter; give a substring of the cell ids, such as "fc/ssm", or a /regular expression/');
  }
  const regex = /^\/(.+)\/([a-z]*)$/.exec(text);
  if (!regex) return (cellId) => cellId.includes(text);
  let expression: RegExp;
  try {
    expression = new RegExp(regex[1], regex[2].replace('g', ''));
  } catch (error) {
    throw new RangeError(`--only: invalid regular expression ${text} (${(error as Error).message}); fix it or pass a plain substring`);
  }
  return (cellId) => expression.test(cellId);
}
