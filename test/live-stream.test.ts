/**
 * `GET /api/stream` (Server-Sent Events): every change of a run reaches a connected client — on
 * Postgres also when another process (here: another engine with its own connections) executes the
 * run, through migration 0010's NOTIFY; on PGlite in-process. The stream obeys the dashboard token and
 * masks secrets like every API answer.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { createMasker, MASK } from '../src/rmapp/masking.ts';
import { startServiceServer } from '../src/rmapp/server/http-server.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';
import { sequenceWorkflow } from './helpers/workflows.ts';

const log = createLogger({ level: 'silent' });
const TOKEN = 'a-dashboard-token-0123456789';
const SECRET = 'sekrit-value-4242';
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Reads `run` events from the stream until `until` holds for one; returns every event read. */
async function readUntil(
  res: Response,
  until: (e: { id: string; status: string; state: unknown }) => boolean,
): Promise<{ id: string; status: string; state: unknown }[]> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const events: { id: string; status: string; state: unknown }[] = [];
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended after ${JSON.stringify(events)}`);
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = frame.split('\n').find((l) => l.startsWith('data: '));
      if (!frame.startsWith('event: run') || !data) continue;
      const event = JSON.parse(data.slice(6)) as { id: string; status: string; state: unknown };
      events.push(event);
      if (until(event)) {
        await reader.cancel();
        return events;
      }
    }
  }
}

describe.each(['postgres', 'pglite'] as const)('%s', (kind) => {
  it('sends each state of a run executed elsewhere, ending with its final status; needs the token; masks secrets', async () => {
    const database = await engineDatabaseFor(kind, cleanups);
    // The serving engine executes nothing on Postgres: another engine, as another worker process would, runs it.
    const serving: Engine = createEngine({ workflows: [sequenceWorkflow(3)], database, pollMs: 50 });
    const worker: Engine = kind === 'postgres' ? createEngine({ workflows: [sequenceWorkflow(3)], database, pollMs: 50 }) : serving;
    cleanups.push(async () => {
      await worker.stop();
      if (worker !== serving) await serving.stop();
    });
    await serving.db();
    const server = await startServiceServer({
      engine: serving,
      log,
      host: '127.0.0.1',
      port: 0,
      webhook: null,
      dashboardToken: TOKEN,
      masker: createMasker([SECRET]),
    });
    cleanups.push(() => server.close());

    const refused = await fetch(`${server.url}/api/stream`);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: 'Dashboard token required: send Authorization: Bearer <RMAPP_DASHBOARD_TOKEN>.' });
    const res = await fetch(`${server.url}/api/stream`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    // The run id holds a secret: every event names the run with the secret masked.
    const id = await serving.start('test.sequence', {}, { runId: `live-${kind}-${SECRET}` });
    const masked = `live-${kind}-${MASK}`;
    const reading = readUntil(res, (e) => e.id === masked && e.status === 'succeeded');
    await worker.startWorker();
    const events = await reading;
    const states = events.filter((e) => e.id === masked).map((e) => e.state);
    expect(states).toContain('done');
    expect(events.at(-1)).toMatchObject({ id: masked, status: 'succeeded', state: 'done' });
    expect(JSON.stringify(events)).not.toContain(SECRET);
    expect((await serving.get(id)).status).toBe('succeeded');
  });
});
