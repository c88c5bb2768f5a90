/**
 * One process (and one PGlite instance) at a time on an embedded store (src/persistence/data-dir-lock.ts),
 * also when processes start together. Two adversarial passes found two holders at once: a lock created
 * empty and taken for stale while its pid was being written; two processes that read one dead pid both
 * removing the lock, or one removing the lock another had just taken; a worker thread or a second copy
 * of the package taking over its own process's lock; a store bind-mounted alone, its lock left beside it;
 * and a lock naming a pid reused after a reboot (pid 1 in a container) refused for ever.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { lockDataDir, lockFileOf } from '../src/persistence/data-dir-lock.ts';
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

const holderPid = (dir: string) => (JSON.parse(readFileSync(lockFileOf(dir), 'utf8')) as { pid: number }).pid;

it('a live holder is named; a dead one is taken over; the release removes the lock and leaves nothing', async () => {
  const dir = storeDir();
  writeFileSync(lockFileOf(dir), String(process.ppid)); // an older rmapp's lock: a pid alone
  await expect(lockDataDir(dir)).rejects.toThrow(`is in use by process ${process.ppid}`);
  writeFileSync(lockFileOf(dir), String(deadPid()));
  const release = await lockDataDir(dir);
  expect(holderPid(dir)).toBe(process.pid);
  await expect(lockDataDir(dir), 'a second opening in this process').rejects.toThrow('already open in this process');
  release();
  expect(readdirSync(dir), 'files of the locking left in the store').toEqual([]);
  expect(readdirSync(join(dir, '..')), 'files of the locking left beside the store').toEqual(['store']);
});

it('a lock naming a process started at another time, or in an earlier boot, is stale; -1 and garbage name no one', async () => {
  const dir = storeDir();
  // pid 1 runs, but it is not the process that wrote this lock (a pid reused after a reboot or in a new container).
  for (const stale of [
    { pid: 1, start: 'another start', boot: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() },
    { pid: process.ppid, boot: 'an earlier boot' },
  ]) {
    writeFileSync(lockFileOf(dir), JSON.stringify(stale));
    (await lockDataDir(dir))();
  }
  for (const text of ['-1', 'garbage', '{"pid":"1"}']) {
    writeFileSync(lockFileOf(dir), text);
    (await lockDataDir(dir))();
  }
  // A holder in another PID namespace cannot be checked: kept, with the file to remove once it is gone.
  for (const net of [undefined, 'net:[1]']) {
    writeFileSync(lockFileOf(dir), JSON.stringify({ pid: 1, ns: 'pid:[1]', net }));
    await expect(lockDataDir(dir), `net ${net}`).rejects.toThrow(/another PID namespace .* if it is gone, remove .*rmapp\.lock/);
  }
  // …unless it shares this network namespace, where the store's socket (free: this process bound it) says it is gone —
  // a crashed container of the same pod kept the store locked for ever (an adversarial pass).
  if (process.platform === 'linux') {
    writeFileSync(lockFileOf(dir), JSON.stringify({ pid: 1, ns: 'pid:[1]', net: readlinkSync('/proc/self/ns/net') }));
    (await lockDataDir(dir))();
  }
});

it('a lock file still empty (its pid being written by another process) is not taken for stale', async () => {
  const dir = storeDir();
  const lockFile = lockFileOf(dir);
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
    await expect(lockDataDir(dir), 'the store taken from a process writing its lock').rejects.toThrow(`is in use by process ${writer.pid}`);
  } finally {
    writer.kill('SIGKILL');
  }
});

it('a stale lock is not removed while another process takes it over; a guard left by a dead process is cleared', async () => {
  const dir = storeDir();
  const lockFile = lockFileOf(dir);
  writeFileSync(lockFile, String(deadPid()));
  mkdirSync(`${lockFile}.takeover`);
  await expect(lockDataDir(dir)).rejects.toThrow(`remove ${lockFile} and ${lockFile}.takeover if no rmapp process is running`);
  expect(existsSync(lockFile), 'the stale lock removed under another take-over').toBe(true);
  // The guard of a process that died taking over (older than 10 s) does not block for ever.
  const old = new Date(Date.now() - 60_000);
  utimesSync(`${lockFile}.takeover`, old, old);
  const release = await lockDataDir(dir);
  expect(holderPid(dir)).toBe(process.pid);
  expect(existsSync(`${lockFile}.takeover`)).toBe(false);
  release();
});

it('an older rmapp holding the lock beside the store is respected', async () => {
  const dir = storeDir();
  writeFileSync(`${dir}.lock`, String(process.ppid));
  await expect(lockDataDir(dir)).rejects.toThrow(`is in use by process ${process.ppid}`);
  writeFileSync(`${dir}.lock`, String(deadPid()));
  (await lockDataDir(dir))();
});

/** Runs `script` in `count` processes released together; returns each one's output. */
async function together(count: number, script: string, go: string): Promise<string[]> {
  const children = Array.from({ length: count }, () => spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const outcomes = children.map(
    (c) =>
      new Promise<string>((resolve) => {
        let out = '';
        c.stdout.on('data', (d) => (out += d));
        c.on('exit', () => resolve(out));
      }),
  );
  await new Promise((r) => setTimeout(r, 700)); // all of them loaded and waiting
  writeFileSync(go, '');
  const results = await Promise.all(outcomes);
  rmSync(go);
  return results;
}

it('of several processes starting together on a store with a stale or empty lock, one holds it at a time', async () => {
  const dir = storeDir();
  const go = `${dir}.go`;
  const log = `${dir}.log`;
  const module = JSON.stringify(join(ROOT, 'dist/persistence/data-dir-lock.js'));
  // Each holder notes when it held the store; two holders at once show as overlapping intervals.
  const script = `
    const { appendFileSync, existsSync } = require('node:fs');
    import(${module}).then(async ({ lockDataDir }) => {
      while (!existsSync(${JSON.stringify(go)})) {}
      let release;
      try { release = await lockDataDir(${JSON.stringify(dir)}); }
      catch (err) { process.stdout.write(/in use by|kept taking/.test(err.message) ? 'refused' : 'error: ' + err.message); return; }
      const from = performance.timeOrigin + performance.now();
      const until = Date.now() + 40; while (Date.now() < until) {}
      appendFileSync(${JSON.stringify(log)}, from + ' ' + (performance.timeOrigin + performance.now()) + '\\n');
      release();
      process.stdout.write('held');
    });`;
  for (let round = 0; round < 8; round++) {
    writeFileSync(lockFileOf(dir), round % 2 ? String(deadPid()) : '');
    const results = await together(4, script, go);
    expect(
      results.filter((r) => r !== 'held' && r !== 'refused'),
      `round ${round}`,
    ).toEqual([]);
    expect(results.filter((r) => r === 'held').length, `round ${round}: ${results.join(', ')}`).toBeGreaterThanOrEqual(1);
  }
  const spans = readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' ').map(Number) as [number, number])
    .sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    expect(spans[i]![0], `holder ${i} began before holder ${i - 1} let go`).toBeGreaterThanOrEqual(spans[i - 1]![1]);
  }
});

