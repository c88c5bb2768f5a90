/**
 * One process at a time on an embedded store: PGlite holds a data directory alone, and two processes
 * writing one directory corrupt it. The lock is a file next to the directory (`<dir>.lock`) holding the
 * owner's pid; a lock whose process is gone is taken over.
 *
 * Both ways in are atomic, so two processes starting together cannot both hold the store:
 * - the lock appears with its pid already in it — written to a file of this process's own, then linked
 *   to the lock's name (`link` fails if the name exists). Created empty and written after, a second
 *   process reading it in between saw no pid, took it for stale and removed it;
 * - a stale lock is removed only by the process that holds the take-over guard (`<dir>.lock.takeover`,
 *   made with `mkdir`, which one process alone can make), after reading again under the guard that it
 *   is still stale. Without the guard, two processes that had both read the same dead pid could each
 *   remove it, the second removing the lock the first had just taken.
 */
import { randomUUID } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** A set-up mistake, not an outage (category `validation`), named with its fix. */
function configError(message: string, cause?: unknown): Error {
  return Object.assign(new Error(message, { cause }), { code: 'DATABASE_CONFIG', category: 'validation' });
}

/** Stores this process holds: a second opening in one process is refused before the lock file is read. */
const lockedHere = new Set<string>();

/** A take-over guard older than this was left by a process that died within its few statements. */
const GUARD_STALE_MS = 10_000;

/** Waits `ms` without returning to the event loop (the opening is synchronous up to here). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pid in the lock file, 0 for none (no file, or one that never got a pid), null while it may still
 * be being written (empty: an older rmapp created it empty and wrote the pid after).
 */
function holderOf(lockFile: string): number | null {
  for (let tries = 0; tries < 10; tries++) {
    let text: string;
    try {
      text = readFileSync(lockFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    if (text !== '') return Number(text) || 0;
    pause(10);
  }
  return 0;
}

/** What the file system said, as the setting to change and how. */
function lockFileProblem(err: unknown, dir: string, lockFile: string): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return configError(
      `Cannot lock the embedded store ${dir}: its lock file ${lockFile} goes in the folder that holds the store, ` +
        `${dirname(dir)}, which this process cannot write (${code}). Set dataDir (RMAPP_DATA_DIR for the CLI) to a ` +
        'directory inside a folder this process may write (for a volume mounted at /data: /data/pgdata).',
      err,
    );
  }
  return configError(`Cannot lock the embedded store ${dir} (${(err as Error).message}).`, err);
}

/**
 * Takes the lock of the store at `dir` (a real path) for this process; returns its release (which also
 * runs at exit). Throws a `DATABASE_CONFIG` error naming the holder when another live process has it.
 */
export function lockDataDir(dir: string): () => void {
  const lockFile = `${dir}.lock`;
  if (lockedHere.has(dir)) {
    throw configError(
      `The embedded store ${dir} is already open in this process. PGlite serves one instance per directory: ` +
        'close the Database (or stop the engine) that holds it first, or share that one.',
    );
  }
  const mine = `${lockFile}.${process.pid}-${randomUUID().slice(0, 8)}`;
  try {
    writeFileSync(mine, String(process.pid), { flag: 'wx' });
  } catch (err) {
    throw lockFileProblem(err, dir, lockFile);
  }
  try {
    for (let tries = 0; tries < 20; tries++) {
      try {
        linkSync(mine, lockFile);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw lockFileProblem(err, dir, lockFile);
        const pid = holderOf(lockFile);
        if (pid && pid !== process.pid && isAlive(pid)) {
          throw configError(
            `The embedded store ${dir} is in use by process ${pid}. PGlite serves one process at a time: stop that ` +
              'process, or set DATABASE_URL=postgres://… so several processes can share one Postgres.',
          );
        }
        removeStale(lockFile);
        continue;
      }
      return held(dir, lockFile);
    }
  } finally {
    rmSync(mine, { force: true });
  }
  throw configError(`Could not lock the embedded store ${dir}; remove ${lockFile} if no rmapp process is running.`);
}

/** Removes the lock at `lockFile` if it is still stale, under the take-over guard; else waits a little. */
function removeStale(lockFile: string): void {
  const guard = `${lockFile}.takeover`;
  try {
    mkdirSync(guard);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another process is taking the lock over; one that died doing so left the guard behind.
    try {
      if (Date.now() - statSync(guard).mtimeMs > GUARD_STALE_MS) rmdirSync(guard);
    } catch {
      // gone meanwhile
    }
    pause(20);
    return;
  }
  try {
    const pid = holderOf(lockFile);
    if (!(pid && pid !== process.pid && isAlive(pid))) rmSync(lockFile, { force: true });
  } finally {
    rmdirSync(guard);
  }
}

/** The release of a lock just taken. */
function held(dir: string, lockFile: string): () => void {
  const release = () => rmSync(lockFile, { force: true });
  process.once('exit', release);
  lockedHere.add(dir);
  let holding = true;
  // Once only: a second call must not free a lock another opening holds by then.
  return () => {
    if (!holding) return;
    holding = false;
    process.off('exit', release);
    lockedHere.delete(dir);
    release();
  };
}
