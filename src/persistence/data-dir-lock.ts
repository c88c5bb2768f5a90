/**
 * One process at a time on an embedded store: PGlite holds a data directory alone, and two processes
 * (or two PGlite instances in one process) writing one directory corrupt it. The lock is a file inside
 * the directory (`<dir>/rmapp.lock`), so that it travels with the directory wherever it is mounted (a
 * bind mount of the store alone kept a lock beside it out of sight), naming its holder: pid, the
 * process's start time and the boot (`/proc`), and its PID namespace. A lock whose holder is gone — its
 * pid not running, or running a process started at another time (a pid reused after a crash and a
 * reboot, or in a new container whose first process has the same pid), or from an earlier boot — is
 * taken over. A holder in another PID namespace (another container on a shared volume) cannot be
 * checked, so its lock is kept: the error names the file to remove once that container is gone. A lock
 * naming this very process is another instance of rmapp in it (a worker thread, a second copy of the
 * package) and is refused like any holder.
 *
 * Taking and taking over are atomic, so processes starting together cannot both hold the store:
 * - the lock appears with its holder already in it — written to a file of this process's own, then
 *   linked to the lock's name (`link` fails if the name exists). Created empty and written after, a
 *   process reading it in between saw no holder and took it for stale;
 * - a stale lock is removed only under the take-over guard (`rmapp.lock.takeover`, made with `mkdir`,
 *   which one process alone can make), and only if the file there is still the one judged stale (same
 *   inode, same holder). Removing whatever stood under the name removed a lock another process had just
 *   taken, and both held the store (an adversarial pass).
 * Processes of one network namespace never race for the file: the store's abstract socket (Linux) lets one
 * through at a time (see {@link lockDataDir}). Between namespaces — or where there are no abstract sockets
 * — the guard decides; a process stalled inside it for long enough that its guard looks left by a dead
 * process ({@link GUARD_STALE_MS}) can still remove a newer lock.
 */
import { randomUUID } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { configError } from './config-error.ts';
import { pidRunning, readTrimmed, startTimeOf, thisProcess, type ProcessIdentity } from './process-identity.ts';

/** The lock file of the store at `dir`. */
export function lockFileOf(dir: string): string {
  return join(dir, 'rmapp.lock');
}

/** Stores this module instance holds: a second opening is refused before the lock file is read. */
const lockedHere = new Set<string>();

/** A take-over guard older than this was left by a process that died within its few statements. */
const GUARD_STALE_MS = 10_000;

/** Who holds a lock. Fields a platform cannot tell (no `/proc`) are absent and not compared. */
type Holder = ProcessIdentity;

const self = thisProcess;

/** Waits `ms` without returning to the event loop (the opening is synchronous up to here). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const running = pidRunning;

type Found = { kind: 'none' } | { kind: 'lock'; holder: Holder | null; ino: number; text: string };

/**
 * The lock file as it stands: none, or its holder (null when it names none: garbage, or still empty
 * after a short wait — an older rmapp created it empty and wrote the pid after).
 */
function readLock(lockFile: string): Found {
  for (let tries = 0; ; tries++) {
    let text: string;
    let ino: number;
    try {
      ino = statSync(lockFile).ino;
      text = readFileSync(lockFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
      throw err;
    }
    if (text === '' && tries < 10) {
      pause(10);
      continue;
    }
    return { kind: 'lock', holder: parseHolder(text), ino, text };
  }
}

function parseHolder(text: string): Holder | null {
  if (/^\s*\d+\s*$/.test(text)) return { pid: Number(text) }; // an older rmapp's lock: its pid alone
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    return typeof h.pid === 'number' ? (h as Holder) : null;
  } catch {
    return null;
  }
}

/**
 * Whether `h` may still hold the store, as far as this process can tell. `underSocket`: this process holds
 * the store's socket, so no live holder shares its network namespace (a crashed container of the same pod,
 * whose pids are its own, is gone).
 */
function holderState(h: Holder | null, me: Holder, underSocket = false): 'gone' | 'alive' | 'this process' | 'elsewhere' {
  if (!h) return 'gone';
  if (h.boot && me.boot && h.boot !== me.boot) return 'gone';
  if (underSocket && h.net && h.net === me.net) return 'gone';
  if (h.ns && me.ns && h.ns !== me.ns) return 'elsewhere';
  if (!running(h.pid)) return 'gone';
  // Compared only when this process can read it (`/proc` mounted with hidepid shows others' pids to no one).
  const start = h.start ? startTimeOf(h.pid) : undefined;
  if (start !== undefined && start !== h.start) return 'gone';
  // Under the socket, a lock of this very process is a leftover of an instance that ended without releasing.
  if (h.pid === me.pid) return underSocket ? 'gone' : 'this process';
  return 'alive';
}

