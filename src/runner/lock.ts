/**
 * A lock file per scenario and shard, so two runs cannot write the same cells of one results
 * folder at once.
 *
 * The lock of scenario S in results root R is `R/.S.lock` for an unsharded run and
 * `R/.S.shard-i-of-n.lock` for shard i of n. It sits beside the scenario folder, not in it, so
 * `--fresh` can move the folder aside while the run holds the lock. Only shards of one count
 * (i of n with the same n) run together; any other live lock of the scenario is a conflict. A lock
 * whose process is gone (same host, no such pid) is stale and is taken over.
 *
 * NOTE: two runs that start at the same moment under different lock names (say 1/2 and 1/3) can
 * each miss the other's file, because the check and the creation are not one atomic step.
 */
import { linkSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** The contents of a lock file. */
interface LockOwner {
  pid: number;
  hostname: string;
  startedAt: string;
}

export class ResultsLockError extends Error {}

/** A held lock; `release()` deletes its file. */
export class ResultsLock {
  private released = false;

  private constructor(readonly file: string) {}

  /**
   * Creates the lock of `scenario` (and `shard`, if given) in `resultsRoot`. Throws
   * `ResultsLockError` naming the other run, its lock file and the fix when a live run holds a
   * conflicting lock. Returns the stale locks it replaced in `replaced`.
   */
  static acquire(resultsRoot: string, scenario: string, shard: { index: number; count: number } | null): { lock: ResultsLock; replaced: string[] } {
    mkdirSync(resultsRoot, { recursive: true });
    const ownName = shard === null ? `.${scenario}.lock` : `.${scenario}.shard-${shard.index}-of-${shard.count}.lock`;
    const unshardedName = `.${scenario}.lock`;
    const shardPrefix = `.${scenario}.shard-`;
    // Shards of one count split the cells between them; shards of different counts overlap.
    const compatibleShard = (name: string): boolean =>
      shard !== null && name !== ownName && name.endsWith(`-of-${shard.count}.lock`) && name.startsWith(shardPrefix);
    const conflicting = readdirSync(resultsRoot).filter(
      (name) => name === unshardedName || (name.startsWith(shardPrefix) && name.endsWith('.lock') && !compatibleShard(name)),
    );

    const replaced: string[] = [];
    for (const name of conflicting) {
      const file = join(resultsRoot, name);
      const owner = readOwner(file);
      if (owner !== null && isAlive(owner)) {
        throw new ResultsLockError(
          `another bench run (pid ${owner.pid} on ${owner.hostname}, started ${owner.startedAt}) is writing scenario "${scenario}" ` +
            `in ${resultsRoot} (lock file ${file}); wait for it to finish, use another --results folder or a different --shard, ` +
            'or delete the lock file if that run no longer exists',
        );
      }
      unlinkSync(file);
      replaced.push(file);
    }

    // The contents go to a private file first and are linked into place, so another run never
    // reads a half-written lock, which would look stale. The link fails when the lock exists.
    const file = join(resultsRoot, ownName);
    const owner: LockOwner = { pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString() };
    const draft = `${file}.${process.pid}.tmp`;
    writeFileSync(draft, `${JSON.stringify(owner)}\n`);
    try {
      linkSync(draft, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new ResultsLockError(`another bench run took the lock ${file} at the same moment; run again when it has finished`);
      }
      throw error;
    } finally {
      unlinkSync(draft);
    }
    return { lock: new ResultsLock(file), replaced };
  }

  /** Deletes the lock file; later calls do nothing. */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      unlinkSync(this.file);
    } catch {
      // Already gone (deleted by hand): nothing to release.
    }
  }
}

function readOwner(file: string): LockOwner | null {
  try {
    const owner = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockOwner>;
    if (typeof owner.pid !== 'number' || typeof owner.hostname !== 'string') return null;
    return { pid: owner.pid, hostname: owner.hostname, startedAt: String(owner.startedAt) };
  } catch {
    return null;
  }
}

/**
 * Returns whether the lock's process still runs. A lock from another host counts as alive,
 * because its process cannot be checked from here.
 */
function isAlive(owner: LockOwner): boolean {
  if (owner.hostname !== hostname()) return true;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
