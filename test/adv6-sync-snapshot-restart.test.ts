/**
 * startActor (session-restore.ts) drops, for a restored run, the snapshot each synced child relays as
 * XState's start() hands it its own restored snapshot — and nothing else. A child given an event
 * during that start() which it ignores relays the very same snapshot object (XState relays the snapshot
 * after every event), and that relay is the event's: dropping every relay that carried a restored
 * snapshot lost it. Compared with XState's own restore minus exactly one start relay per synced child.
 */
import { expect, it } from 'vitest';
import { assign, createActor, createMachine, fromCallback, sendTo, setup } from 'xstate';
import { startActor } from '../src/state_machine/session-restore.ts';

type Ctx = { log: string[] };
/** One helper for both machines' actor sets. */
const note = (entry: string): any => assign({ log: ({ context }: { context: Ctx }) => [...context.log, entry] });

it("a synced child's relay for an event it ignored during a restored start reaches the parent", () => {
  // The callback re-runs on restore (XState's restore does so) and says hello at once; the parent
  // pings b, which ignores it and relays its (restored, unchanged) snapshot: hello is always followed by snap.
  const machine = setup({
    types: {} as { context: Ctx },
    actors: {
      cb: fromCallback(({ sendBack }) => void sendBack({ type: 'hello' })),
      b: createMachine({ initial: 'idle', states: { idle: {} } }),
    },
  }).createMachine({
    context: { log: [] },
    invoke: [
      { src: 'b', id: 'b', onSnapshot: { actions: note('snap') } },
      { src: 'cb', id: 'cb' },
    ],
    on: { hello: { actions: [note('hello'), sendTo('b', { type: 'ping' })] } },
  });
  const first = createActor(machine).start();
  expect(first.getSnapshot().context.log).toEqual(['snap', 'hello', 'snap']);
  const persisted = JSON.parse(JSON.stringify(first.getPersistedSnapshot())) as never;
  const restored = createActor(machine, { snapshot: persisted });
  startActor(restored, true);
  expect(restored.getSnapshot().context.log).toEqual(['snap', 'hello', 'snap', 'hello', 'snap']);
});

it('a synced callback that sends during its restored start still has its start relay dropped', () => {
  const machine = setup({
    types: {} as { context: Ctx },
    actors: { cb: fromCallback(({ sendBack }) => void sendBack({ type: 'hello' })) },
  }).createMachine({
    context: { log: [] },
    invoke: { src: 'cb', id: 'cb', onSnapshot: { actions: note('snap') } },
    on: { hello: { actions: note('hello') } },
  });
  const first = createActor(machine).start();
  const persisted = JSON.parse(JSON.stringify(first.getPersistedSnapshot())) as never;
  const restored = createActor(machine, { snapshot: persisted });
  startActor(restored, true);
  // XState's own restore adds 'hello' and 'snap'; the snap is the start relay of the restored snapshot.
  expect(restored.getSnapshot().context.log).toEqual([...first.getSnapshot().context.log, 'hello']);
});
