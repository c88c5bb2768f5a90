/**
 * The HTTP API's answers to requests the engine refuses: a request the run's state refuses (an event
 * for a finished run, a retry of a run that did not fail) is a 409 Conflict; a malformed one (a key or
 * an artifact name no run can have) is a 400; neither is a 5xx, and each names what is wrong.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import {
  createEngine,
  defineWorkflow,
  RunNotFoundError,
  RunStateError,
  silentLogger,
  step,
  ValidationError,
  type Engine,
} from '../src/index.ts';
import { openDatabase, type Database } from '../src/persistence/database.ts';
import { startApiServer } from './helpers/api-server.ts';
import { until } from './helpers/processes.ts';

const TOKEN = 'status-codes-dashboard-token-0123456789';
/** A secret of the service's that a run's error quotes (a test's output, say). */
const SECRET = 'status-codes-db-password-9f8e7d6c';
const gate = defineWorkflow({
  name: 'test.api-codes',
  input: z.object({ name: z.string() }),
  machine: setup({}).createMachine({
    initial: 'waiting',
    states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
  }),
});
/** Ends in its failure state with an error that quotes what it was given (as a test's output would). */
const quoting = defineWorkflow({
  name: 'test.api-codes-quoting',
  input: z.object({ said: z.string() }),
  failureStates: ['testsFailed'],
  machine: setup({ types: {} as { input: { said: string }; context: { said: string } } }).createMachine({
    context: ({ input }) => ({ said: input.said }),
    initial: 'testsFailed',
    states: { testsFailed: { type: 'final' } },
    output: ({ context }) => ({ error: { code: 'TESTS_FAILED', message: `1 failing: expected ${context.said}` } }),
  }),
});
let engine: Engine;
let server: Awaited<ReturnType<typeof startApiServer>>;

beforeAll(async () => {
  engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: [gate, quoting], logger: silentLogger });
  await engine.startWorker();
  server = await startApiServer(engine, TOKEN, [SECRET]);
});
afterAll(async () => {
  await server?.close();
  await engine?.stop();
});

