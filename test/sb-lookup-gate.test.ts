/**
 * The egress proxies' name lookups (src/rmapp/sandbox/lookup-gate.ts): `dns.lookup` holds one of libuv's
 * four worker threads until the resolver answers or gives up, and the service's file operations wait for
 * the same threads. A repository allowing a wildcard under a domain whose name server never answers could
 * have its tests hold hundreds of lookups at once. Here the resolver is a stand-in that answers only when
 * told, so a lookup can be held for as long as the test likes (this machine's DNS fails at once).
 */
import { expect, it } from 'vitest';
import { gateLookups, lookupsAtOnce } from '../src/rmapp/sandbox/lookup-gate.ts';
import { heldResolver, turn } from './helpers/held-resolver.ts';

it('takes half the thread pool, at least one', () => {
  expect([1, 2, 3, 4, 8, 128].map((n) => lookupsAtOnce(n))).toEqual([1, 1, 1, 2, 4, 64]);
});

it('never has more lookups in flight than allowed, and starts the waiting ones in order as others end', async () => {
  const r = heldResolver();
  const lookup = gateLookups(r.resolve, 2);
  const names = Array.from({ length: 8 }, (_, i) => `h${i}.example`);
  const results = names.map((n) => lookup(n));
  await turn();
  expect(r.asked, 'lookups started while two are held').toEqual(['h0.example', 'h1.example']);
  r.answer('h1.example');
  // The freed slot goes to the first waiting: a new call made at the same moment waits behind it.
  const late = lookup('late.example');
  await turn();
  expect(r.asked).toEqual(['h0.example', 'h1.example', 'h2.example']);
  for (const n of [...names, 'late.example']) {
    r.answer(n);
    await turn();
  }
  expect(r.asked, 'every lookup made once, in the order asked').toEqual([...names, 'late.example']);
  for (const res of [...results, late]) expect((await res)[0]?.address).toBe('192.0.2.1');
});

it('lets a waiting lookup whose proxy closed leave the queue without being made', async () => {
  const r = heldResolver();
  const lookup = gateLookups(r.resolve, 1);
  const first = lookup('a.example');
  const closing = new AbortController();
  const gone = lookup('b.example', closing.signal);
  const after = lookup('c.example');
  await turn();
  closing.abort(new Error('proxy closed'));
  await expect(gone, 'the waiting lookup of the closed proxy').rejects.toThrow('proxy closed');
  r.answer('a.example');
  await turn();
  r.answer('c.example');
  await first;
  await after;
  expect(r.asked, 'the lookup of the closed proxy was never made').toEqual(['a.example', 'c.example']);
  await expect(lookup('d.example', closing.signal), 'a lookup asked after the close').rejects.toThrow('proxy closed');
});

it('holds the bound whatever the order of calls and answers, a microtask apart or more', async () => {
  // A fixed pseudo-random sequence, the same every run (mulberry32: 32-bit integer steps, exact in
  // JavaScript). The 31-bit linear congruential step it replaces overflowed a double's 53 bits, and the
  // low bits `% n` took stuck: of 2000 steps 10 answered a lookup, and the gaps were 0 or 1 microtask.
  let seed = 12345;
  const random = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n);
  };
  const r = heldResolver();
  const lookup = gateLookups(r.resolve, 2);
  const pending: Promise<unknown>[] = [];
  let most = 0;
  for (let i = 0; i < 2000; i++) {
    if (random(2) === 0) pending.push(lookup(`n${i}.example`));
    else {
      const held = r.held();
      if (held.length) r.answer(held[random(held.length)] as string);
    }
    for (let k = random(8); k > 0; k--) await Promise.resolve();
    most = Math.max(most, r.held().length);
  }
  for (let held = r.held(); held.length || r.asked.length < pending.length; held = r.held()) {
    for (const n of held) r.answer(n);
    await turn();
  }
  await Promise.all(pending);
  expect(most, 'lookups in flight at once, at most').toBeLessThanOrEqual(2);
  expect(r.asked.length, 'every lookup made once').toBe(pending.length);
});
