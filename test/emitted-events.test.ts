/**
 * `emit(…)`: plain XState gives a machine's emitted events to `actor.on` listeners. A run's actor lives
 * in whichever worker executes it, where no caller can reach it: the engine's `run.emitted` hook gives
 * them, in XState's order, for the root machine — not for its children, whose events are their parent's.
 */
import { createActor, emit, setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, type Engine } from '../src/index.ts';

const child = setup({}).createMachine({ entry: emit({ type: 'child.hello' }), initial: 'idle', states: { idle: {} } });
const machine = setup({ actors: { child }, types: {} as { emitted: { type: string; at?: string; n?: number } } }).createMachine({
  id: 'emitter',
  context: { n: 0 },
  entry: emit({ type: 'started', at: 'entry' }),
  invoke: { src: 'child' },
  initial: 'waiting',
  states: {
    waiting: {
      on: {
        ping: { actions: [emit(({ event }) => ({ type: 'pong', n: (event as unknown as { n: number }).n })), emit({ type: 'again' })] },
        stop: 'done',
      },
    },
    done: { type: 'final', entry: emit({ type: 'finished' }) },
  },
});
const emitter = defineWorkflow({ name: 'emit.machine', machine, input: z.object({}) });

let engine: Engine;
beforeAll(async () => {
  engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: [emitter], pollMs: 20 });
  await engine.startWorker();
}, 60_000);
afterAll(() => engine?.stop({ graceMs: 100 }));

it('the root machine’s emitted events reach run.emitted as they reach actor.on in plain XState', async () => {
  const events = [{ type: 'ping', n: 1 }, { type: 'ping', n: 2 }, { type: 'stop' }];
  const plain: unknown[] = [];
  const actor = createActor(machine);
  actor.on('*', (e) => plain.push(e));
  actor.start();
  for (const e of events) actor.send(e as never);

  const heard: unknown[] = [];
  const off = engine.on('run.emitted', (e) => heard.push({ runId: e.runId, workflow: e.workflow, ...e.event }));
  const id = await engine.start(emitter, {});
  for (const e of events) await engine.send(id, e as never);
  expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
  off();
  expect(heard).toEqual(plain.map((e) => ({ runId: id, workflow: 'emit.machine', ...(e as object) })));
  expect(plain.map((e) => (e as { type: string }).type)).toEqual(['started', 'pong', 'again', 'pong', 'again', 'finished']);
});