async function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; error: string }> {
  const res = await fetch(new URL(path, server.url), {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'x-rmapp-request': '1', 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, error: (JSON.parse(text) as { error?: string }).error ?? text };
}

it('a request the run’s state refuses is a 409 naming the state; the engine throws a RunStateError', async () => {
  const id = await engine.start(gate, { name: 'a' });
  expect((await call('POST', `/api/runs/${id}/events`, { type: 'go' })).status, 'an event for a waiting run').toBe(202);
  expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');

  const event = await call('POST', `/api/runs/${id}/events`, { type: 'go' });
  expect(event, 'an event for a finished run').toEqual({
    status: 409,
    error: expect.stringMatching(/has already finished \(succeeded\); it accepts no more events/),
  });
  const retry = await call('POST', `/api/runs/${id}/retry`);
  expect(retry, 'a retry of a run that succeeded').toEqual({
    status: 409,
    error: expect.stringMatching(/is succeeded; only failed runs can be retried/),
  });

  // Programs see the same distinction: a RunStateError is a ValidationError (never retried), told apart.
  const thrown = await engine.send(id, { type: 'go' }).catch((err: unknown) => err);
  expect(thrown).toBeInstanceOf(RunStateError);
  expect(thrown).toBeInstanceOf(ValidationError);
  expect(thrown).toMatchObject({ code: 'VALIDATION', category: 'validation' });
});

it("a refusal quoting a run's error is masked like the run itself", async () => {
  // An adversarial pass: GET showed the error masked, the 409 of a retry quoted it whole.
  const id = await engine.start(quoting, { said: `PGPASSWORD=${SECRET}` });
  expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('failed');
  const retry = await call('POST', `/api/runs/${id}/retry`);
  expect(retry.status).toBe(409);
  expect(retry.error, 'the refusal quotes the error (otherwise this proves nothing)').toContain('1 failing: expected PGPASSWORD=');
  expect(retry.error, 'the secret in the refusal').not.toContain(SECRET);
});

it("a run's answer holds its newest 2,000 history entries and says how many there are; /history has them all", async () => {
  // An adversarial pass: 30,000 entries answered 5.4 MB, which the run page drew again on every change.
  const id = await engine.start(gate, { name: 'long' });
  await until(async () => (await engine.get(id)).status === 'waiting', 20_000, 'the run to wait');
  const db = await engine.db();
  await db.query(
    `insert into rmapp_run_history (run_id, worker, lease_epoch, events)
     select $1, 'test', 1, jsonb_build_array(jsonb_build_object('type', 'progress', 'data', jsonb_build_object('n', g))) from generate_series(1, 2500) g`,
    [id],
  );
  const answer = await fetch(new URL(`/api/runs/${id}`, server.url), { headers: { authorization: `Bearer ${TOKEN}` } }).then(
    (r) => r.json() as Promise<{ history: { type: string }[]; historyTotal: number }>,
  );
  expect(answer.history.length).toBe(2_000);
  expect(answer.historyTotal).toBeGreaterThan(2_500);
  const all = await fetch(new URL(`/api/runs/${id}/history`, server.url), { headers: { authorization: `Bearer ${TOKEN}` } }).then(
    (r) => r.json() as Promise<{ history: unknown[] }>,
  );
  expect(all.history.length).toBe(answer.historyTotal);
  await engine.send(id, { type: 'go' });
});

it('a malformed request is a 400 naming the field, and starts nothing', async () => {
  const before = (await engine.list({ workflow: 'test.api-codes', limit: 1000 })).length;
  const longKey = await call('POST', '/api/runs', { workflow: 'test.api-codes', input: { name: 'b' }, idempotencyKey: 'k'.repeat(1_001) });
  expect(longKey, 'an idempotency key over 1,000 bytes').toEqual({ status: 400, error: expect.stringMatching(/idempotencyKey/) });
  const id = await engine.start(gate, { name: 'c' });
  const artifact = await call('GET', `/api/runs/${id}/artifacts/${'n'.repeat(1_001)}`);
  expect(artifact, 'an artifact name over 1,000 bytes').toEqual({ status: 400, error: expect.stringMatching(/artifact name/i) });
  // The body to send names a workflow this server runs (the built-in example is not registered here).
  const noWorkflow = await call('POST', '/api/runs', { input: {} });
  expect(noWorkflow.status).toBe(400);
  expect(noWorkflow.error).toContain('send {"workflow":"test.api-codes"');
  expect(noWorkflow.error).not.toContain('example.order');
  expect((await engine.list({ workflow: 'test.api-codes', limit: 1000 })).length, 'runs after the refused start').toBe(before + 1);
  await engine.send(id, { type: 'go' });
});

it('a retry of a run deleted while it was being retried is a RunNotFoundError (404), not a conflict', async () => {
  const store = await openDatabase({ url: '', dataDir: 'memory://' });
  // The prune lands between the retry's read of the run and its rewind.
  const pruning: Database = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
      return async (text: string, params?: unknown[]) => {
        if (/update rmapp_runs set status = case when concurrency_key is not null and/.test(text)) {
          await target.query('delete from rmapp_run_history where run_id = $1', [params?.[0]]);
          await target.query('delete from rmapp_runs where id = $1', [params?.[0]]);
        }
        return target.query(text, params);
      };
    },
  });
  const failing = defineWorkflow({
    name: 'test.api-codes-fails',
    input: z.object({}),
    machine: setup({ actors: { boom: step(() => Promise.reject(new Error('boom')), { retry: { maxAttempts: 1 } }) } }).createMachine({
      initial: 'a',
      states: { a: { invoke: { src: 'boom', onDone: 'b' } }, b: { type: 'final' } },
    }),
  });
  const engine = createEngine({ database: pruning, workflows: [failing], logger: silentLogger });
  try {
    await engine.startWorker();
    const id = await engine.start(failing, {});
    expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('failed');
    await expect(engine.retry(id)).rejects.toBeInstanceOf(RunNotFoundError);
  } finally {
    await engine.stop();
    await store.close();
  }
});

