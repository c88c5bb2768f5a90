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
 * `missing`: no directory there (or none that can be read: opening it then says why); `store`: it holds a
 * store (`PG_VERSION`); `new`: nothing but what a store or rmapp's lock is made of; else the other entries.
 */
export type StoreDirectoryState = 'missing' | 'store' | 'new' | { foreign: string[] };

/** What the directory at `dir` holds, as {@link StoreDirectoryState}. */
export function storeDirectoryState(dir: string): StoreDirectoryState {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 'missing';
  }
  if (entries.includes('PG_VERSION')) return 'store';
  const foreign = entries.filter((name) => !STORE_ENTRY.test(name)).sort();
  return foreign.length ? { foreign } : 'new';
}

/**
 * Throws a `DATABASE_CONFIG` error when the directory at `dir` holds files of its own and no store: it
 * names the directory, some of the files, and the fix.
 *
 * @example
 * refuseForeignDirectory('/home/ada'); // throws: "… is not empty and holds no rmapp store (it has .bashrc, notes.txt …)"
 */
export function refuseForeignDirectory(dir: string): void {
  const state = storeDirectoryState(dir);
  if (typeof state !== 'object') return;
  const shown = state.foreign.slice(0, 3).join(', ') + (state.foreign.length > 3 ? ` and ${state.foreign.length - 3} more` : '');
  throw configError(
    `The embedded database's directory ${dir} is not empty and holds no rmapp store (no ${join(dir, 'PG_VERSION')}; it has ${shown}): ` +
      'set dataDir (RMAPP_DATA_DIR for the CLI) to a new or empty directory, or to an existing store. rmapp does not create its store among other files.',
  );
}
