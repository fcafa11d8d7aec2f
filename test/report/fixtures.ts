/**
 * Paths and loaders shared by the reporter tests. The fixture records under
 * test/fixtures/results have hand-chosen numbers; the tests recompute the expected statistics by
 * hand from those numbers.
 */
import { cp, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { summarizeSet } from '../../src/report/cells.js';
import { loadResults, setLabel, type LoadedResults, type ResultSet } from '../../src/report/records.js';
import type { TableContext } from '../../src/report/tables.js';

/** The fixture results folder in the source tree (tests run from dist/test/report). */
export const FIXTURE_RESULTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/results');

/** Loads the fixture records and builds the table context the report builders take. */
export async function loadFixtureContext(): Promise<{ loaded: LoadedResults; context: TableContext }> {
  const loaded = await loadResults(FIXTURE_RESULTS);
  const labelOf = (set: ResultSet): string => setLabel(set, loaded);
  return { loaded, context: { cells: loaded.sets.flatMap(summarizeSet), labelOf } };
}

/** Copies the fixture results to a fresh temporary folder and returns its path. */
export async function copyFixtures(prefix: string): Promise<string> {
  const folder = await mkdtemp(path.join(os.tmpdir(), prefix));
  await cp(FIXTURE_RESULTS, folder, { recursive: true });
  return folder;
}

/** Student-t quantiles t_{0.975, df} from standard tables, for hand-computed intervals. */
export const T_975 = { 1: 12.706204736, 2: 4.302652730, 30: 2.042272456 } as const;