it('a second copy of the package in one process does not take its own process’s lock over', async () => {
  const dir = storeDir();
  const copy = mkdtempSync(join(tmpdir(), 'rmapp-copy-'));
  dirs.push(copy);
  // The module and what it imports, as a second installed copy of the package would have them.
  for (const file of ['data-dir-lock.js', 'config-error.js', 'process-identity.js']) {
    writeFileSync(
      join(copy, file.replace(/\.js$/, '.mjs')),
      readFileSync(join(ROOT, 'dist/persistence', file), 'utf8').replace(/\.js(["'];)/g, '.mjs$1'),
    );
  }
  const { lockDataDir: otherCopy } = (await import(
    join(copy, 'data-dir-lock.mjs')
  )) as typeof import('../src/persistence/data-dir-lock.ts');
  const release = await lockDataDir(dir);
  try {
    await expect(otherCopy(dir)).rejects.toThrow('already open in this process (another thread, or another copy of rmapp)');
  } finally {
    release();
  }
});

// Permissions need a user the kernel holds to them: root is not, so the check runs as `nobody`.
const asNobody = process.getuid?.() === 0 && spawnSync('runuser', ['--help']).status === 0;

it.runIf(asNobody)('a store in a folder the process cannot write opens; one it cannot write is named with its fix', () => {
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
        `import(${JSON.stringify(join(ROOT, 'dist/persistence/database.js'))}).then((m) => m.openDatabase({ dataDir: ${JSON.stringify(dataDir)} })).then((db) => db.close()).then(() => process.exit(0), (e) => { process.stdout.write(e.message); process.exit(1); })`,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
  // A volume the process owns, mounted in a folder it cannot write (the lock used to go beside the store).
  mkdirSync(join(base, 'root-owned', 'data'), { recursive: true });
  spawnSync('chown', ['nobody', join(base, 'root-owned', 'data')]);
  spawnSync('chmod', ['755', base, join(base, 'root-owned')]);
  const inVolume = open(join(base, 'root-owned', 'data'));
  expect(inVolume.status, `${inVolume.stdout}${inVolume.stderr}`).toBe(0);
  // A store the process cannot write, in a folder it can.
  mkdirSync(join(base, 'owned', 'data'), { recursive: true });
  spawnSync('chown', ['nobody', join(base, 'owned')]);
  spawnSync('chmod', ['755', join(base, 'owned'), join(base, 'owned', 'data')]);
  const unwritable = open(join(base, 'owned', 'data'));
  expect(unwritable.status, unwritable.stderr).toBe(1);
  expect(unwritable.stdout).toMatch(/directory .*owned\/data is not writable by this process \(EACCES\): give it write access/);
  // A store whose files another user made (root opened it once): named, not called damaged.
  spawnSync('chown', ['-R', 'nobody', join(base, 'root-owned', 'data')]);
  spawnSync('chown', ['root', join(base, 'root-owned', 'data', 'global', 'pg_control')]);
  spawnSync('chmod', ['644', join(base, 'root-owned', 'data', 'global', 'pg_control')]);
  const foreign = open(join(base, 'root-owned', 'data'));
  expect(foreign.status, foreign.stderr).toBe(1);
  expect(foreign.stdout).toMatch(/pg_control is not writable by this process .*\(chown -R\)/);
  expect(foreign.stdout).not.toMatch(/damaged|backup/);
});

it.runIf(process.platform === 'linux')(
  'the kernel holds the store for its process: a lock file removed by hand frees nothing, a terminated thread frees it',
  async () => {
    const dir = storeDir();
    const module = JSON.stringify(join(ROOT, 'dist/persistence/data-dir-lock.js'));
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `import(${module}).then(async (m) => { await m.lockDataDir(${JSON.stringify(dir)}); process.stdout.write('held'); setTimeout(() => {}, 10000); });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise((resolve) => holder.stdout.once('data', resolve));
      rmSync(lockFileOf(dir));
      await expect(lockDataDir(dir), 'a store taken while its holder runs').rejects.toThrow('is in use by another process');
    } finally {
      holder.kill('SIGKILL');
      await new Promise((resolve) => holder.once('exit', resolve));
    }
    // A worker thread that held the store and was terminated (no exit handler ran, its lock file stays).
    const worker = new Worker(
      `import(${module}).then(async (m) => { await m.lockDataDir(${JSON.stringify(dir)}); require('node:worker_threads').parentPort.postMessage('held'); setInterval(() => {}, 1000); });`,
      { eval: true },
    );
    await new Promise((resolve) => worker.once('message', resolve));
    await expect(lockDataDir(dir), 'while the thread holds it').rejects.toThrow('already open in this process');
    await worker.terminate();
    expect(existsSync(lockFileOf(dir)), 'the terminated thread’s lock file').toBe(true);
    const release = await lockDataDir(dir);
    release();
  },
);
