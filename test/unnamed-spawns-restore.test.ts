/**
 * Children spawned without an id, restored in a fresh process. XState names such a child `x:<n>` from a
 * counter global to the process; a new worker process counts again from 0, and its next unnamed child
 * took the id of a restored one and replaced it (its state lost, two refs in the context naming one
 * actor). Real worker processes, one after the other, on one run: every child must survive with its
 * own id and state.
 */
import { expect, it } from 'vitest';
import { createEngine } from '../src/index.ts';
import { processClient } from './helpers/process-client.ts';
import { spawnRmapp, TEST_WORKFLOWS, until } from './helpers/processes.ts';
import { spawnsWorkflow } from './helpers/workflows.ts';

const pg = processClient(() => [spawnsWorkflow()]);

interface Persisted {
  context: { refs: { id: string }[] };
  children: Record<string, { snapshot: { context: { n: number } } }>;
}

/** The run's persisted snapshot (none before its first claim: no refs, no children). */
async function persisted(id: string): Promise<Persisted> {
  const [row] = await (await pg.client.db()).query<{ snapshot: Persisted | null }>(`select snapshot from rmapp_runs where id = $1`, [id]);
  return row?.snapshot ?? { context: { refs: [] }, children: {} };
}

it('a child spawned without an id in a new worker process never replaces a restored one', async () => {
  const id = await pg.client.start('test.spawns', {});
  const env = { DATABASE_URL: pg.url };
  let spawned = 0;
  // Three worker processes in turn, each spawning four more children into the run.
  for (let round = 0; round < 3; round++) {
    const worker = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--worker-id', 'spawns-worker'], env);
    for (let i = 0; i < 4; i++) {
      await pg.client.send(id, { type: 'spawn' });
      spawned += 1;
      await until(async () => (await persisted(id)).context.refs.length === spawned, 30_000, `child ${spawned} persisted`);
    }
    worker.child.kill('SIGKILL');
    await worker.exited;
  }
  const worker = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--worker-id', 'spawns-worker'], env);
  try {
    await pg.client.send(id, { type: 'incAll' });
    await until(async () => Object.values((await persisted(id)).children).some((c) => c.snapshot.context.n > 0), 30_000, 'incAll applied');
    const snapshot = await persisted(id);
    const refs = snapshot.context.refs.map((r) => r.id);
    expect(new Set(refs).size, `two refs name one child: ${JSON.stringify(refs)}`).toBe(spawned);
    expect(Object.keys(snapshot.children).sort(), 'a restored child was replaced').toEqual([...refs].sort());
    expect(
      Object.fromEntries(Object.entries(snapshot.children).map(([k, c]) => [k, c.snapshot.context.n])),
      'each child got inc once',
    ).toEqual(Object.fromEntries(refs.map((r) => [r, 1])));
  } finally {
    worker.child.kill('SIGKILL');
    await worker.exited;
  }
});

it("a chosen id of any length in XState's form is passed too: restores in one process never give a child an id twice", async () => {
  const id = await pg.client.start('test.spawns', {});
  const db = await pg.client.db();
  // Each event by a fresh engine (a restore each time), all in this process.
  const events = [{ type: 'spawnAs', id: 'x:999999999999999' }, { type: 'spawn' }, { type: 'spawn' }, { type: 'spawn' }];
  for (const [i, event] of events.entries()) {
    const engine = createEngine({ database: db, workflows: [spawnsWorkflow()], pollMs: 20 });
    await engine.startWorker();
    await engine.send(id, event as { type: 'spawn' });
    await until(async () => (await persisted(id)).context.refs.length === i + 1, 30_000, `child ${i + 1} persisted`);
    await engine.stop({ graceMs: 100 });
  }
  const snapshot = await persisted(id);
  const refs = snapshot.context.refs.map((r) => r.id);
  expect(new Set(refs).size, `two refs name one child: ${JSON.stringify(refs)}`).toBe(4);
  expect(Object.keys(snapshot.children).sort()).toEqual([...refs].sort());
  expect(refs[0]).toBe('x:999999999999999');
});