/**
 * How a held lock's errors name what is locked, and what to do instead of waiting for its holder: the
 * embedded store's by default; `rmapp demo` locks its folder with its own (src/rmapp/demo/demo-folder.ts).
 */
export interface LockWording {
  /** What is locked, starting a sentence: "The embedded store /srv/app/.rmapp/pgdata". */
  subject: string;
  /** Why one holder only: "PGlite serves one process at a time". */
  why: string;
  /** The alternative to stopping the holder: "set DATABASE_URL=… so several processes can share one Postgres". */
  otherwise: string;
}

function storeWording(dir: string): LockWording {
  return {
    subject: `The embedded store ${dir}`,
    why: 'PGlite serves one process at a time',
    otherwise: 'set DATABASE_URL=postgres://… so several processes can share one Postgres',
  };
}

/** The store is held (`h`: by whom, null when no one can be named). */
function heldError(w: LockWording, lockFile: string, h: Holder | null, state: 'alive' | 'this process' | 'elsewhere'): Error {
  if (state === 'this process') {
    return configError(
      `${w.subject} is already open in this process (another thread, or another copy of rmapp). ${w.why}: release ` +
        'it there first (close the Database, or stop the engine or the demo that holds it), or share that one.',
    );
  }
  if (state === 'elsewhere') {
    return configError(
      `${w.subject} is in use by process ${h?.pid} of another PID namespace (another container on the same volume?), ` +
        `which this process cannot check. ${w.why}: stop that one — or, if it is gone, remove ${lockFile} — or ${w.otherwise}.`,
    );
  }
  return configError(
    `${w.subject} is in use by ${h ? `process ${h.pid}` : 'another process'}. ${w.why}: stop that process, or ${w.otherwise}.`,
  );
}

/** What the file system said, as the setting to change and how. */
function lockFileProblem(err: unknown, dir: string, lockFile: string, doing: 'read' | 'write' = 'write'): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (doing === 'read' && (code === 'EACCES' || code === 'EPERM')) {
    return configError(
      `The embedded store ${dir} may be in use: its lock file ${lockFile} was written by another user and this process cannot ` +
        `read it (${code}). Run rmapp as the store's owner; remove the file if no rmapp process is running.`,
      err,
    );
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return configError(
      `Cannot lock the embedded store ${dir}: this process cannot write its lock file ${lockFile} (${code}). Give it write ` +
        'access to the directory (chown or chmod), or set dataDir (RMAPP_DATA_DIR for the CLI) to a directory it may write.',
      err,
    );
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    // "remove it if no rmapp process is running" was the advice; the lock file was never the problem.
    return configError(
      `Cannot lock the embedded store ${dir}: the disk it is on is full (${code}, writing ${lockFile}). Free space there (or give the volume more), then start again; the store is most likely intact.`,
      err,
    );
  }
  return configError(
    `Cannot lock the embedded store ${dir}: ${lockFile} ${code === 'EISDIR' ? 'is a directory' : `could not be used (${(err as Error).message})`}; ` +
      'remove it if no rmapp process is running, or set dataDir (RMAPP_DATA_DIR for the CLI) to another directory.',
    err,
  );
}

/**
 * The store's name among abstract Unix sockets (Linux): one per directory whatever path reaches it (its
 * device and inode), released by the kernel when its holder ends — a process killed, a worker thread
 * terminated — so no file has to be judged stale among processes that share a network namespace.
 */
function socketName(dir: string): string {
  const { dev, ino } = statSync(dir);
  return `\0rmapp-store-${dev}-${ino}`;
}

/** Binds the store's abstract socket; null where there are none (not Linux). Throws `EADDRINUSE` when held. */
async function bindStoreSocket(dir: string): Promise<Server | null> {
  if (process.platform !== 'linux') return null;
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: socketName(dir) }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Held, not served: it must not keep the process alive.
  server.unref();
  return server;
}

/**
 * Takes the lock of the store at `dir` (a real path, which exists) for this process; returns its release
 * (which also runs at exit). Throws a `DATABASE_CONFIG` error naming the holder when another may have it.
 *
 * Two locks: the store's abstract socket (Linux), which the kernel gives to one holder at a time within a
 * network namespace and takes back when it ends, and the lock file, which containers sharing the volume
 * from other namespaces, and older rmapp versions, see. Under the socket no process of this namespace
 * races for the file; a file naming this very process is then a leftover of one of its instances that
 * ended without releasing (a terminated worker thread).
 */
