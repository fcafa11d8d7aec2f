/**
 * Typed readers for the fields of a parsed JSON document. Each reader checks one value, records a
 * problem (path, value found, what is allowed, a fix) when the value is wrong and returns
 * `undefined` then, so the caller can go on and find the next problem.
 */
import { closestMatch, ProblemList, quoteList } from './problems.js';

export type JsonObject = Record<string, unknown>;

export interface NumberRule {
  integer?: boolean;
  /** Smallest allowed value (inclusive). */
  min?: number;
  /** Values must be strictly greater than this. */
  above?: number;
  /** Largest allowed value (inclusive). */
  max?: number;
  /** Values must be strictly smaller than this. */
  below?: number;
}

/** Describes a number rule in words, such as "an integer ≥ 1". */
export function describeNumberRule(rule: NumberRule): string {
  const parts: string[] = [];
  if (rule.min !== undefined) parts.push(`≥ ${rule.min}`);
  if (rule.above !== undefined) parts.push(`> ${rule.above}`);
  if (rule.max !== undefined) parts.push(`≤ ${rule.max}`);
  if (rule.below !== undefined) parts.push(`< ${rule.below}`);
  const noun = rule.integer ? 'an integer' : 'a number';
  return parts.length === 0 ? noun : `${noun} ${parts.join(' and ')}`;
}

function satisfies(value: number, rule: NumberRule): boolean {
  if (!Number.isFinite(value)) return false;
  if (rule.integer && !Number.isSafeInteger(value)) return false;
  if (rule.min !== undefined && value < rule.min) return false;
  if (rule.above !== undefined && value <= rule.above) return false;
  if (rule.max !== undefined && value > rule.max) return false;
  if (rule.below !== undefined && value >= rule.below) return false;
  return true;
}

/**
 * Checks that `value` is a JSON object and reports every key not in `allowedKeys` (with the
 * closest allowed key as the fix). Returns the object, or undefined when it is not one.
 */
export function readObject(
  problems: ProblemList,
  path: string,
  value: unknown,
  allowedKeys: readonly string[],
  what: string,
): JsonObject | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.add(path, value, `${what} as a JSON object`, `write ${what} as an object with keys ${quoteList(allowedKeys)}`);
    return undefined;
  }
  const object = value as JsonObject;
  for (const key of Object.keys(object)) {
    if (!allowedKeys.includes(key)) {
      const suggestion = closestMatch(key, allowedKeys);
      problems.add(
        `${path}.${key}`,
        key,
        `the keys ${quoteList(allowedKeys)}`,
        suggestion ? `rename "${key}" to "${suggestion}" or remove it` : `remove "${key}"`,
      );
    }
  }
  return object;
}

/** Reports a missing required key; returns true when the key is present. */
export function requireKey(problems: ProblemList, path: string, object: JsonObject, key: string, allowed: string): boolean {
  if (object[key] !== undefined) return true;
  problems.add(`${path}.${key}`, undefined, allowed, `add "${key}"`);
  return false;
}

export function readString(
  problems: ProblemList,
  path: string,
  value: unknown,
  allowed: string,
  pattern?: RegExp,
): string | undefined {
  if (typeof value !== 'string' || value.trim() === '' || (pattern && !pattern.test(value))) {
    problems.add(path, value, allowed, `write ${allowed}`);
    return undefined;
  }
  return value;
}

export function readBoolean(problems: ProblemList, path: string, value: unknown): boolean | undefined {
  if (typeof value !== 'boolean') {
    problems.add(path, value, 'true or false', 'write true or false (without quotes)');
    return undefined;
  }
  return value;
}

export function readNumber(problems: ProblemList, path: string, value: unknown, rule: NumberRule): number | undefined {
  if (typeof value !== 'number' || !satisfies(value, rule)) {
    problems.add(path, value, describeNumberRule(rule), `write ${describeNumberRule(rule)}`);
    return undefined;
  }
  return value;
}

/** Reads a value from a fixed list of strings; the fix names the closest one. */
export function readChoice<T extends string>(
  problems: ProblemList,
  path: string,
  value: unknown,
  choices: readonly T[],
  what: string,
): T | undefined {
  if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T;
  const suggestion = typeof value === 'string' ? closestMatch(value, choices) : null;
  problems.add(
    path,
    value,
    `${what}: ${quoteList(choices)}`,
    suggestion ? `use "${suggestion}"` : `use one of ${quoteList(choices)}`,
  );
  return undefined;
}

/**
 * Reads a non-empty array of distinct items, each checked by `readItem`. Returns only the valid
 * items (undefined when the array itself is wrong), so later checks see no bad values.
 */
export function readArray<T>(
  problems: ProblemList,
  path: string,
  value: unknown,
  what: string,
  readItem: (itemPath: string, item: unknown) => T | undefined,
): T[] | undefined {
  if (!Array.isArray(value)) {
    problems.add(path, value, `a non-empty array of ${what}`, `write [ … ] with at least one of ${what}`);
    return undefined;
  }
  if (value.length === 0) {
    problems.add(path, value, `a non-empty array of ${what}`, `list at least one value, or remove the key to use the default`);
    return undefined;
  }
  const items: T[] = [];
  const seen = new Set<string>();
  value.forEach((item, index) => {
    const itemPath = `${path}[${index}]`;
    const read = readItem(itemPath, item);
    if (read === undefined) return;
    const key = JSON.stringify(read);
    if (seen.has(key)) {
      problems.add(itemPath, item, `distinct values`, `remove the repeated ${JSON.stringify(read)}`);
      return;
    }
    seen.add(key);
    items.push(read);
  });
  return items;
}

export function readNumberArray(
  problems: ProblemList,
  path: string,
  value: unknown,
  rule: NumberRule,
): number[] | undefined {
  return readArray(problems, path, value, describeNumberRule(rule).replace(/^an? /, '') + ' values', (itemPath, item) =>
    readNumber(problems, itemPath, item, rule),
  );
}

export function readChoiceArray<T extends string>(
  problems: ProblemList,
  path: string,
  value: unknown,
  choices: readonly T[],
  what: string,
): T[] | undefined {
  return readArray(problems, path, value, what, (itemPath, item) => readChoice(problems, itemPath, item, choices, what));
}
