/**
 * `Idempotency-Key` on `POST /api/runs/:id/events` reused for another event: nothing is sent and the
 * client is told (422), as Stripe answers a key reused with another body. It was answered 202
 * `duplicate`, so the client believed its second event delivered when the run never saw it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow } from '../src/index.ts';
import { startHttpService, type HttpService } from './helpers/http-service.ts';

const machine = setup({
  types: {} as { context: { total: number }; events: { type: 'add'; by: number } | { type: 'stop' } },
}).createMachine({
  id: 'adds',
  initial: 'open',
  context: { total: 0 },
  output: ({ context }) => context,
  states: {
    open: { on: { add: { actions: assign({ total: ({ context, event }) => context.total + event.by }) }, stop: 'done' } },
    done: { type: 'final' },
  },
});
const adds = defineWorkflow({ name: 'test.adds', machine, input: z.object({}) });

let svc: HttpService;
beforeAll(async () => {
  svc = await startHttpService({ workflows: [adds], worker: true });
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

const headers = { 'x-rmapp-request': '1', 'content-type': 'application/json' };
async function postEvent(id: string, key: string, body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${svc.url}/api/runs/${id}/events`, { method: 'POST', headers: { ...headers, 'idempotency-key': key }, body });
  return { status: res.status, text: await res.text() };
}

it('a key sent again with another event is a 422 and sends nothing; with the same event (keys in any order) a duplicate', async () => {
  const id = await svc.engine.start('test.adds', {});
  // The same key twenty times at once: one delivered.
  const racing = await Promise.all(Array.from({ length: 20 }, () => postEvent(id, 'add-1', '{"type":"add","by":1}')));
  expect(racing.map((r) => r.status)).toEqual(Array(20).fill(202));
  expect(racing.filter((r) => JSON.parse(r.text).delivered === true)).toHaveLength(1);

  const reused = await postEvent(id, 'add-1', '{"type":"add","by":100}');
  expect(reused.status).toBe(422);
  expect(JSON.parse(reused.text).error).toMatch(/Idempotency-Key "add-1" was already used for another event/);
  const again = await postEvent(id, 'add-1', '{ "by": 1.0, "type": "add" }');
  expect(again).toEqual({ status: 202, text: '{"delivered":false,"outcome":"duplicate"}' });

  expect((await postEvent(id, 'stop-1', '{"type":"stop"}')).status).toBe(202);
  const run = await svc.engine.waitFor(id, { timeoutMs: 30_000 });
  expect(run.status).toBe('succeeded');
  expect(run.output).toEqual({ total: 1 });

  // Finished: the same event again is the duplicate it is; another under a taken key, a 422 still.
  expect(await postEvent(id, 'stop-1', '{"type":"stop"}')).toEqual({ status: 202, text: '{"delivered":false,"outcome":"duplicate"}' });
  expect((await postEvent(id, 'stop-1', '{"type":"add","by":2}')).status).toBe(422);
}, 60_000);
