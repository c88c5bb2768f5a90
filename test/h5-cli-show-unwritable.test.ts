/**
 * `rmapp runs show` prints the message of a `state.unwritable` history entry (why the run's state could
 * not be written when it was cancelled or timed out), as the dashboard's run page does
 * (test/dashboard-unwritable.browser.test.ts): masked with the secrets the CLI knows, and with its control
 * characters and bidirectional controls shown as codes, not sent to the terminal (the message may quote
 * a state's value, which is untrusted text).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, type Engine } from '../src/index.ts';
import { appendHistory } from '../src/persistence/runs.ts';
import { MASK } from '../src/rmapp/masking.ts';
import { unwritableStateEntry } from '../src/state_machine/session-write.ts';
import { runRmapp, TEST_WORKFLOWS } from './helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

const waiting = defineWorkflow({
  name: 'test.h5-unwritable-shown',
  input: z.object({}),
  machine: setup({}).createMachine({ initial: 'waiting', states: { waiting: {} } }),
});

const SECRET = 'whsec-h5-unwritable-7f3a9c';

let testDb: TestDatabase;
let engine: Engine;

beforeAll(async () => {
  testDb = await createTestDatabase();
  engine = createEngine({ workflows: [waiting], database: { url: testDb.url } });
}, 60_000);
afterAll(async () => {
  await engine?.stop();
  await testDb?.drop();
});

it("runs show prints a state.unwritable entry's message, masked, its control characters shown as codes", { timeout: 60_000 }, async () => {
  const runId = await engine.start(waiting, {}, { runId: 'h5-unwritable' });
  const message = `The state holds "${SECRET} \u001b[2J\u001b]52;c;aGk=\u0007 \u009b31m abc\u202egnp.exe\u061c" over limits.snapshotBytes (2048 bytes).`;
  await appendHistory(
    await engine.db(),
    runId,
    [unwritableStateEntry({ name: 'WorkflowError', message, code: 'SIZE_LIMIT_EXCEEDED', category: 'permanent' })],
    null,
  );
  const out = await runRmapp(['--workflows', TEST_WORKFLOWS, 'runs', 'show', runId], {
    DATABASE_URL: testDb.url,
    GITHUB_WEBHOOK_SECRET: SECRET,
  });
  expect(out.code, out.stderr).toBe(0);
  const line = out.stdout.split('\n').find((l) => l.includes('state.unwritable'));
  expect(line, `no state.unwritable line in:\n${out.stdout}`).toBeDefined();
  expect(line).toContain(
    `The state holds "${MASK} \\x1b[2J\\x1b]52;c;aGk=\\x07 \\x9b31m abc[U+202E]gnp.exe[U+061C]" over limits.snapshotBytes (2048 bytes).`,
  );
  expect(out.stdout, 'the secret in clear').not.toContain(SECRET);
  // eslint-disable-next-line no-control-regex -- the control characters are what must not get through
  const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/.exec(out.stdout);
  expect(raw, `a raw ${JSON.stringify(raw?.[0])} reached the terminal`).toBeNull();
});

it(
  "runs watch prints a state.unwritable entry's message as runs show does: masked, its control characters shown as codes",
  { timeout: 60_000 },
  async () => {
    const runId = await engine.start(waiting, {}, { runId: 'h5-unwritable-watched' });
    const message = `The state holds "${SECRET} \u001b[2J\u009b31m abc\u202egnp.exe" over limits.snapshotBytes (2048 bytes).`;
    const db = await engine.db();
    await appendHistory(
      db,
      runId,
      [unwritableStateEntry({ name: 'WorkflowError', message, code: 'SIZE_LIMIT_EXCEEDED', category: 'permanent' })],
      null,
    );
    // Finished, so that the watch prints the history once and ends.
    await db.query(`update rmapp_runs set status = 'cancelled', finished_at = now() where id = $1`, [runId]);
    const out = await runRmapp(['--workflows', TEST_WORKFLOWS, 'runs', 'watch', runId], {
      DATABASE_URL: testDb.url,
      GITHUB_WEBHOOK_SECRET: SECRET,
    });
    expect(out.code, out.stderr).toBe(1); // not succeeded
    const line = out.stdout.split('\n').find((l) => l.includes('could not be written'));
    expect(line, `no line for the state.unwritable entry in:\n${out.stdout}`).toBe(
      `  ✕ its state could not be written (permanent: The state holds "${MASK} \\x1b[2J\\x9b31m abc[U+202E]gnp.exe" over limits.snapshotBytes (2048 bytes).); it ends from its last state written`,
    );
    expect(out.stdout, 'the secret in clear').not.toContain(SECRET);
    // eslint-disable-next-line no-control-regex -- the control characters are what must not get through
    const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/.exec(out.stdout);
    expect(raw, `a raw ${JSON.stringify(raw?.[0])} reached the terminal`).toBeNull();
  },
);
