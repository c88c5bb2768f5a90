/**
 * `engine.start`, `send`, `waitFor` and `list` refuse an option (or filter) name they do not know, as
 * `createEngine` does (option-names.ts): from JavaScript an unknown name was ignored. A start with
 * `{ idempotencyKye }` made a new run on every retry of the call; a send with `{ idempotencyKey }` — the
 * HTTP API's header name for a send's `dedupeKey` — applied the event once per retry; `waitFor` with
 * `{ timeout }` never timed out; `list({ statuss })` listed every run. Options that are no object (null)
 * threw a TypeError from inside the engine.
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, ValidationError, type Engine } from '../src/index.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

/** Waits for `approve` events, counting them, until `finish`. */
function approvals() {
  const machine = setup({
    types: {} as { context: { approvals: number }; events: { type: 'approve' } | { type: 'finish' } },
  }).createMachine({
    id: 'approvals',
    initial: 'open',
    context: { approvals: 0 },
    states: {
      open: { on: { approve: { actions: assign({ approvals: ({ context }) => context.approvals + 1 }) }, finish: 'closed' } },
      closed: { type: 'final' },
    },
    output: ({ context }) => ({ approvals: context.approvals }),
  });
  return defineWorkflow({ name: 'hi.approvals', machine, input: z.object({ orderId: z.string() }) });
}

/** Calls `fn`, which must refuse with a ValidationError; returns its message. */
async function refusal(what: string, fn: () => Promise<unknown>): Promise<string> {
  const err = await fn().then(
    (value) => new Error(`${what} was accepted (answered ${JSON.stringify(value)?.slice(0, 200)})`),
    (e: unknown) => e,
  );
  expect(err, `${what}: ${(err as Error).message}`).toBeInstanceOf(ValidationError);
  return (err as Error).message;
}

describe.each(['pglite', 'postgres'] as const)('unknown option names are refused (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  const workflow = approvals();
  let engine: Engine;
  beforeAll(async () => {
    engine = createEngine({ workflows: [workflow], database: await engineDatabaseFor(kind, cleanups) });
    await engine.startWorker();
  });
  afterAll(async () => {
    await engine?.stop();
    for (const c of cleanups.reverse()) await c();
  });

  it('start with a misspelt idempotency key starts no run, however often it is retried', async () => {
    const options = { idempotencyKye: 'order-A-1' } as unknown as { idempotencyKey: string };
    for (let call = 1; call <= 2; call++) {
      const message = await refusal(`start #${call} with { idempotencyKye }`, () => engine.start(workflow, { orderId: 'A-1' }, options));
      expect(message).toContain('"idempotencyKye" (did you mean "idempotencyKey"?)');
    }
    expect(await engine.list({ workflow: workflow.name, inputContains: { orderId: 'A-1' } }), 'runs the refused starts made').toEqual([]);
    const nul = await refusal('start with null options', () => engine.start(workflow, { orderId: 'A-1' }, null as never));
    expect(nul).toContain('options must be an object');
  });

  it('send with { idempotencyKey } (the HTTP header name) is refused, and delivers nothing', async () => {
    const id = await engine.start(workflow, { orderId: 'B-1' });
    const options = { idempotencyKey: 'approval-1' } as unknown as { dedupeKey: string };
    for (let call = 1; call <= 2; call++) {
      const message = await refusal(`send #${call} with { idempotencyKey }`, () => engine.send(id, { type: 'approve' }, options));
      expect(message).toContain('"idempotencyKey" (did you mean "dedupeKey"?)');
    }
    await engine.send(id, { type: 'finish' }, { buffer: true });
    const run = await engine.waitFor(id, { timeoutMs: 60_000 });
    expect(run.output, `run ${id}: approvals applied by the refused sends`).toEqual({ approvals: 0 });
  });

  it('waitFor with { timeout } and list with { statuss } are refused, not read as no limit and no filter', async () => {
    const id = await engine.start(workflow, { orderId: 'C-1' });
    await engine.send(id, { type: 'finish' }, { buffer: true });
    await engine.waitFor(id, { timeoutMs: 60_000 });
    const wait = await refusal('waitFor with { timeout }', () => engine.waitFor(id, { timeout: 1_000 } as never));
    expect(wait).toContain('"timeout" (did you mean "timeoutMs"?)');
    const list = await refusal('list with { statuss }', () => engine.list({ statuss: 'failed' } as never));
    expect(list).toContain('"statuss" (did you mean "status"?)');
  });
});
