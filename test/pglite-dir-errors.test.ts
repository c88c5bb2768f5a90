/**
 * The embedded store's directory, wrong: a file in its place, or a directory PGlite cannot start from.
 * Each is an error naming the directory and the setting that fixes it (a raw `EEXIST: file already
 * exists, mkdir` and PGlite's "failed to initialize properly" named neither).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/persistence/database.ts';
import { ROOT } from './helpers/processes.ts';

const root = mkdtempSync(join(tmpdir(), 'rmapp-pglite-dirs-'));

it('a file where the data directory should be names the directory and dataDir / RMAPP_DATA_DIR', async () => {
  const file = join(root, 'a-file');
  writeFileSync(file, 'not a directory');
  for (const dir of [file, join(file, 'below')]) {
    await expect(openDatabase({ url: '', dataDir: dir }), dir).rejects.toThrow(
      `The embedded database's directory ${dir} cannot be created (a file is in the way): set dataDir (RMAPP_DATA_DIR for the CLI) to a directory`,
    );
  }
});

it('a directory PGlite cannot start from names the directory and how to recover, and frees its lock', async () => {
  const dir = join(root, 'damaged');
  mkdirSync(dir);
  writeFileSync(join(dir, 'PG_VERSION'), 'junk\n');
  for (let i = 0; i < 2; i++) {
    // Twice: the first failure must not leave the directory locked for the next try.
    await expect(openDatabase({ url: '', dataDir: dir })).rejects.toThrow(
      new RegExp(
        `^The embedded database in ${dir} could not be opened \\(.+\\): it may be damaged, or not a PGlite data directory\\. Restore it`,
      ),
    );
  }
});

it('rmapp worker exits 1 at once on a store it can never open, instead of retrying it as a database that is down', () => {
  // An outside tester: RMAPP_DATA_DIR=<a file>, or a store whose PG_VERSION is another Postgres's, and
  // `rmapp worker` logged "the database is not reachable (…); try 7 in 5000 ms" for ever.
  const file = join(root, 'worker-file');
  writeFileSync(file, 'not a directory');
  const other = join(root, 'pg16');
  mkdirSync(join(other, 'base'), { recursive: true });
  writeFileSync(join(other, 'PG_VERSION'), '16\n');
  for (const [dir, message] of [
    [file, `rmapp: The embedded database's directory ${file} cannot be created (a file is in the way): set dataDir`],
    [other, `rmapp: The embedded database in ${other} could not be opened (`],
  ] as const) {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/rmapp.mjs'), 'worker'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: '', RMAPP_DATA_DIR: dir },
      encoding: 'utf8',
      // A worker that retries never ends: the test fails there rather than waiting for it.
      timeout: 30_000,
    });
    expect({ status: r.status, lines: r.stderr.split('\n').length }, r.stderr).toEqual({ status: 1, lines: 2 });
    expect(r.stderr.startsWith(message), r.stderr).toBe(true);
  }
});

it('a directory of other files is refused before anything is written in it, naming it and the fix', async () => {
  // An outside tester: RMAPP_DATA_DIR=$HOME put PG_VERSION, base/, pg_wal/… beside the user's files.
  const home = join(root, 'home');
  mkdirSync(join(home, 'projects'), { recursive: true });
  writeFileSync(join(home, '.bashrc'), '');
  writeFileSync(join(home, 'notes.txt'), 'mine');
  writeFileSync(join(home, 'wishlist.txt'), 'mine');
  const message =
    `The embedded database's directory ${home} is not empty and holds no rmapp store (no ${home}/PG_VERSION; it has .bashrc, ` +
    'notes.txt, projects and 1 more): set dataDir (RMAPP_DATA_DIR for the CLI) to a new or empty directory, or to an existing store. ' +
    'rmapp does not create its store among other files.';
  await expect(openDatabase({ url: '', dataDir: home })).rejects.toThrow(message);
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/rmapp.mjs'), 'migrate'], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: '', RMAPP_DATA_DIR: home },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 1, stderr: `rmapp: ${message}\n` });
  expect(readdirSync(home).sort(), 'files written among the user’s').toEqual(['.bashrc', 'notes.txt', 'projects', 'wishlist.txt']);
});

it("a directory holding only rmapp's lock file and a volume's lost+found is new: the store is made there, and opens again", async () => {
  const dir = join(root, 'volume-root');
  mkdirSync(join(dir, 'lost+found'), { recursive: true });
  writeFileSync(join(dir, 'rmapp.lock'), 'garbage'); // left by an opening cut short: names no holder
  for (let i = 0; i < 2; i++) {
    const db = await openDatabase({ url: '', dataDir: dir });
    expect(await db.query('select 1 as one'), `opening ${i + 1}`).toEqual([{ one: 1 }]);
    await db.close();
  }
  expect(existsSync(join(dir, 'PG_VERSION'))).toBe(true);
});

it('an empty RMAPP_DATA_DIR is unset: the store goes to .rmapp/pgdata, not into the current directory', () => {
  // An adversarial pass: `RMAPP_DATA_DIR=` (a compose file) put ~20 Postgres folders next to the user's files.
  const cwd = join(root, 'project');
  mkdirSync(cwd);
  writeFileSync(join(cwd, 'myfile.txt'), 'mine');
  // `migrate`, which makes the store (`runs list` makes none: test/read-commands-no-store.test.ts).
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/rmapp.mjs'), 'migrate'], {
    cwd,
    env: { ...process.env, DATABASE_URL: '', RMAPP_DATA_DIR: '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
  expect(readdirSync(cwd).sort()).toEqual(['.rmapp', 'myfile.txt']);
  expect(existsSync(join(cwd, '.rmapp', 'pgdata', 'PG_VERSION'))).toBe(true);
});

describe('a store on a full disk', () => {
  // An adversarial pass filled the volume of a store with a worker's runs: the store then failed to
  // open with "Aborted()" and the advice to restore a backup or start a new directory — for data that
  // was intact once the volume grew. A small tmpfs stands for the full volume (mounting needs root).
  const volume = join(root, 'volume');
  mkdirSync(volume);
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', volume]).status === 0;
  afterAll(() => {
    if (mounted) spawnSync('umount', ['-l', volume]);
  });

  it('a store that fails to open on a nearly full disk is reported as the disk, not as damage', async () => {
    // Not skipped where it cannot mount: the suite runs as root (as CI does), and a skipped test proves nothing.
    expect(mounted, `mount -t tmpfs on ${volume} (the test needs root)`).toBe(true);
    const dir = join(volume, 'store');
    mkdirSync(dir);
    writeFileSync(join(dir, 'PG_VERSION'), 'junk\n');
    await expect(openDatabase({ url: '', dataDir: dir })).rejects.toThrow(
      new RegExp(
        `^The embedded database in ${dir} could not be opened \\(.+\\), and the disk it is on has only [0-9.]+ [KM]B free: free space there .* before anything else — a store that ran out of space is left intact\\. If it still fails with space free, it may be damaged: restore it from a backup`,
      ),
    );
    // Full to the last block: the lock file cannot be written either ("remove it if no rmapp process is running", it said).
    spawnSync('dd', ['if=/dev/zero', `of=${join(volume, 'fill')}`, 'bs=1M']);
    await expect(openDatabase({ url: '', dataDir: dir })).rejects.toThrow(
      new RegExp(
        `^Cannot lock the embedded store ${dir}: the disk it is on is full \\(ENOSPC, writing .*rmapp\\.lock\\)\\. Free space there`,
      ),
    );
  });
});
