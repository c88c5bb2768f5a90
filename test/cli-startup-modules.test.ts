/**
 * `rmapp --version` and `rmapp --help` start without the database drivers, zod or OpenTelemetry
 * (src/rmapp/cli/main.ts imports them inside the commands that use them): each was ~60–100 ms of CPU
 * on every start of the command, 0.42 s in all against 0.22 s without them (bench/README.md). The
 * modules a process imports are recorded by a module hook (test/fixtures/module-trace.mjs).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { BIN, ROOT } from './helpers/processes.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'rmapp-module-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What a start must not load, and why it would be there. */
const HEAVY = [
  { name: 'node-postgres', pattern: /\/node_modules\/pg\// },
  { name: 'postgres.js', pattern: /\/node_modules\/postgres\// },
  { name: 'PGlite', pattern: /\/node_modules\/@electric-sql\/pglite\// },
  { name: 'the engine’s database layer', pattern: /\/persistence\/database\.js$/ },
  { name: 'zod', pattern: /\/node_modules\/zod\// },
  { name: 'OpenTelemetry', pattern: /\/node_modules\/@opentelemetry\// },
  { name: 'XState', pattern: /\/node_modules\/xstate\// },
  { name: 'pino', pattern: /\/node_modules\/pino\// },
];

async function modulesOf(args: readonly string[]): Promise<string[]> {
  const trace = join(dir, `${args.join('_').replace(/\W/g, '')}.txt`);
  await run(process.execPath, ['--import', join(ROOT, 'test/fixtures/module-trace.mjs'), BIN, ...args], {
    env: { ...process.env, RMAPP_TEST_MODULE_TRACE: trace },
  });
  return readFileSync(trace, 'utf8').split('\n').filter(Boolean);
}

const STARTS = [['--version'], ['--help'], ['worker', '--help'], ['runs', 'list', '--help']].map((args) => [args.join(' '), args] as const);

it.each(STARTS)('rmapp %s loads no driver, zod, OpenTelemetry, XState or pino', async (_shown, args) => {
  const modules = await modulesOf(args);
  // The trace works: it saw the CLI itself.
  expect(
    modules.some((m) => m.endsWith('/dist/rmapp/cli/main.js')),
    `the trace of rmapp ${args.join(' ')} misses the CLI`,
  ).toBe(true);
  const loaded = HEAVY.flatMap(({ name, pattern }) => {
    const hit = modules.find((m) => pattern.test(m));
    return hit ? [`${name} (${hit})`] : [];
  });
  expect(loaded, `rmapp ${args.join(' ')} loaded what it does not use`).toEqual([]);
});
