/**
 * What the API answers about a run is what the database holds (masking aside). The masker's copy
 * (src/rmapp/masking.ts `value`), which every answer goes through, replaced whatever lay more than 32
 * objects deep in the answer with the text "[…]" — a run's input or an event's payload nested 30
 * levels, which the engine stores (it refuses past 256), came back cut — and dropped every key named
 * `__proto__` (assigned to a plain object, it set the copy's prototype instead of a property), so an
 * event `{"type":"go","__proto__":{…}}` showed in the run's signals without it.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpService, type HttpService } from './helpers/http-service.ts';
import { defineWorkflow, type Engine } from '../src/index.ts';
import { createMasker } from '../src/rmapp/masking.ts';

const machine = setup({}).createMachine({
  id: 'holder',
  initial: 'waiting',
  states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
});
const holder = defineWorkflow({ name: 'test.holder', machine, input: z.object({ doc: z.unknown() }) });

let service: HttpService;
let engine: Engine;

beforeAll(async () => {
  service = await startHttpService({ workflows: [holder], worker: true, server: { masker: createMasker(['a-configured-secret-value']) } });
  engine = service.engine;
});
afterAll(() => service?.close());

/** `{ "k": { "k": … value … } }`, `depth` objects deep. */
const nested = (depth: number, value: unknown): unknown => (depth === 0 ? value : { k: nested(depth - 1, value) });

const api = async (path: string, init?: RequestInit) => {
  const res = await fetch(`${service.url}/api${path}`, init);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};
const post = (path: string, body: unknown) =>
  api(path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-rmapp-request': '1' }, body: JSON.stringify(body) });

describe('the API answers what the database holds', () => {
  it('an input nested 200 levels deep (the engine takes 256) comes back whole', async () => {
    const doc = { deep: nested(200, 'the bottom'), also: nested(40, [1, 2, 3]) };
    const started = await post('/runs', { workflow: 'test.holder', input: { doc } });
    expect(started.status).toBe(201);
    const id = started.body.id as string;
    const stored = (await engine.db()).query<{ input: unknown }>('select input from rmapp_runs where id = $1', [id]);
    expect((await stored)[0]?.input).toEqual({ doc });
    const { body } = await api(`/runs/${encodeURIComponent(id)}`);
    expect(body.run.input).toEqual({ doc });
    expect(JSON.stringify(body)).not.toContain('[…]');
  });

  it('a key named __proto__, in an input and in an event, is answered as stored', async () => {
    // Built by JSON.parse, as a request body is: own properties named __proto__.
    const raw = '{"doc":{"list":[{"__proto__":{"x":1}}],"__proto__":"a string under it"}}';
    const started = await post('/runs', { workflow: 'test.holder', input: JSON.parse(raw) as unknown });
    expect(started.status).toBe(201);
    const id = started.body.id as string;
    const [row] = await (await engine.db()).query<{ input: string }>('select input::text as input from rmapp_runs where id = $1', [id]);
    expect(row?.input).toContain('__proto__');
    const shown = await api(`/runs/${encodeURIComponent(id)}`);
    expect(JSON.stringify(shown.body.run.input)).toBe(JSON.stringify(JSON.parse(row!.input)));

    const sent = await fetch(`${service.url}/api/runs/${encodeURIComponent(id)}/events?waitMs=5000`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-rmapp-request': '1' },
      body: '{"type":"go","__proto__":{"approvedBy":"someone"}}',
    });
    expect(sent.status).toBe(202);
    const history = await api(`/runs/${encodeURIComponent(id)}/history`);
    const received = (history.body.history as { type: string; data?: { event?: unknown } }[]).find((h) => h.type === 'signal.received');
    expect(JSON.stringify(received?.data?.event)).toBe('{"type":"go","__proto__":{"approvedBy":"someone"}}');
  });

  it('masking still masks: a configured secret and a secret-named key, deep down', async () => {
    const doc = nested(100, { note: 'has a-configured-secret-value in it', apiKey: 'sk-whatever-it-is' });
    const started = await post('/runs', { workflow: 'test.holder', input: { doc } });
    const { body } = await api(`/runs/${encodeURIComponent(started.body.id as string)}`);
    const text = JSON.stringify(body);
    expect(text).not.toContain('a-configured-secret-value');
    expect(text).not.toContain('sk-whatever-it-is');
    expect(text).toContain('has [REDACTED] in it');
  });
});
