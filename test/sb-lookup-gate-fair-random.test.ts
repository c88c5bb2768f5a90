/**
 * The lookup gate's rules (src/rmapp/sandbox/lookup-gate.ts) under random interleavings of lookups of
 * several proxies (one of them flooding), answers, failures, resolvers that throw and aborts, a few
 * microtasks apart or more. Checked at every lookup the resolver is asked for:
 * - at most `max` in flight;
 * - a lookup starts on its call only when none waits; it never starts twice, nor once it was aborted;
 * - a freed slot goes to a waiting proxy holding no more lookups than any other waiting proxy;
 * - while a proxy's only lookup waits, each other proxy starts at most one.
 * Then every lookup asked for ran and settled with its answer, or left with its abort's reason, and the
 * gate is empty: `max` new lookups start at once.
 */
import type { LookupAddress } from 'node:dns';
import { expect, it } from 'vitest';
import { gateLookups } from '../src/rmapp/sandbox/lookup-gate.ts';

interface Call {
  name: string;
  owner: number;
  ctl: AbortController;
  /** waiting: asked for, not started; left: aborted while waiting; answered: told to answer, not yet settled. */
  state: 'waiting' | 'running' | 'answered' | 'left';
  settled: boolean;
  fails: boolean;
  /** The proxy had nothing else outstanding when this was asked for, and asked for nothing since. */
  solo: boolean;
  overtakenBy: Map<number, number>;
}

