/**
 * Problems found in a scenario file, each with its JSON path, the value found, what is allowed and
 * a fix, so one run of the validator lists everything a user has to change.
 */

export interface ScenarioProblem {
  /** JSON path of the offending value, such as "$.grid.objectives[2]". */
  path: string;
  /** The value found, as short JSON, or "(missing)". */
  found: string;
  /** The values the format allows at this path. */
  allowed: string;
  /** The change that fixes the problem. */
  fix: string;
}

/** Thrown when a scenario file has problems; `problems` lists every one of them. */
export class ScenarioError extends Error {
  readonly problems: ScenarioProblem[];
  readonly source: string;

  constructor(source: string, problems: ScenarioProblem[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(`scenario ${source}: ${count}\n${problems.map(formatProblem).join('\n')}`);
    this.name = 'ScenarioError';
    this.problems = problems;
    this.source = source;
  }
}

/** Formats one problem as a single line: path, found, allowed, fix. */
export function formatProblem(problem: ScenarioProblem): string {
  return `  ${problem.path}: found ${problem.found}; allowed: ${problem.allowed}; fix: ${problem.fix}`;
}

const MAX_FOUND_LENGTH = 80;

/** Renders a value for a problem message: JSON, shortened to 80 characters. */
export function describeValue(value: unknown): string {
  if (value === undefined) return '(missing)';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > MAX_FOUND_LENGTH ? `${text.slice(0, MAX_FOUND_LENGTH - 1)}…` : text;
}

/** Collects problems while a scenario is checked. */
export class ProblemList {
  readonly problems: ScenarioProblem[] = [];

  add(path: string, value: unknown, allowed: string, fix: string): void {
    this.problems.push({ path, found: describeValue(value), allowed, fix });
  }

  get empty(): boolean {
    return this.problems.length === 0;
  }
}

/** Returns the entry of `candidates` closest to `word` (Levenshtein distance ≤ 3), or null. */
export function closestMatch(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = 4;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j] + 1, current[j - 1] + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length];
}

/** Lists values as `"a", "b", "c"` for messages. */
export function quoteList(values: readonly (string | number)[]): string {
  return values.map((value) => (typeof value === 'string' ? `"${value}"` : String(value))).join(', ');
}
