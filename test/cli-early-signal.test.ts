/**
 * A SIGTERM or SIGINT that reaches the CLI while it loads (before a command's action installs its own
 * handler): `rmapp worker` and `rmapp serve` stop cleanly on it (exit 0, nothing started), every other
 * command ends by it as it would without rmapp's listener. The signal is sent by a preload the moment
 * bin/rmapp.mjs is listening (test/fixtures/signal-while-loading.mjs), so it always lands in that window.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BIN, ROOT } from './helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

const PRELOAD = join(ROOT, 'test/fixtures/signal-while-loading.mjs');

let testDb: TestDatabase;
let dir: string;
beforeAll(async () => {
  testDb = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), 'rmapp-early-signal-'));
});
afterAll(async () => {
  await testDb.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `rmapp <args>` with the signal sent while it loads; how it ended (killed after 60 s if it did not). */
async function signalledWhileLoading(args: string[], signal: 'SIGTERM' | 'SIGINT', env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', PRELOAD, BIN, ...args], {
    cwd: dir,
    env: { ...process.env, RMAPP_TEST_SIGNAL: signal, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code, killedBy] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  return { code, killedBy, output };
}

it.each([
  ['worker on Postgres', 'SIGTERM', ['worker'], 'postgres'],
  ['worker on Postgres', 'SIGINT', ['worker'], 'postgres'],
  ['worker on PGlite', 'SIGTERM', ['worker'], 'pglite'],
  ['serve on Postgres', 'SIGTERM', ['serve', '--port', '0'], 'postgres'],
  ['serve on PGlite', 'SIGINT', ['serve', '--port', '0'], 'pglite'],
] as const)('rmapp %s stops cleanly on a %s that came while the CLI loaded', async (_what, signal, args, store) => {
  const env: Record<string, string> =
    store === 'postgres' ? { DATABASE_URL: testDb.url } : { DATABASE_URL: '', RMAPP_DATA_DIR: join(dir, `data-${args[0]}-${signal}`) };
  const r = await signalledWhileLoading([...args], signal, env);
  // Before, the process was killed by the signal (exit 143 / 130), the handler not installed yet.
  expect({ code: r.code, killedBy: r.killedBy }, r.output).toEqual({ code: 0, killedBy: null });
  expect(r.output).toMatch(new RegExp(`rmapp ${args[0]}: stopped before it started\\.`));
});

it.each([
  ['runs list', ['runs', 'list']],
  ['workflows list', ['workflows', 'list']],
  // Commander ends these itself (it used to call process.exit, which swallowed the signal: exit 0 or 1).
  ['--version', ['--version']],
  ['--help', ['--help']],
  ['help worker', ['help', 'worker']],
  ['with a usage error', ['runs', 'bogus']],
])('rmapp %s still ends by a SIGTERM that came while the CLI loaded', async (_what, args) => {
  const r = await signalledWhileLoading(args, 'SIGTERM', { DATABASE_URL: testDb.url });
  expect({ code: r.code, killedBy: r.killedBy }, r.output).toEqual({ code: null, killedBy: 'SIGTERM' });
});