async function interleave(start: number, max: number): Promise<string[]> {
  let seed = start;
  // A fixed pseudo-random sequence, the same every run (mulberry32: 32-bit integer steps, exact in
  // JavaScript, where a 31-bit linear congruential step overflows a double's 53 bits).
  const random = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n);
  };
  const problems: string[] = [];
  const calls: Call[] = [];
  const byName = new Map<string, Call>();
  const held = new Map<string, { ok: (a: LookupAddress[]) => void; fail: (e: Error) => void }>();
  const owners = [{}, {}, {}, {}];
  let calling: Call | undefined;
  const count = (test: (c: Call) => boolean) => calls.reduce((n, c) => n + (test(c) ? 1 : 0), 0);
  const running = (o: number) => count((c) => c.owner === o && c.state === 'running');
  const holdingAtMost = (o: number) => count((c) => c.owner === o && (c.state === 'running' || (c.state === 'answered' && !c.settled)));

  const resolve = (name: string): Promise<LookupAddress[]> => {
    const c = byName.get(name) as Call;
    if (c.state !== 'waiting') problems.push(`${name} started while ${c.state}`);
    if (c.ctl.signal.aborted) problems.push(`${name} started after its abort`);
    const waiting = calls.filter((w) => w.state === 'waiting' && w !== c);
    if (calling === c && waiting.length) problems.push(`${name} started on its call while ${waiting[0]?.name} waited`);
    if (calling !== c) {
      for (const p of new Set(waiting.map((w) => w.owner)))
        if (p !== c.owner && running(c.owner) > holdingAtMost(p))
          problems.push(
            `${name} was handed a slot with ${running(c.owner)} of its proxy's in flight while proxy ${p} waited with ${holdingAtMost(p)}`,
          );
    }
    for (const w of waiting) {
      if (!w.solo || w.owner === c.owner) continue;
      const n = (w.overtakenBy.get(c.owner) ?? 0) + 1;
      w.overtakenBy.set(c.owner, n);
      if (n > 1) problems.push(`${name}: ${n} lookups of proxy ${c.owner} started while ${w.name}, its proxy's only one, waited`);
    }
    c.state = 'running';
    const inFlight = count((x) => x.state === 'running');
    if (inFlight > max) problems.push(`${inFlight} lookups in flight at ${name}`);
    if (name.startsWith('throw')) {
      c.state = 'answered';
      c.fails = true;
      throw new Error(`${name} threw`);
    }
    return new Promise((ok, fail) => held.set(name, { ok, fail }));
  };
  const lookup = gateLookups(resolve, max);

  const ask = (owner: number, preAborted: boolean) => {
    const name = `${random(10) === 0 ? 'throw' : 'n'}${calls.length}.p${owner}`;
    for (const w of calls) if (w.owner === owner) w.solo = false;
    const outstanding = calls.some((w) => w.owner === owner && !w.settled);
    const c: Call = {
      name,
      owner,
      ctl: new AbortController(),
      state: 'waiting',
      settled: false,
      fails: false,
      solo: !outstanding,
      overtakenBy: new Map(),
    };
    if (preAborted) c.ctl.abort(new Error(`${name} aborted`));
    calls.push(c);
    byName.set(name, c);
    calling = c;
    const result = lookup(name, c.ctl.signal, owners[owner]);
    calling = undefined;
    if (preAborted) c.state = 'left';
    result.then(
      (a) => {
        if (c.state !== 'answered' || c.fails || a[0]?.address !== '192.0.2.1')
          problems.push(`${name} settled with an answer while ${c.state}`);
        c.settled = true;
      },
      (e: Error) => {
        const expected = c.state === 'left' ? `${name} aborted` : c.state === 'answered' && c.fails ? `${name} threw` : '(none)';
        if (e.message !== expected) problems.push(`${name} failed with "${e.message}" while ${c.state}, expected "${expected}"`);
        c.settled = true;
      },
    );
  };
  const answer = (name: string, fails: boolean) => {
    const c = byName.get(name) as Call;
    c.state = 'answered';
    c.fails = fails;
    const h = held.get(name);
    held.delete(name);
    if (fails) h?.fail(new Error(`${name} threw`));
    else h?.ok([{ address: '192.0.2.1', family: 4 }]);
  };

  for (let step = 0; step < 600; step++) {
    const action = random(20);
    if (action < 9) ask(random(2) === 0 ? 0 : 1 + random(3), random(20) === 0);
    else if (action < 16) {
      const names = [...held.keys()];
      if (names.length) answer(names[random(names.length)] as string, random(5) === 0);
    } else {
      const live = calls.filter((c) => c.state === 'waiting' || c.state === 'running');
      const c = live[random(live.length)];
      if (c) {
        const wasWaiting = c.state === 'waiting';
        c.ctl.abort(new Error(`${c.name} aborted`));
        if (wasWaiting) c.state = 'left';
      }
    }
    if (random(20) === 0) await new Promise((r) => setImmediate(r));
    else for (let k = random(8); k > 0; k--) await Promise.resolve();
  }
  for (let rounds = 0; calls.some((c) => !c.settled); rounds++) {
    if (rounds > 10_000) {
      problems.push(`never settled: ${calls.filter((c) => !c.settled).map((c) => `${c.name} (${c.state})`)}`);
      break;
    }
    for (const name of [...held.keys()]) answer(name, false);
    await new Promise((r) => setImmediate(r));
  }
  // Empty again: `max` lookups of a new proxy start on their calls.
  const fresh = Array.from({ length: max }, (_, i) => {
    const c: Call = {
      name: `fresh${i}`,
      owner: 9,
      ctl: new AbortController(),
      state: 'waiting',
      settled: false,
      fails: false,
      solo: false,
      overtakenBy: new Map(),
    };
    calls.push(c);
    byName.set(c.name, c);
    calling = c;
    void lookup(c.name, undefined, {}).catch(() => {});
    calling = undefined;
    return c;
  });
  for (const c of fresh) if (c.state !== 'running') problems.push(`${c.name} did not start at once on an empty gate (${c.state})`);
  for (const name of [...held.keys()]) answer(name, false);
  return problems.slice(0, 5).map((p) => `seed ${start}, ${max} at once: ${p}`);
}

it('keeps the bound, the fair hand-over and every lookup accounted for, whatever the interleaving', async () => {
  const problems: string[] = [];
  for (const max of [1, 2, 3, 4]) for (let seed = 1; seed <= 12; seed++) problems.push(...(await interleave(seed * 7919, max)));
  expect(problems).toEqual([]);
});
