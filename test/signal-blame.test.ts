/**
 * The rule that names the signal a state that cannot be written came from (src/state_machine/signal-blame.ts):
 * only a signal that is all that changed the run since it was last known writable, and checks between two
 * writes bounded in bytes of snapshot (an adversarial pass: 100 checks of a 12 MB context held the worker 8 s).
 */
import { expect, it } from 'vitest';
import { MAX_CHECK_BYTES, SignalBlame } from '../src/state_machine/signal-blame.ts';

const refused = { name: 'E', message: 'too large', code: 'SIZE_LIMIT_EXCEEDED', category: 'permanent' as const };
const a = { id: 1, type: 'a' };
const b = { id: 2, type: 'b' };

it('names a signal only when it alone changed the run since the state was known writable', () => {
  const blame = new SignalBlame();
  blame.signalTaken(a, false);
  expect(blame.blame(refused).signal, 'a new session: its first state was never checked').toBeUndefined();
  blame.writable(true, 100);
  blame.signalTaken(a, false);
  expect(blame.blame(refused).signal).toEqual(a);
  blame.signalTaken(b, false);
  expect(blame.blame(refused).signal, 'two signals since').toBeUndefined();
  blame.writable(true, 100);
  blame.otherChange();
  blame.signalTaken(a, false);
  expect(blame.blame(refused).signal, 'a step or a timer changed the run too').toBeUndefined();
  expect(blame.checkBefore(), 'so the state is checked before the next signal').toBe(true);
});

it('checks after a signal only while the bytes checked since the last write stay within the budget', () => {
  const blame = new SignalBlame();
  const size = Math.floor(MAX_CHECK_BYTES / 3);
  blame.writable(true, size);
  const checked: boolean[] = [];
  for (let i = 0; i < 5; i++) {
    const check = blame.signalTaken({ id: i, type: 'x' }, true);
    checked.push(check);
    if (check) blame.writable(false, size);
  }
  expect(checked, 'a third of the budget each').toEqual([true, true, true, false, false]);
  blame.writable(true, size);
  expect(blame.signalTaken(a, true), 'a write starts the budget again').toBe(true);
  expect(blame.signalTaken(b, false), 'the last of a read is checked by the write').toBe(false);
});
