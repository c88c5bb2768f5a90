// A run that failed on a signal before its first state was written has no state to resume from: the
// retry's answer says it starts again from its first state, not "from null" (README, "Without the
// event it failed on").
import { expect, test } from 'vitest';
import { createEngine, openDatabase, migrate } from '../src/index.ts';
import { poisonedByBoom } from './helpers/workflows.ts';

const workflow = poisonedByBoom('test.first-state-boom');

test('a retry of a run that failed before its first write names no null state', async () => {
  const db = await openDatabase({ url: '', dataDir: 'memory://' });
  await migrate(db);
  const engine = createEngine({ workflows: [workflow], database: db, migrate: false, pollMs: 20 });
  try {
    // Started and signalled before any worker runs it: the first read takes both, and the run fails
    // handling the signal before anything of it was written.
    const id = await engine.start(workflow, {});
    await engine.send(id, { type: 'boom' });
    await engine.startWorker();
    const failed = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(failed.status).toBe('failed');
    expect(failed.state).toBeNull();

    const retried = await engine.retry(id, { dropSignal: true });
    expect(retried.message).not.toContain('null');
    expect(retried.message).toBe(`Run ${id} will start again from its first state without signal 1 ("boom"), which it failed handling.`);

    await engine.send(id, { type: 'finish' });
    const done = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect([done.status, done.state]).toEqual(['succeeded', 'done']);
  } finally {
    await engine.stop();
    await db.close();
  }
}, 60_000);
