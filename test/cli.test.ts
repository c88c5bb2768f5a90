/** The `rmapp` command against real Postgres: JSON output, human output, and clear errors. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { runRmapp, TEST_WORKFLOWS } from './helpers/processes.ts';

let testDb: TestDatabase;
let env: Record<string, string>;
const rmapp = (...args: string[]) => runRmapp(['--workflows', TEST_WORKFLOWS, ...args], env);

beforeAll(async () => {
  testDb = await createTestDatabase();
  env = { DATABASE_URL: testDb.url };
});
afterAll(async () => {
  await testDb.drop();
});

it('starts, runs and shows a run; lists runs as JSON', async () => {
  const started = await rmapp('start', 'test.sequence', '{}', '--wait', '--json');
  expect(started.code, started.stderr).toBe(0);
  const run = JSON.parse(started.stdout) as { id: string; status: string; output: unknown };
  expect(run.status).toBe('succeeded');
  expect(run.output).toEqual({ sum: 21 });

  const list = await rmapp('runs', 'list', '--json');
  expect(list.code, list.stderr).toBe(0);
  const runs = JSON.parse(list.stdout) as Record<string, unknown>[];
  expect(runs).toHaveLength(1);
  for (const key of ['id', 'workflow', 'status', 'state', 'createdAt', 'updatedAt']) expect(runs[0]).toHaveProperty(key);
  expect(runs[0]).toMatchObject({ id: run.id, workflow: 'test.sequence', status: 'succeeded', state: 'done' });

  const filtered = await rmapp('runs', 'list', '--status', 'failed', '--json');
  expect(JSON.parse(filtered.stdout)).toEqual([]);

  const show = await rmapp('runs', 'show', run.id, '--json');
  const shown = JSON.parse(show.stdout) as { status: string; history: { type: string }[] };
  expect(shown.status).toBe('succeeded');
  expect(shown.history.map((h) => h.type)).toContain('step.succeeded');

  const text = await rmapp('runs', 'show', run.id);
  expect(text.stdout).toMatch(/Status\s+succeeded/);
  expect(text.stdout).toMatch(/History/);

  const cancel = await rmapp('runs', 'cancel', run.id);
  expect(cancel.code).toBe(0);
  expect(cancel.stdout).toMatch(/already finished \(succeeded\); nothing to cancel/);
});

it('reports user mistakes on stderr with exit 1 and no stack trace', async () => {
  const cases: [string[], RegExp][] = [
    [['runs', 'show', 'nope'], /No run with id "nope"/],
    [['start', 'test.sequence', '{"slowMs":"x"}'], /slowMs/],
    [['start', 'test.unknown'], /Unknown workflow "test.unknown"\. Registered workflows: test\.sequence, test\.fails, test\.flaky/],
    [['start', 'test.sequence', '{oops'], /input is not valid JSON/],
    [['runs', 'list', '--status', 'bogus'], /Allowed choices are pending, running/],
    [['runs', 'retry', 'nope'], /No run with id/],
  ];
  for (const [args, pattern] of cases) {
    const r = await rmapp(...args);
    expect(r.code, args.join(' ')).toBe(1);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }
  const missing = await runRmapp(['--workflows', 'does/not/exist.ts', 'runs', 'list'], env);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/Workflows module not found/);
});
