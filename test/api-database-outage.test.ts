/**
 * The HTTP API while its database does not answer: a request that cannot be served for that is told to
 * come again (503 with `Retry-After`), not that the server is broken (500), and the answer names no
 * connection string or password (the server log says why). A request that is wrong itself keeps its
 * 4xx, and once the database is back the same request is served.
 */
import { Writable } from 'node:stream';
import { afterAll, expect, it } from 'vitest';
import { createEngine } from '../src/index.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { startApiServer } from './helpers/api-server.ts';
import { startFaultProxy } from './helpers/pg-fault-proxy.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { poisonedByBoom } from './helpers/workflows.ts';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

it('answers 503 with Retry-After while the database is unreachable, and serves again once it is back', async () => {
  const testDb = await createTestDatabase();
  cleanups.push(() => testDb.drop());
  let proxy = await startFaultProxy();
  const port = Number(new URL(proxy.url(testDb.name)).port);
  cleanups.push(() => proxy.close());
  const url = proxy.url(testDb.name);
  const workflow = poisonedByBoom('outage.waiting');
  const engine = createEngine({ workflows: [workflow], database: { url }, logger: createLogger({ level: 'silent' }) });
  cleanups.push(() => engine.stop());
  const id = await engine.start(workflow, {});
  const logged: string[] = [];
  const destination = new Writable({ write: (chunk: Buffer, _enc, done) => (logged.push(chunk.toString('utf8')), done()) });
  const server = await startApiServer(engine, undefined, [], createLogger({ level: 'error', destination }));
  cleanups.push(() => server.close());
  expect((await fetch(`${server.url}/api/runs/${id}`)).status, 'with the database up').toBe(200);

  // The database goes away: connections open are cut, new ones refused.
  proxy.terminateAll();
  await proxy.close();
  for (const [what, request] of [
    ['GET /api/runs', () => fetch(`${server.url}/api/runs`)],
    ['GET /api/runs/:id', () => fetch(`${server.url}/api/runs/${id}`)],
    [
      'POST /api/runs',
      () =>
        fetch(`${server.url}/api/runs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-rmapp-request': '1' },
          body: JSON.stringify({ workflow: 'outage.waiting', input: {} }),
        }),
    ],
  ] as const) {
    const res = await request();
    const body = await res.text();
    expect(res.status, `${what} with the database unreachable: ${body}`).toBe(503);
    expect(res.headers.get('retry-after'), what).toBe('5');
    expect(body, what).toMatch(/cannot reach its database/);
    expect(body, what).not.toContain(String(port));
    expect(body, what).not.toContain('postgres://');
  }
  // A client's own mistake is still its own: the body is checked before the database is asked.
  const bad = await fetch(`${server.url}/api/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-rmapp-request': '1' },
    body: '{',
  });
  expect(bad.status, 'malformed JSON with the database down').toBe(400);
  expect(logged.join(''), 'the server log says why').toMatch(/request failed/);

  // Back on the same port: the same request is served.
  proxy = await startFaultProxy({ host: '127.0.0.1', port: 5432 }, port);
  const again = await fetch(`${server.url}/api/runs/${id}`);
  expect(again.status, `with the database back: ${await again.clone().text()}`).toBe(200);
});
