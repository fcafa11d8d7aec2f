/**
 * The gate's test-only slowdown switch, `EBFLOW_INJECT_SLOWDOWN`.
 *
 * It exists to show that the gate catches a real slowdown: with `EBFLOW_INJECT_SLOWDOWN=ssm:1.5`
 * the gate's sweep follows every timed SSM step with busy computation lasting 0.5x that step's
 * own duration, inside the timed region, so SSM steps take about 1.5x as long. Training code is
 * untouched. Never set it in a real CI job: `bench:baseline` rejects it, and `bench:check` prints
 * a warning while it is set.
 */
import { OBJECTIVE_NAMES, type ObjectiveName } from '../objectives/objective.js';

/** The environment variable that carries the switch. */
export const SLOWDOWN_VARIABLE = 'EBFLOW_INJECT_SLOWDOWN';

/** Largest accepted factor: a mistyped 15 instead of 1.5 would otherwise run for many minutes. */
export const MAX_SLOWDOWN_FACTOR = 10;

/** One objective's steps made `factor` times as long. */
export interface SlowdownInjection {
  objective: ObjectiveName;
  /** Total step time divided by the step's own time; > 1. */
  factor: number;
}

/**
 * Parses the switch's value: comma-separated `objective:factor` pairs such as "ssm:1.5" or
 * "ssm:1.5,dsm:2". An unset or empty value returns an empty list. Throws a RangeError that quotes
 * the value and shows the expected form for an unknown objective, a factor that is not a number in
 * (1, 10], or an objective named twice.
 */
export function parseSlowdownInjection(value: string | undefined): SlowdownInjection[] {
  if (value === undefined || value.trim() === '') return [];
  const expected =
    `expected objective:factor pairs separated by commas, such as "ssm:1.5", with objective one of ` +
    `${OBJECTIVE_NAMES.join(', ')} and factor a number in (1, ${MAX_SLOWDOWN_FACTOR}]`;
  const injections: SlowdownInjection[] = [];
  for (const part of value.split(',')) {
    const match = /^\s*([a-z]+)\s*:\s*([0-9]*\.?[0-9]+)\s*$/.exec(part);
    if (match === null) {
      throw new RangeError(`${SLOWDOWN_VARIABLE}: cannot parse ${JSON.stringify(part)} in ${JSON.stringify(value)}; ${expected}`);
    }
    const objective = match[1] as ObjectiveName;
    const factor = Number(match[2]);
    if (!OBJECTIVE_NAMES.includes(objective)) {
      throw new RangeError(`${SLOWDOWN_VARIABLE}: unknown objective ${JSON.stringify(match[1])} in ${JSON.stringify(value)}; ${expected}`);
    }
    if (!(factor > 1 && factor <= MAX_SLOWDOWN_FACTOR)) {
      throw new RangeError(`${SLOWDOWN_VARIABLE}: factor ${match[2]} for ${objective} is out of range; ${expected}`);
    }
    if (injections.some((injection) => injection.objective === objective)) {
      throw new RangeError(`${SLOWDOWN_VARIABLE}: objective ${objective} appears twice in ${JSON.stringify(value)}; name each objective once`);
    }
    injections.push({ objective, factor });
  }
  return injections;
}

/** Returns "ssm ×1.5, dsm ×2" for messages, or "none". */
export function describeInjection(injections: readonly SlowdownInjection[]): string {
  if (injections.length === 0) return 'none';
  return injections.map((injection) => `${injection.objective} ×${injection.factor}`).join(', ');
}

/** Keeps the busy loop's result observable so the JIT cannot drop the loop. */
let busySink = 0;

/**
 * Computes on the CPU for `milliseconds` of wall-clock time (floating-point work, checking the
 * clock every 2,000 iterations, so it overshoots by a few microseconds). Returns the time spent, ms.
 */
export function busyCompute(milliseconds: number, now: () => number = () => performance.now()): number {
  const start = now();
  const deadline = start + Math.max(0, milliseconds);
  let accumulator = busySink;
  let current = start;
  while (current < deadline) {
    for (let i = 0; i < 2000; i += 1) {
      accumulator = accumulator * 0.999999 + Math.sqrt(i + 1);
    }
    current = now();
  }
  busySink = accumulator % 1024;
  return current - start;
}
