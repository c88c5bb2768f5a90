/**
 * The database refuses a worker's commits for lack of a privilege (SQLSTATE 42501: an operator revoked
 * one, or a migration by another role left the workers' role without it). That is the deployment's
 * problem, not an outage: the worker says so at error level with what to grant, keeps the run (it
 * retries), and a stop gives the unwritten changes up after its deadline instead of waiting for the
 * database for ever. Once the privilege is back, another worker resumes the run from its last durable
 * state: nothing is lost.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { expect, it } from 'vitest';
import { createEngine, defineWorkflow, step } from '../src/index.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { ownedDatabase } from './helpers/owned-database.ts';
import { loadMigrations } from '../src/persistence/migrate.ts';
import { until } from './helpers/processes.ts';

const cleanups = cleanupsAfterAll();

/** Every execution of a step, outside the engine. */
const ledger: string[] = [];
let openGate: () => void = () => {};
const gate = new Promise<void>((resolve) => (openGate = resolve));

const first = step(async () => {
  ledger.push('first');
  await gate;
  return 1;
});
const second = step(async () => {
  ledger.push('second');
  return 2;
});
const machine = setup({ actors: { first, second } }).createMachine({
  id: 'refused',
  initial: 'one',
  states: {
    one: { invoke: { src: 'first', onDone: 'two' } },
    two: { invoke: { src: 'second', onDone: 'done' } },
    done: { type: 'final' },
  },
});
const refused = defineWorkflow({ name: 'test.refused', machine, input: z.object({}) });

function recordingLogger() {
  const lines: { level: 'error' | 'warn'; message: string }[] = [];
  const at =
    (level: 'error' | 'warn') =>
    (fields: object | string, message?: string): void => {
      lines.push({ level, message: typeof fields === 'string' ? fields : (message ?? '') });
    };
  return { lines, logger: { error: at('error'), warn: at('warn') } };
}

it('a commit refused for a privilege is logged as an error with the grant to make, a stop gives it up, and the run resumes once granted', async () => {
  const latest = loadMigrations().at(-1)!.tag;
  const d = await ownedDatabase(cleanups, latest);
  const { lines, logger } = recordingLogger();
  const engine = createEngine({ database: d.ownerDb, workflows: [refused], leaseMs: 1_000, logger });
  cleanups.push(() => engine.stop({ graceMs: 0 }));
  await engine.startWorker();
  const id = await engine.start('test.refused', {});
  await until(() => ledger.includes('first'), 20_000, 'the first step to start');

  // The step's end cannot be recorded: every commit appends a history row.
  await d.superuser.query(`revoke insert on rmapp_run_history from ${d.role}`);
  openGate();
  await until(
    () => lines.some((l) => l.level === 'error' && l.message.includes('42501')),
    20_000,
    'an error-level log naming SQLSTATE 42501',
  );
  const refusal = lines.find((l) => l.message.includes('42501'))!;
  expect(refusal.message, 'the refused commit names the privilege problem and the fix').toMatch(
    /could not commit 1 run\(s\): permission denied for table rmapp_run_history .*SELECT, INSERT, UPDATE, DELETE on rmapp's tables.*; grant what is missing/,
  );

  // Before the fix the stop waited for the commit for ever.
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([
    engine.stop({ graceMs: 0 }).then(() => true),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 30_000))),
  ]);
  clearTimeout(timer);
  expect(stopped, 'engine.stop() returned while the database refused its last commit').toBe(true);
  expect(
    lines.some((l) => l.level === 'error' && l.message.includes('1 run(s) still held')),
    `the stop tells what it gave up; logged: ${JSON.stringify(lines.map((l) => l.message))}`,
  ).toBe(true);
  const [row] = await d.superuser.query<{ status: string; state: unknown }>(
    `select status, state_value as state from rmapp_runs where id = $1`,
    [id],
  );
  expect(row, 'the run as last written: still in its first step').toEqual({ status: 'running', state: 'one' });

  await d.superuser.query(`grant insert on rmapp_run_history to ${d.role}`);
  const next = createEngine({ database: d.ownerDb, workflows: [refused], leaseMs: 1_000 });
  cleanups.push(() => next.stop({ graceMs: 0 }));
  await next.startWorker();
  const done = await next.waitFor(id, { timeoutMs: 30_000 });
  expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
  // The first step's end was never durable, so it ran again; the second ran once.
  expect(ledger).toEqual(['first', 'first', 'second']);
});
