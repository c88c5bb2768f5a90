/**
 * The lookup gate (src/rmapp/sandbox/lookup-gate.ts) is fair across egress proxies: it was one queue for
 * the whole service, so one sandboxed command opening 256 connections to names whose resolver never
 * answers (each lookup held for the resolver's timeout, 10–20 s) kept both slots and queued ahead of every
 * other command's lookups: the next proxy's first lookup waited for all 256, about 40 minutes. Here the
 * resolver answers only when told; delays are counted in lookups answered, not in time.
 */
import { expect, it } from 'vitest';
import { gateLookups } from '../src/rmapp/sandbox/lookup-gate.ts';
import { heldResolver, turn } from './helpers/held-resolver.ts';

it.each([1, 2, 4])(
  "one proxy's flood of lookups delays another proxy's lookup by one of the flood's lookups at most (%i at once)",
  async (max) => {
    const r = heldResolver();
    const lookup = gateLookups(r.resolve, max);
    const flood = {};
    const other = {};
    const flooded = Array.from({ length: 40 }, (_, i) => lookup(`f${i}.flood.example`, undefined, flood));
    await turn();
    expect(r.asked, 'the flood takes the free slots').toHaveLength(max);
    for (let k = 0; k < 3; k++) {
      const mine = lookup(`x${k}.other.example`, undefined, other);
      await turn();
      expect(r.asked.at(-1), 'started while the flood held every slot').toMatch(/flood/);
      const before = r.asked.length;
      r.answer(r.held()[0] as string);
      await turn();
      expect(r.asked.slice(before), `started once one of the flood's lookups was answered (round ${k})`).toEqual([`x${k}.other.example`]);
      r.answer(`x${k}.other.example`);
      expect((await mine)[0]?.address).toBe('192.0.2.1');
      await turn();
      expect(r.asked.at(-1), 'the slot goes back to the flood once the other proxy waits no more').toMatch(/flood/);
    }
    for (let held = r.held(); held.length; held = r.held()) {
      for (const n of held) r.answer(n);
      await turn();
    }
    await Promise.all(flooded);
  },
);

it('serves the proxies waiting in turn, the one served least recently first', async () => {
  const r = heldResolver();
  const lookup = gateLookups(r.resolve, 1);
  const [a, b, c] = [{}, {}, {}];
  const all = [
    ...['a1', 'a2', 'a3'].map((n) => lookup(n, undefined, a)),
    ...['b1', 'b2'].map((n) => lookup(n, undefined, b)),
    lookup('c1', undefined, c),
  ];
  for (let i = 0; i < 6; i++) {
    await turn();
    r.answer(r.asked.at(-1) as string);
  }
  await Promise.all(all);
  expect(r.asked, 'the order the lookups ran in').toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
});

it('hands freed slots to the waiting proxy holding fewest: a newcomer grows to its fair share', async () => {
  const r = heldResolver();
  const lookup = gateLookups(r.resolve, 4);
  const [a, b] = [{}, {}];
  const all = [
    ...Array.from({ length: 10 }, (_, i) => lookup(`a${i}`, undefined, a)),
    ...['b0', 'b1', 'b2'].map((n) => lookup(n, undefined, b)),
  ];
  await turn();
  for (const n of ['a0', 'a1', 'a2']) {
    r.answer(n);
    await turn();
  }
  expect(r.asked.slice(4), 'started as three of the first proxy’s lookups were answered').toEqual(['b0', 'b1', 'a4']);
  for (let held = r.held(); held.length; held = r.held()) {
    for (const n of held) r.answer(n);
    await turn();
  }
  await Promise.all(all);
});
