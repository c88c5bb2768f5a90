/**
 * The folder `rmapp demo` keeps its state in (`<dir>/.rmapp/demo/`: the store, the git remote, the
 * workspaces), emptied at each start. A demo already running there holds it: a second one emptied it
 * under the first, whose runs then failed with PGlite's and git's raw errors (an outside tester).
 * So the folder is locked as the embedded store is (src/persistence/data-dir-lock.ts) before anything in
 * it is removed, and held until the demo stops.
 */
import { existsSync, mkdirSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { lockDataDir, type LockWording } from '../../persistence/data-dir-lock.ts';

function wording(home: string): LockWording {
  return {
    subject: `The demo's folder ${home}`,
    why: 'One rmapp demo runs in a folder at a time (a second one would empty it under the first)',
    otherwise: 'run this demo in another folder',
  };
}

/**
 * Locks the demo's folder `home` (made if missing), then empties it; returns the release. Throws a
 * `DATABASE_CONFIG` error naming the process that holds it — another demo, or anything that holds the
 * store inside it (an `rmapp worker` given `RMAPP_DATA_DIR=.rmapp/demo/pgdata`, or a demo of an older
 * rmapp, which locked only its store) — with nothing removed.
 *
 * @example
 * const release = await takeDemoFolder(join(cwd, '.rmapp', 'demo'));
 * try { … } finally { release(); }
 */
export async function takeDemoFolder(home: string): Promise<() => void> {
  mkdirSync(home, { recursive: true });
  const dir = realpathSync(home);
  const release = await lockDataDir(dir, wording(dir));
  try {
    const store = join(dir, 'pgdata');
    if (existsSync(store)) (await lockDataDir(realpathSync(store), wording(dir)))();
    // The lock's own files stay: the lock is held through them.
    for (const entry of readdirSync(dir)) if (!entry.startsWith('rmapp.lock')) rmSync(join(dir, entry), { recursive: true, force: true });
  } catch (err) {
    release();
    throw err;
  }
  return release;
}
