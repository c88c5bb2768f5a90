/**
 * The embedded store: PGlite, Postgres compiled to WASM (database.ts `openDatabase` without a URL), in
 * a data directory this process holds alone, or in memory (`memory://`, tests).
 */
import { accessSync, constants, mkdirSync, readdirSync, realpathSync, type Dirent } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { configError } from './config-error.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { checkStoreDirectory, fileInTheWay } from './store-directory.ts';
import { lowDiskSpace } from './disk-space.ts';
import type { Database } from './database-types.ts';
import { checkChannel, databaseClosed } from './connection-faults.ts';
import { joinScript } from './sql-text.ts';
import { keepRunningCleanups } from './running-cleanups.ts';
import { PLANNER_SETTINGS } from './planner-settings.ts';

/**
 * initdb's output (a tarball of a new data directory, ~40 MB), taken from the first in-memory store this
 * process opens before any statement reaches it: every later in-memory store starts from it in ~0.6 s
 * instead of running initdb again (2.2–4 s on the 2-core machine). Tests open one per test (the testing
 * kit, `openDatabase({ dataDir: 'memory://' })`); the first open pays ~0.2 s more for the copy. Kept as
 * bytes, handed to PGlite as a {@link TemplateBlob}.
 */
let memoryTemplate: Uint8Array | null = null;

/**
 * The template's bytes as the `Blob` PGlite's `loadDataDir` takes, whose `arrayBuffer()` hands them
 * over as they are: PGlite reads the tarball with `arrayBuffer()` alone and only reads it (0.5's
 * `loadTar`: its untar copies each file out with `slice`, and the file system copies what it is given),
 * while Node 20's `Blob.arrayBuffer()` reads a 40 MB blob chunk by chunk and joins the chunks, and even
 * one plain copy of 40 MB costs ~115 ms of CPU here (fresh pages). An open plus migrations, median of 8
 * alternating on the loaded 2-core machine: 910 ms of CPU with a `Blob`, 695 with one copy per open,
 * and less again without it (figures in docs/facts.md). Were a later PGlite to read it otherwise (its
 * size is 0), the store would not start, the template would be dropped and initdb run, as for any copy
 * that does not start.
 */
class TemplateBlob extends Blob {
  readonly #data: Uint8Array;

  constructor(data: Uint8Array) {
    super([]);
    this.#data = data;
  }

  override arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.resolve(this.#data.buffer as ArrayBuffer);
  }
}

/**
 * Postgres's settings for an embedded store: 16 MB of shared buffers instead of initdb's 128 MB, which
 * Postgres zeroes at every start. PGlite's files are in this process's memory (`memory://`) or in the
 * operating system's file cache, so a larger cache mostly holds a second copy. Measured 2026-12-06
 * (scratch scripts, alternating): an open of an in-memory store from {@link memoryTemplate} 1,320 ms
 * of CPU with 128 MB and 881 ms with 16 MB (tests open one per test); `rmapp runs list` on an on-disk
 * store 2.5 → 2.1 s of CPU and 365 → 240 MB RSS; a worker on an on-disk store, 1,500 six-step
 * workflows at concurrency 20, 241–270 wf/s with 128 MB and 211–314 with 16 MB (noise; RSS 60 MB less).
 */
function embeddedStartParams(PGlite: typeof import('@electric-sql/pglite').PGlite): string[] {
  return [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];
}

/** A new in-memory PGlite instance, ready: from {@link memoryTemplate}, or by initdb (and the copy taken). */
async function openMemoryPglite(PGlite: typeof import('@electric-sql/pglite').PGlite, dataDir: string): Promise<PGlite> {
  const template = memoryTemplate;
  const startParams = embeddedStartParams(PGlite);
  if (template) {
    const pg = new PGlite({ dataDir, loadDataDir: new TemplateBlob(template), startParams });
    try {
      await pg.waitReady;
      return pg;
    } catch {
      // A copy that does not start is dropped: this store and the next run initdb.
      if (memoryTemplate === template) memoryTemplate = null;
      void pg.close().catch(() => {});
    }
  }
  const pg = new PGlite({ dataDir, startParams });
  await pg.waitReady;
  // A copy failing costs only the speed-up: the next in-memory store runs initdb and tries again.
  memoryTemplate ??= await pg
    .dumpDataDir('none')
    .then(async (blob) => new Uint8Array(await blob.arrayBuffer()))
    .catch(() => null);
  return pg;
}

/** The first file or directory under `dir` this process cannot write (a bounded walk), or null. */
function firstUnwritable(dir: string, budget = { entries: 20_000 }): string | null {
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    return dir;
  }
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return null;
  }
  for (const e of entries) {
    if (--budget.entries < 0) return null;
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      const found = firstUnwritable(path, budget);
      if (found) return found;
    } else if (e.isFile()) {
      try {
        accessSync(path, constants.W_OK);
      } catch {
        return path;
      }
    }
  }
  return null;
}

/** What PGlite threw, readable: it may throw an object that is not an Error. */
function describeFailure(err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return typeof err === 'object' && err !== null ? JSON.stringify(err) : String(err);
  } catch {
    return String(err);
  }
}