export async function lockDataDir(dir: string, wording: LockWording = storeWording(dir)): Promise<() => void> {
  const lockFile = lockFileOf(dir);
  if (lockedHere.has(dir)) throw heldError(wording, lockFile, null, 'this process');
  const me = self();
  let socket: Server | null;
  try {
    socket = await bindStoreSocket(dir);
  } catch (err) {
    // Sockets refused here (a sandbox's policy, say): the lock file alone decides, as off Linux.
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') socket = null;
    else throw inUse(wording, lockFile, me);
  }
  try {
    return withSocket(lockFileTaken(dir, wording, lockFile, me, socket !== null), socket);
  } catch (err) {
    socket?.close();
    throw err;
  }
}

/** The store's socket is held: by whom, as far as its lock file tells. */
function inUse(wording: LockWording, lockFile: string, me: Holder): Error {
  let holder: Holder | null = null;
  try {
    const found = readLock(lockFile);
    holder = found.kind === 'lock' ? found.holder : null;
  } catch {
    // unreadable: the holder is not named
  }
  // The file names the socket's holder only if it still may hold the store (it may be a stale file the
  // holder is about to take over), and in this process only if it is this very process.
  const state = holderState(holder, me);
  return state === 'gone' ? heldError(wording, lockFile, null, 'alive') : heldError(wording, lockFile, holder, state);
}

/** A release that also gives the socket back. */
function withSocket(release: () => void, socket: Server | null): () => void {
  if (!socket) return release;
  return () => {
    release();
    socket.close();
  };
}

function lockFileTaken(dir: string, wording: LockWording, lockFile: string, me: Holder, underSocket: boolean): () => void {
  // An older rmapp kept its lock beside the store: one running now is respected (it does not see this one).
  const legacy = readLegacy(`${dir}.lock`);
  if (legacy) {
    const state = holderState(legacy, me, underSocket);
    if (state !== 'gone') throw heldError(wording, `${dir}.lock`, legacy, state);
  }
  const mine = `${lockFile}.${process.pid}-${randomUUID().slice(0, 8)}`;
  try {
    writeFileSync(mine, JSON.stringify(me), { flag: 'wx' });
  } catch (err) {
    throw lockFileProblem(err, dir, lockFile);
  }
  try {
    for (let tries = 0; tries < 20; tries++) {
      try {
        linkSync(mine, lockFile);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw lockFileProblem(err, dir, lockFile);
        let found: Found;
        try {
          found = readLock(lockFile);
        } catch (readErr) {
          throw lockFileProblem(readErr, dir, lockFile, 'read');
        }
        if (found.kind === 'none') continue; // released meanwhile
        const state = holderState(found.holder, me, underSocket);
        if (state !== 'gone') throw heldError(wording, lockFile, found.holder, state);
        try {
          removeStale(lockFile, found, statSync(mine).mtimeMs);
        } catch (removeErr) {
          throw lockFileProblem(removeErr, dir, lockFile);
        }
        continue;
      }
      return held(dir, lockFile, statSync(mine).ino);
    }
  } finally {
    rmSync(mine, { force: true });
  }
  throw configError(
    `Could not lock the embedded store ${dir}: another process kept taking its lock over (or a take-over guard, ` +
      `${lockFile}.takeover, left by a process killed while taking it over, is less than 10 s old: it is cleared then). ` +
      `Try again; remove ${lockFile} and ${lockFile}.takeover if no rmapp process is running.`,
  );
}

function readLegacy(path: string): Holder | null {
  const text = readTrimmed(path);
  return text ? parseHolder(text) : null;
}

/** Removes the lock judged stale (`judged`) if it still stands, under the take-over guard; else waits a little. */
function removeStale(lockFile: string, judged: Extract<Found, { kind: 'lock' }>, fsNow: number): void {
  const guard = `${lockFile}.takeover`;
  try {
    mkdirSync(guard);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another process is taking the lock over; one that died doing so left the guard behind. Its age is
    // read against the file system's own clock (`fsNow`: when this process's own file was written): a
    // network file system whose clock lags this machine's made every guard look old at once.
    try {
      if (fsNow - statSync(guard).mtimeMs > GUARD_STALE_MS) rmSync(guard, { recursive: true, force: true });
    } catch {
      // gone meanwhile
    }
    pause(20);
    return;
  }
  try {
    const now = readLock(lockFile);
    if (now.kind === 'lock' && now.ino === judged.ino && now.text === judged.text) rmSync(lockFile, { force: true });
  } finally {
    rmSync(guard, { recursive: true, force: true });
  }
}

/** The release of a lock just taken: removes the lock only while it is still this one (`ino`). */
function held(dir: string, lockFile: string, ino: number): () => void {
  const release = () => {
    try {
      if (statSync(lockFile).ino === ino) rmSync(lockFile, { force: true });
    } catch {
      // already gone
    }
  };
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
