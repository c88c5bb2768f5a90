/**
 * What the directory of an embedded store holds before PGlite opens it. PGlite creates a store in any
 * directory without `PG_VERSION`, beside whatever is there: `RMAPP_DATA_DIR=$HOME rmapp runs list`
 * spread `base/`, `pg_wal/` and twenty more among the user's files and said "No runs." (an outside
 * tester). initdb refuses a directory that is not empty; so does rmapp, unless all it holds is what a
 * store is made of — a store half made by an opening that was cut short, or being made by another process
 * now — and what rmapp itself writes there (its lock, src/persistence/data-dir-lock.ts).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { configError } from './config-error.ts';

/**
 * Names of a Postgres data directory (initdb's and the server's) and of rmapp's lock files. `lost+found`
 * is the root of a file system mounted there (a volume of its own, as in a container), not a user's file.
 */
const STORE_ENTRY = /^(PG_VERSION|base|global|pg_[a-z_]+|postgresql(\.auto)?\.conf|postmaster\.(pid|opts)|rmapp\.lock(\..+)?|lost\+found)$/;

/**
 * `missing`: nothing at that path (ENOENT); `store`: it holds a store (`PG_VERSION`); `new`: nothing but what
 * a store or rmapp's lock is made of; `foreign`: the other entries; `unreadable`: the error reading it gave
 * (a file in its place, ENOTDIR; a directory of another user's, EACCES). Only ENOENT is missing: any
 * failure was, and `runs list` on a store it could not read, or on a file, said "No runs." (an outside tester).
 */
export type StoreDirectoryState = 'missing' | 'store' | 'new' | { foreign: string[] } | { unreadable: NodeJS.ErrnoException };

/** What the directory at `dir` holds, as {@link StoreDirectoryState}. */
function storeDirectoryState(dir: string): StoreDirectoryState {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : { unreadable: err as NodeJS.ErrnoException };
  }
  if (entries.includes('PG_VERSION')) return 'store';
  const foreign = entries.filter((name) => !STORE_ENTRY.test(name)).sort();
  return foreign.length ? { foreign } : 'new';
}

/**
 * What the directory at `dir` holds, for an opening: throws a `DATABASE_CONFIG` error when it holds files of
 * its own and no store (naming the directory, some of the files, and the fix), or when it cannot be read
 * ({@link unreadableDirectory}); with `existingOnly`, a `NO_STORE` error ({@link noStoreError}) when it
 * holds no store.
 *
 * @example
 * checkStoreDirectory('/home/ada'); // throws: "… is not empty and holds no rmapp store (… it has .bashrc, notes.txt …)"
 */
export function checkStoreDirectory(dir: string, existingOnly = false): 'missing' | 'store' | 'new' {
  const state = storeDirectoryState(dir);
  if (typeof state === 'object' && 'unreadable' in state) throw unreadableDirectory(dir, state.unreadable);
  if (typeof state === 'object') {
    const shown = state.foreign.slice(0, 3).join(', ') + (state.foreign.length > 3 ? ` and ${state.foreign.length - 3} more` : '');
    throw configError(
      `The embedded database's directory ${dir} is not empty and holds no rmapp store (no ${join(dir, 'PG_VERSION')}; it has ${shown}): ` +
        'set dataDir (RMAPP_DATA_DIR for the CLI) to a new or empty directory, or to an existing store. rmapp does not create its store among other files.',
    );
  }
  if (existingOnly && state !== 'store') throw noStoreError(dir);
  return state;
}

/**
 * No store at `dir`, where an opening that reads only expected one (code `NO_STORE`, its path in `dir`).
 * The CLI's commands that read runs made an empty 39 MB store wherever they ran, then said the run did not
 * exist: a user in a subfolder of the project was told their run was gone (an outside tester).
 */
function noStoreError(dir: string): Error & { code: 'NO_STORE'; dir: string } {
  return Object.assign(
    new Error(
      `No rmapp store at ${dir} (this command acts on runs already stored, and makes none): run it from the project's folder, ` +
        'or set RMAPP_DATA_DIR (or DATABASE_URL) to the store that holds the runs.',
    ),
    { code: 'NO_STORE' as const, category: 'validation', dir },
  );
}

/**
 * A file where the store's directory (or a folder above it) should be: the directory cannot be made there.
 * EEXIST (from making it) or ENOTDIR (from making or reading it). A set-up mistake (`DATABASE_CONFIG`):
 * `rmapp worker` took it for a database that was down and tried again for ever (an outside tester).
 */
export function fileInTheWay(dir: string, err: unknown): Error {
  // A raw "EEXIST: file already exists, mkdir" named neither the setting nor the fix.
  return configError(
    `The embedded database's directory ${dir} cannot be created (a file is in the way): set dataDir (RMAPP_DATA_DIR for the CLI) to a directory this process may write.`,
    err,
  );
}

/**
 * Why the directory at `dir` could not be read, and the fix: a file in the way ({@link fileInTheWay}), or no
 * permission (`DATABASE_CONFIG`) — what `migrate` says of the same directory. Another failure (too many
 * files open, say) is named as it is, not classed as a set-up mistake.
 */
function unreadableDirectory(dir: string, err: NodeJS.ErrnoException): Error {
  if (err.code === 'ENOTDIR') return fileInTheWay(dir, err);
  if (err.code === 'EACCES' || err.code === 'EPERM')
    return configError(
      `The embedded database's directory ${dir} cannot be read by this process (${err.code}): give this user access to it and the folders above it (chown or chmod), or set dataDir (RMAPP_DATA_DIR for the CLI) to a directory it may read and write.`,
      err,
    );
  return new Error(`The embedded database's directory ${dir} cannot be read (${err.message}).`, { cause: err });
}