export async function openPglite(dataDir: string, existingOnly: boolean): Promise<Database> {
  // Loaded only for the embedded store: a worker on Postgres saves ~74 ms of CPU and 5 MB at start-up.
  const { PGlite } = await import('@electric-sql/pglite');
  let pg: PGlite;
  let unlock = () => {};
  if (dataDir.startsWith('memory://')) {
    pg = await openMemoryPglite(PGlite, dataDir);
  } else {
    // Before anything is written there, the lock included: a directory of the user's files is left as it was.
    checkStoreDirectory(resolve(dataDir), existingOnly);
    try {
      mkdirSync(resolve(dataDir), { recursive: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTDIR') throw fileInTheWay(resolve(dataDir), err);
      const why = code === 'EACCES' ? 'no permission' : (err as Error).message;
      const message = `The embedded database's directory ${resolve(dataDir)} cannot be created (${why}): set dataDir (RMAPP_DATA_DIR for the CLI) to a directory this process may write.`;
      // No permission, or a read-only file system, is the set-up's (not retried); another failure may pass.
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw configError(message, err);
      throw new Error(message, { cause: err });
    }
    // The real path: one directory reached through a symlink is still one store (one lock).
    const dir = realpathSync(resolve(dataDir));
    try {
      accessSync(dir, constants.W_OK);
    } catch (err) {
      // PGlite's failure then read as a damaged store, and advised restoring a backup.
      throw configError(
        `The embedded database's directory ${dir} is not writable by this process (${(err as NodeJS.ErrnoException).code}): give it write access (chown or chmod), or set dataDir (RMAPP_DATA_DIR for the CLI) to a directory it may write.`,
        err,
      );
    }
    unlock = await lockDataDir(dir);
    pg = new PGlite({ dataDir: dir, startParams: embeddedStartParams(PGlite) });
  }
  try {
    await pg.waitReady;
    await pg.exec(PLANNER_SETTINGS.map((setting) => `set ${setting.replace('=', ' = ')};`).join(' '));
  } catch (err) {
    unlock();
    if (dataDir.startsWith('memory://')) throw err;
    // A file inside the store this process cannot write (another user opened it once, as root say):
    // PGlite aborts, and "may be damaged, restore it from a backup" was advice that loses data.
    const unwritable = firstUnwritable(resolve(dataDir));
    if (unwritable) {
      throw configError(
        `The embedded database in ${resolve(dataDir)} could not be opened: ${unwritable} is not writable by this process (another user may have opened the store). Give this user the whole directory (chown -R), or run rmapp as its owner.`,
        err,
      );
    }
    const free = lowDiskSpace(resolve(dataDir));
    if (free !== null) {
      throw configError(
        `The embedded database in ${resolve(dataDir)} could not be opened (${describeFailure(err)}), and the disk it is on has only ${free} free: free space there (or give the volume more) and start again before anything else — a store that ran out of space is left intact. If it still fails with space free, it may be damaged: restore it from a backup, or set dataDir (RMAPP_DATA_DIR for the CLI) to a new directory.`,
        err,
      );
    }
    // PGlite's own "PGlite failed to initialize properly" names neither the directory nor what to do. Not
    // retried (`DATABASE_CONFIG`): a store PGlite cannot start from (a PG_VERSION of another Postgres, one
    // damaged) stays so, and `rmapp worker` loaded PGlite again every few seconds for ever (an outside tester).
    throw configError(
      `The embedded database in ${resolve(dataDir)} could not be opened (${describeFailure(err)}): it may be damaged, or not a PGlite data directory. Restore it from a backup, or set dataDir (RMAPP_DATA_DIR for the CLI) to a new directory.`,
      err,
    );
  }
  let closing: Promise<void> | undefined;
  const description = `pglite:${dataDir}`;
  // PGlite answers a statement sent during or after its close with a TypeError from its internals.
  const open = () => {
    if (closing) throw databaseClosed(description);
  };
  const soleHolder = !dataDir.startsWith('memory://');
  /** A statement's rows, sent whether or not the store is closing (`query` checks {@link open} first). */
  const rows = async <T>(text: string, params: readonly unknown[] = []): Promise<T[]> =>
    (await pg.query<T>(text, params as unknown[])).rows;
  return {
    kind: 'pglite',
    description,
    ...(soleHolder ? { soleHolder: true } : {}),
    async query<T>(text: string, params: readonly unknown[] = []): Promise<T[]> {
      open();
      return rows<T>(text, params);
    },
    async script<T>(statements: readonly string[]) {
      open();
      const results = await pg.exec(joinScript(statements));
      return (results.filter((r) => r.fields.length > 0).at(-1)?.rows ?? []) as T[];
    },
    async listen(channel, onPayload) {
      checkChannel(channel);
      open();
      const unsub = await pg.listen(channel, onPayload);
      return () => unsub();
    },
    close: () => {
      closing ??= (async () => {
        try {
          // Owed cleanups this process still runs go on after the close: their leases are kept, whoever
          // closes the store — an engine, or its caller, whose store the engine was given — else the store's
          // next process took them over at once and ran them beside this one
          // (test/h218-pglite-own-store-close.test.ts). Sent past `open`, which refuses statements once closing.
          await keepRunningCleanups({ query: rows, description, soleHolder }).catch(() => {});
          await pg.close();
        } finally {
          unlock();
        }
      })();
      return closing;
    },
  };
}
