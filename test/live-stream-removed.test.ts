/**
 * `GET /api/stream` tells clients of deleted runs (migration 0018's trigger, `rmapp_run_removed`): the
 * workers' retention prunes finished runs, and a dashboard that was not told kept showing them. A
 * client watching every run hears of each; one following a run (`?run=`) hears of that run and its
 * children only. A run whose notification cannot carry its id (over Postgres's 8000-byte payload
 * limit) is still deleted — the trigger must never fail a delete — and is announced as `more`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { insertRun } from '../src/persistence/runs.ts';
import { pruneRuns } from '../src/persistence/retention.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { createMasker } from '../src/rmapp/masking.ts';
import { startServiceServer } from '../src/rmapp/server/http-server.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';
import { sequenceWorkflow } from './helpers/workflows.ts';

const log = createLogger({ level: 'silent' });
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

type Removed = { ids: string[]; more?: boolean };

/** A stream's `removed` events, read as they come; `until` resolves once `done` holds for what was read. */
function removedEvents(res: Response) {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const events: Removed[] = [];
  let buffer = '';
  return {
    events,
    async until(done: (events: Removed[]) => boolean, what: string): Promise<Removed[]> {
      while (!done(events)) {
        const read = await Promise.race([reader.read(), new Promise<null>((resolve) => setTimeout(() => resolve(null), 15_000).unref())]);
        if (read === null) throw new Error(`no ${what} within 15 s; removed events so far: ${JSON.stringify(events)}`);
        if (read.done) throw new Error(`the stream ended before ${what}; removed events: ${JSON.stringify(events)}`);
        buffer += decoder.decode(read.value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split('\n').find((l) => l.startsWith('data: '));
          if (frame.startsWith('event: removed') && data) events.push(JSON.parse(data.slice(6)) as Removed);
        }
      }
      return events;
    },
    close: () => reader.cancel(),
  };
}

const idsOf = (events: Removed[]) => events.flatMap((e) => e.ids).sort();

describe.each(['postgres', 'pglite'] as const)('%s', (kind) => {
  async function setUp() {
    const database = await engineDatabaseFor(kind, cleanups);
    const engine: Engine = createEngine({ workflows: [sequenceWorkflow(2)], database, pollMs: 50 });
    cleanups.push(() => engine.stop());
    const server = await startServiceServer({ engine, log, host: '127.0.0.1', port: 0, webhook: null, masker: createMasker([]) });
    cleanups.push(() => server.close());
    const stream = async (query = '') => {
      const res = await fetch(`${server.url}/api/stream${query}`);
      expect(res.status, `GET /api/stream${query}`).toBe(200);
      const events = removedEvents(res);
      cleanups.push(() => events.close());
      return events;
    };
    return { engine, stream };
  }

  it('a run the retention deletes reaches every client watching all runs, and a client following it or its parent', async () => {
    const { engine, stream } = await setUp();
    await engine.startWorker();
    const parent = await engine.start('test.sequence', {}, { runId: `parent-${kind}` });
    const child = await engine.start('test.sequence', {}, { runId: `child-${kind}`, parentRunId: parent });
    const other = await engine.start('test.sequence', {}, { runId: `other-${kind}` });
    for (const id of [parent, child, other]) expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status, id).toBe('succeeded');
    // Connected before the delete: the first client turns the announcements on.
    const all = await stream();
    const ofParent = await stream(`?run=${parent}`);
    const ofOther = await stream(`?run=${other}`);

    const pruned = await pruneRuns(await engine.db(), { succeededMs: 0, failedMs: 0, cancelledMs: 0 });
    expect(pruned.runs, 'runs the retention deleted').toBe(3);

    const want = [child, other, parent].sort();
    expect(idsOf(await all.until((e) => idsOf(e).length >= 3, 'all three runs removed')), 'ids sent to a client of every run').toEqual(
      want,
    );
    expect(idsOf(await ofParent.until((e) => idsOf(e).length >= 2, 'the parent and its child removed')), 'ids sent to ?run=parent').toEqual(
      [child, parent].sort(),
    );
    expect(idsOf(await ofOther.until((e) => idsOf(e).length >= 1, 'the other run removed')), 'ids sent to ?run=other').toEqual([other]);
    expect(
      [...all.events, ...ofParent.events, ...ofOther.events].some((e) => e.more),
      'an event flagged `more`',
    ).toBe(false);
  });

  it('a run whose id is too long for a notification is still deleted, and announced as `more`', async () => {
    const { engine, stream } = await setUp();
    const db = await engine.db();
    // Written by hand (the engine refuses run ids over 200 characters, and its insert's wake-up
    // notification could not carry this one), before anyone watches (migration 0010's could not either).
    const long = `long-${'r'.repeat(9_000)}`;
    await db.query(`insert into rmapp_runs (id, workflow, workflow_version, input) values ($1, 'test.sequence', 'v0', '{}')`, [long]);
    await insertRun(db, { id: 'short-one', workflow: 'test.sequence', workflowVersion: 'v0', input: {} });
    const all = await stream();
    const ofOne = await stream('?run=some-run');
    const gone = await db.query<{ id: string }>(`delete from rmapp_runs where id in ($1, $2) returning id`, [long, 'short-one']);
    expect(gone.map((r) => r.id.slice(0, 9)).sort(), 'rows the delete removed').toEqual(['long-rrrr', 'short-one']);
    const events = await all.until((e) => e.some((x) => x.more) && idsOf(e).includes('short-one'), 'both removals');
    expect(idsOf(events), 'ids named').toEqual(['short-one']);
    // A client following one run cannot tell whether the unnamed run was its own: it is told too.
    expect((await ofOne.until((e) => e.some((x) => x.more), 'the unnamed removal')).flatMap((e) => e.ids)).toEqual([]);
  });
});
