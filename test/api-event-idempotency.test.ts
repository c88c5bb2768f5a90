/**
 * An event sent over the HTTP API again after a timeout or a dropped connection — the client cannot
 * know whether the first one arrived — is applied once when both carry the same `Idempotency-Key`
 * header (the engine's `dedupeKey`, the CLI's `--dedupe-key`). Without a way to say so, an HTTP client's
 * retry delivered the signal twice. A malformed key is a 400 naming the header, never a 5xx.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, silentLogger, type Engine } from '../src/index.ts';
import { startApiServer } from './helpers/api-server.ts';

const TOKEN = 'event-idempotency-dashboard-token-0123456789';
/** Counts `add` events until `done`. */
const counter = defineWorkflow({
  name: 'test.api-event-idempotency',
  input: z.object({}),
  machine: setup({ types: {} as { context: { n: number }; events: { type: 'add' } | { type: 'done' } } }).createMachine({
    context: { n: 0 },
    initial: 'counting',
    states: {
      counting: { on: { add: { actions: assign({ n: ({ context }) => context.n + 1 }) }, done: 'finished' } },
      finished: { type: 'final' },
    },
    output: ({ context }) => ({ n: context.n }),
  }),
});
let engine: Engine;
let server: Awaited<ReturnType<typeof startApiServer>>;

beforeAll(async () => {
  engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: [counter], logger: silentLogger });
  await engine.startWorker();
  server = await startApiServer(engine, TOKEN, []);
});
afterAll(async () => {
  await server?.close();
  await engine?.stop();
});

async function sendEvent(id: string, event: unknown, key?: string | string[]): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers = new Headers({ authorization: `Bearer ${TOKEN}`, 'x-rmapp-request': '1', 'content-type': 'application/json' });
  for (const k of typeof key === 'string' ? [key] : (key ?? [])) headers.append('idempotency-key', k);
  const res = await fetch(new URL(`/api/runs/${id}/events`, server.url), { method: 'POST', headers, body: JSON.stringify(event) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

it('an event sent twice with one Idempotency-Key is applied once; another key, or none, is another event', async () => {
  const id = await engine.start(counter, {});
  const first = await sendEvent(id, { type: 'add' }, 'add-0b6f1c');
  expect(first, 'the first send').toMatchObject({ status: 202, body: { delivered: true } });
  const again = await sendEvent(id, { type: 'add' }, 'add-0b6f1c');
  expect(again, 'the same key again (a client retrying after a timeout)').toEqual({
    status: 202,
    body: { delivered: false, outcome: 'duplicate' },
  });
  expect((await sendEvent(id, { type: 'add' }, 'add-77aa01')).body.delivered, 'another key').toBe(true);
  expect((await sendEvent(id, { type: 'add' })).body.delivered, 'no key').toBe(true);
  expect((await sendEvent(id, { type: 'done' }, 'done-1')).status).toBe(202);
  const run = await engine.waitFor(id, { timeoutMs: 20_000 });
  expect(run.status).toBe('succeeded');
  expect(run.output, 'three adds applied: the repeated one once').toEqual({ n: 3 });
});

it('a malformed Idempotency-Key is a 400 naming the header, and nothing is sent', async () => {
  const id = await engine.start(counter, {});
  const bad: [string, string | string[]][] = [
    ['empty', ''],
    ['over 200 characters', 'k'.repeat(201)],
    ['a control character', 'a\tb'],
    ['the header twice', ['one', 'two']],
    ['a comma (a list of keys)', 'one,two'],
  ];
  for (const [what, key] of bad) {
    const answer = await sendEvent(id, { type: 'add' }, key);
    expect(answer.status, what).toBe(400);
    expect(String(answer.body.error), what).toMatch(/Idempotency-Key/);
  }
  const reserved = await sendEvent(id, { type: 'add' }, 'rmapp.mine');
  expect(reserved.status, 'a key the engine reserves').toBe(400);
  expect(String(reserved.body.error), 'names the header, not the engine’s field').toMatch(
    /^the Idempotency-Key header: dedupeKey "rmapp.mine" is reserved/,
  );
  await sendEvent(id, { type: 'done' });
  const run = await engine.waitFor(id, { timeoutMs: 20_000 });
  expect(run.output, 'none of the refused events was applied').toEqual({ n: 0 });
});