it('HEAD is answered as GET is, without a body: the run list, a run, the dashboard page, the live stream', async () => {
  // An adversarial pass: HEAD /api/runs was a 404 (what a monitor or a link checker sends).
  const id = await engine.start(gate, { name: 'head' });
  for (const path of ['/api/runs', `/api/runs/${id}`, '/', '/api/stream', `/api/stream?run=${id}`]) {
    const get = await fetch(new URL(path, server.url), { headers: { authorization: `Bearer ${TOKEN}` } });
    const head = await fetch(new URL(path, server.url), { method: 'HEAD', headers: { authorization: `Bearer ${TOKEN}` } });
    expect([head.status, head.headers.get('content-type')], `HEAD ${path}`).toEqual([get.status, get.headers.get('content-type')]);
    expect(get.status, `GET ${path}`).toBe(200);
    await get.body?.cancel(); // the stream's never ends
    expect(await head.text(), `HEAD ${path}'s body`).toBe('');
  }
  expect((await fetch(new URL('/api/nothing', server.url), { method: 'HEAD', headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(
    404,
  );
});

it('a body holding a number JSON cannot keep exactly is a 400 naming it, and nothing is started', async () => {
  // An adversarial pass: {"id": 12345678901234567890123} was accepted and stored as 12345678901234567000000.
  const before = (await engine.list({ workflow: 'test.api-codes', limit: 500 })).length;
  const res = await call('POST', '/api/runs', JSON.parse('{"workflow":"test.api-codes","input":{"name":"n"}}'));
  expect(res.status, 'a body without one').toBe(201);
  const raw = await fetch(new URL('/api/runs', server.url), {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'x-rmapp-request': '1', 'content-type': 'application/json' },
    body: '{"workflow":"test.api-codes","input":{"name":"n","orderId":12345678901234567890123}}',
  });
  expect(raw.status).toBe(400);
  expect(((await raw.json()) as { error: string }).error).toMatch(
    /holds the number 12345678901234567890123, which JSON numbers cannot keep exactly/,
  );
  expect((await engine.list({ workflow: 'test.api-codes', limit: 500 })).length, 'runs').toBe(before + 1);
});

it('a body that is not valid UTF-8 is a 400 naming where, and nothing is started (its bytes were stored as U+FFFD)', async () => {
  const before = (await engine.list({ workflow: 'test.api-codes', limit: 500 })).length;
  const body = Buffer.concat([
    Buffer.from('{"workflow":"test.api-codes","input":{"name":"o'),
    Buffer.from([0xff, 0xfe]),
    Buffer.from('"}}'),
  ]);
  const res = await fetch(new URL('/api/runs', server.url), {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'x-rmapp-request': '1', 'content-type': 'application/json' },
    body,
  });
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: string }).error).toBe('The body is not valid UTF-8 (byte 47): JSON must be sent as UTF-8 text.');
  // Two-byte characters before the bad byte: a search by decodable prefixes drifted to byte 35.
  const accented = await fetch(new URL('/api/runs', server.url), {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'x-rmapp-request': '1', 'content-type': 'application/json' },
    body: Buffer.concat([
      Buffer.from('{"workflow":"test.api-codes","input":{"name":"'),
      Buffer.from('é'.repeat(10)),
      Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from('"}}'),
    ]),
  });
  expect(accented.status).toBe(400);
  expect(((await accented.json()) as { error: string }).error, 'a surrogate encoded in UTF-8 after ten é').toMatch(/\(byte 66\)/);
  expect((await engine.list({ workflow: 'test.api-codes', limit: 500 })).length, 'runs started').toBe(before);
});

it('a route asked with a method it does not take is a 405 naming the methods it takes (Allow), not a 404', async () => {
  // An adversarial pass: DELETE /api/runs answered 404 "No API route", as if the path were wrong.
  const id = await engine.start(gate, { name: 'methods' });
  const cases: [string, string, string][] = [
    ['DELETE', '/api/runs', 'GET, HEAD, POST'],
    ['PUT', `/api/runs/${id}`, 'GET, HEAD'],
    ['PATCH', `/api/runs/${id}/history`, 'GET, HEAD'],
    ['GET', `/api/runs/${id}/cancel`, 'POST'],
    ['GET', `/api/runs/${id}/events`, 'POST'],
    ['POST', '/api/workflows', 'GET, HEAD'],
    ['DELETE', `/api/runs/${id}/artifacts/a`, 'GET, HEAD'],
    // Segments are matched decoded, as the routes read them (a second pass: this was a 404).
    ['DELETE', `/api/runs/${id}/%68istory`, 'GET, HEAD'],
  ];
  for (const [method, path, allow] of cases) {
    const res = await fetch(new URL(path, server.url), { method, headers: { authorization: `Bearer ${TOKEN}`, 'x-rmapp-request': '1' } });
    expect([res.status, res.headers.get('allow')], `${method} ${path}`).toEqual([405, allow]);
    expect(((await res.json()) as { error: string }).error).toBe(`${path} does not take ${method}: use ${allow.replaceAll(', ', ' or ')}.`);
  }
  const unknown = await fetch(new URL(`/api/runs/${id}/nothing`, server.url), {
    method: 'DELETE',
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  expect(unknown.status, 'a path that is no route').toBe(404);
  await unknown.body?.cancel();
});
