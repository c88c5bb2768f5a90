/**
 * The HTTP API's answers to requests the engine refuses: a request the run's state refuses (an event
 * for a finished run, a retry of a run that did not fail) is a 409 Conflict; a malformed one (a key or
 * an artifact name no run can have) is a 400; neither is a 5xx, and each names what is wrong.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, RunStateError, silentLogger, ValidationError, type Engine } from '../src/index.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { startServiceServer } from '../src/rmapp/server/http-server.ts';

const TOKEN = 'status-codes-dashboard-token-0123456789';
const gate = defineWorkflow({
  name: 'test.api-codes',
  input: z.object({ name: z.string() }),
  machine: setup({}).createMachine({
    initial: 'waiting',
    states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
  }),
});
let engine: Engine;
let server: Awaited<ReturnType<typeof startServiceServer>>;

beforeAll(async () => {
  engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: [gate], logger: silentLogger });
  await engine.startWorker();
  server = await startServiceServer({
    engine,
    log: createLogger({ level: 'silent' }),
    host: '127.0.0.1',
    port: 0,
    dashboardToken: TOKEN,
    webhook: null,
  });
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

it('a malformed request is a 400 naming the field, and starts nothing', async () => {
  const before = (await engine.list({ workflow: 'test.api-codes', limit: 1000 })).length;
  const longKey = await call('POST', '/api/runs', { workflow: 'test.api-codes', input: { name: 'b' }, idempotencyKey: 'k'.repeat(1_001) });
  expect(longKey, 'an idempotency key over 1,000 bytes').toEqual({ status: 400, error: expect.stringMatching(/idempotencyKey/) });
  const id = await engine.start(gate, { name: 'c' });
  const artifact = await call('GET', `/api/runs/${id}/artifacts/${'n'.repeat(1_001)}`);
  expect(artifact, 'an artifact name over 1,000 bytes').toEqual({ status: 400, error: expect.stringMatching(/artifact name/i) });
  expect((await engine.list({ workflow: 'test.api-codes', limit: 1000 })).length, 'runs after the refused start').toBe(before + 1);
  await engine.send(id, { type: 'go' });
});
