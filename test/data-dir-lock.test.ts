/**
 * One process at a time on an embedded store (src/persistence/data-dir-lock.ts), also when processes
 * start together: a lock being written is not taken for stale, a stale lock is taken over by one
 * process only, and a take-over under way is not undone by another. An adversarial pass found, by
 * reading, that the lock was created empty and its pid written after (a process reading in between took
 * it for stale) and that two processes that read one dead pid could both remove the lock.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { lockDataDir } from '../src/persistence/data-dir-lock.ts';
import { ROOT } from './helpers/processes.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function storeDir(): string {
  const base = mkdtempSync(join(tmpdir(), 'rmapp-lock-'));
  dirs.push(base);
  const dir = join(base, 'store');
  mkdirSync(dir);
  return dir;
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

it('a live holder is named; a dead one is taken over; the release removes the lock', () => {
  const dir = storeDir();
  writeFileSync(`${dir}.lock`, String(process.ppid));
  expect(() => lockDataDir(dir)).toThrow(`is in use by process ${process.ppid}`);
  writeFileSync(`${dir}.lock`, String(deadPid()));
  const release = lockDataDir(dir);
  expect(readFileSync(`${dir}.lock`, 'utf8')).toBe(String(process.pid));
  expect(() => lockDataDir(dir), 'a second opening in this process').toThrow('already open in this process');
  release();
  expect(existsSync(`${dir}.lock`)).toBe(false);
  expect(readdirNames(dir), 'files of the locking left beside the store').toEqual([]);
});

function readdirNames(dir: string): string[] {
  return spawnSync('ls', ['-a', join(dir, '..')])
    .stdout.toString()
    .split('\n')
    .filter((n) => n && n !== '.' && n !== '..' && n !== 'store');
}

it('a lock file still empty (its pid being written by another process) is not taken for stale', async () => {
  const dir = storeDir();
  const lockFile = `${dir}.lock`;
  writeFileSync(lockFile, '');
  // A process that writes its pid into the lock 30 ms after it says it is ready, then stays alive.
  const writer = spawn(
    process.execPath,
    [
      '-e',
      `process.stdout.write('ready'); setTimeout(() => require('node:fs').writeFileSync(${JSON.stringify(lockFile)}, String(process.pid)), 30); setTimeout(() => {}, 10000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await new Promise((resolve) => writer.stdout.once('data', resolve));
    expect(() => lockDataDir(dir), 'the store taken from a process writing its lock').toThrow(`is in use by process ${writer.pid}`);
  } finally {
    writer.kill('SIGKILL');
  }
});

it('a stale lock is not removed while another process takes it over; a guard left by a dead process is cleared', () => {
  const dir = storeDir();
  const lockFile = `${dir}.lock`;
  writeFileSync(lockFile, String(deadPid()));
  mkdirSync(`${lockFile}.takeover`);
  expect(() => lockDataDir(dir)).toThrow(`remove ${lockFile} if no rmapp process is running`);
  expect(existsSync(lockFile), 'the stale lock removed under another take-over').toBe(true);
  // The guard of a process that died taking over (older than 10 s) does not block for ever.
  const old = new Date(Date.now() - 60_000);
  utimesSync(`${lockFile}.takeover`, old, old);
  const release = lockDataDir(dir);
  expect(readFileSync(lockFile, 'utf8')).toBe(String(process.pid));
  expect(existsSync(`${lockFile}.takeover`)).toBe(false);
  release();
});

it('of several processes starting together on a store with a stale lock, exactly one gets it', async () => {
  const dir = storeDir();
  const go = `${dir}.go`;
  const module = JSON.stringify(join(ROOT, 'dist/persistence/data-dir-lock.js'));
  const script = `
    const { existsSync } = require('node:fs');
    import(${module}).then(({ lockDataDir }) => {
      while (!existsSync(${JSON.stringify(go)})) {}
      try { lockDataDir(${JSON.stringify(dir)}); process.stdout.write('held'); setTimeout(() => {}, 1500); }
      catch (err) { process.stdout.write(err.message.includes('in use by process') ? 'refused' : 'error: ' + err.message); }
    });`;
  for (let round = 0; round < 3; round++) {
    writeFileSync(`${dir}.lock`, String(deadPid()));
    const children = Array.from({ length: 6 }, () => spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const outcomes = children.map(
      (c) =>
        new Promise<string>((resolve) => {
          let out = '';
          c.stdout.on('data', (d) => (out += d));
          c.on('exit', () => resolve(out));
        }),
    );
    await new Promise((r) => setTimeout(r, 600)); // all of them loaded and waiting
    writeFileSync(go, '');
    const results = await Promise.all(outcomes);
    rmSync(go);
    expect(
      results.filter((r) => r === 'held'),
      `round ${round}: ${results.join(', ')}`,
    ).toHaveLength(1);
    expect(
      results.filter((r) => r !== 'held' && r !== 'refused'),
      `round ${round}`,
    ).toEqual([]);
  }
});

// Permissions need a user the kernel holds to them: root is not, so the check runs as `nobody`.
const asNobody = process.getuid?.() === 0 && spawnSync('runuser', ['--help']).status === 0;

it.runIf(asNobody)('a store the process cannot lock or write is named with its fix, not taken for a damaged one', () => {
  const base = mkdtempSync(join(tmpdir(), 'rmapp-perm-'));
  dirs.push(base);
  const open = (dataDir: string) =>
    spawnSync(
      'runuser',
      [
        '-u',
        'nobody',
        '--',
        process.execPath,
        '-e',
        `import(${JSON.stringify(join(ROOT, 'dist/persistence/database.js'))}).then((m) => m.openDatabase({ dataDir: ${JSON.stringify(dataDir)} })).then(() => process.exit(0), (e) => { process.stdout.write(e.message); process.exit(1); })`,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
  // A volume the process owns, mounted in a folder it cannot write: the lock file goes beside the store.
  mkdirSync(join(base, 'root-owned', 'data'), { recursive: true });
  spawnSync('chown', ['nobody', join(base, 'root-owned', 'data')]);
  spawnSync('chmod', ['755', base, join(base, 'root-owned')]);
  const beside = open(join(base, 'root-owned', 'data'));
  expect(beside.status, beside.stderr).toBe(1);
  expect(beside.stdout).toMatch(
    /its lock file .*data\.lock goes in the folder that holds the store, .*root-owned, which this process cannot write \(EACCES\)\. Set dataDir \(RMAPP_DATA_DIR/,
  );
  // A store the process cannot write, in a folder it can.
  mkdirSync(join(base, 'owned', 'data'), { recursive: true });
  spawnSync('chown', ['nobody', join(base, 'owned')]);
  spawnSync('chmod', ['755', join(base, 'owned'), join(base, 'owned', 'data')]);
  const unwritable = open(join(base, 'owned', 'data'));
  expect(unwritable.status, unwritable.stderr).toBe(1);
  expect(unwritable.stdout).toMatch(/directory .*owned\/data is not writable by this process \(EACCES\): give it write access/);
  expect(unwritable.stdout).not.toMatch(/damaged|undefined/);
});
