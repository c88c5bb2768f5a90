/**
 * `rmapp worker` over configuration its flags replace or that it does not use: `-c` wins over
 * `RMAPP_CONCURRENCY` and the file's `concurrency`, and `serve`'s HTTP settings (`server.port`) do not
 * stop it; a bad value it does use is still refused, in words that name the value. The database is one
 * that is never reached: a worker that got past its configuration says it waits for it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { killAll, runRmapp, spawnRmapp, until } from './helpers/processes.ts';

const dir = mkdtempSync(join(tmpdir(), 'rmapp-worker-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(killAll);
const NEVER_OPENED = 'postgres://nobody@127.0.0.1:1/never-opened';

/** Starts `rmapp worker <args>` and returns its output once it waits for the database or has exited. */
async function workerOutput(args: string[], env: Record<string, string>): Promise<string> {
  const worker = spawnRmapp(['worker', ...args], { DATABASE_URL: NEVER_OPENED, RMAPP_CONFIG: '', ...env });
  let exited = false;
  void worker.exited.then(() => (exited = true));
  await until(() => exited || worker.output().includes('the database is not reachable'), 60_000, 'the worker to start or exit');
  return worker.output();
}

it('a flag wins over the file and the environment, and settings only serve reads do not stop a worker', async () => {
  writeFileSync(join(dir, 'negative.json'), '{"concurrency":-1}');
  writeFileSync(join(dir, 'port.json'), '{"server":{"port":"x","dashboardToken":"short"}}');
  const cases: [string[], Record<string, string>][] = [
    [['-c', '5'], { RMAPP_CONCURRENCY: 'abc' }],
    [['-c', '5'], { RMAPP_CONFIG: join(dir, 'negative.json') }],
    [[], { RMAPP_CONFIG: join(dir, 'port.json') }],
    [[], { PORT: 'x' }],
  ];
  for (const [args, env] of cases) {
    const output = await workerOutput(args, env);
    const what = `worker ${args.join(' ')} ${JSON.stringify(env)}: ${output}`;
    expect(output, what).not.toMatch(/Invalid configuration/);
    expect(output, what).toMatch(/the database is not reachable/);
    killAll();
  }
});

it('a bad value the worker uses is refused, naming the value', async () => {
  const r = await runRmapp(['worker'], { DATABASE_URL: NEVER_OPENED, RMAPP_CONFIG: '', RMAPP_CONCURRENCY: 'abc' });
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toContain('concurrency (env RMAPP_CONCURRENCY): "abc" is not a whole number from 1 to 2147483647');
  expect(r.stderr).not.toMatch(/NaN/);
  // By the rule -c has: 1e10 was read as ten billion runs at once, 0x10 as 16, 1.5 in zod's words.
  for (const value of ['1e10', '0x10', '1.5', '0', 'Infinity']) {
    const bad = await runRmapp(['worker'], { DATABASE_URL: NEVER_OPENED, RMAPP_CONFIG: '', RMAPP_CONCURRENCY: value });
    expect(bad.code, `RMAPP_CONCURRENCY=${value}: ${bad.stderr}`).toBe(1);
    expect(bad.stderr, `RMAPP_CONCURRENCY=${value}`).toContain(
      `concurrency (env RMAPP_CONCURRENCY): "${value}" is not a whole number from 1 to 2147483647`,
    );
  }
  // serve still refuses what it reads.
  const served = await runRmapp(['serve'], { DATABASE_URL: NEVER_OPENED, RMAPP_CONFIG: '', PORT: 'x' });
  expect(served.code, served.stderr).toBe(1);
  expect(served.stderr).toContain('server.port (env PORT)');
});
