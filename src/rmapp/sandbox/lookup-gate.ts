/**
 * Name lookups of the egress proxies, a few at a time for the whole process. `dns.lookup` is
 * `getaddrinfo` on one of libuv's worker threads (4 by default, `UV_THREADPOOL_SIZE`), which the
 * service's asynchronous file reads and writes use too, and a lookup holds its thread until the resolver
 * gives up (seconds per name server). A repository's `.github/rmapp.yml` may allow a wildcard under a
 * domain whose name server never answers; its tests then hold up to 256 connections each naming a new
 * host (egress-proxy.ts `MAX_CONNECTIONS`), and every file operation of the service waited behind them.
 * With the gate, lookups never hold more than half the pool: the rest stays for the service.
 */
import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';

/** Resolves a name to all its addresses, as `dns.lookup(name, { all: true })`. */
export type LookupAll = (name: string) => Promise<LookupAddress[]>;

/**
 * The size of libuv's thread pool as libuv reads `UV_THREADPOOL_SIZE`: C's `atoi` into an unsigned
 * count, 0 made 1, capped at 1024; 4 when unset. `Number(value) || 4` read `abc` or an empty value as 4
 * (libuv: 1), `1e3` as 1000 (libuv: 1) and `5000` past the cap, so the gate allowed the whole pool or
 * more (test/rv-lookup-gate-pool-size.test.ts).
 */
export function threadPoolSize(value = process.env.UV_THREADPOOL_SIZE): number {
  if (value === undefined) return 4;
  const n = /^[\t\n\v\f\r ]*([+-]?\d+)/.exec(value)?.[1];
  const parsed = n === undefined ? 0 : Number(n);
  if (parsed === 0) return 1;
  // A negative count wraps round to a huge unsigned one: the cap.
  return parsed < 0 || parsed > 1024 ? 1024 : parsed;
}

/** Half of libuv's thread pool, at least one. */
export function lookupsAtOnce(poolSize = threadPoolSize()): number {
  return Math.max(1, Math.floor(poolSize / 2));
}

/**
 * A gated lookup: `name` resolved once the gate gives it a slot. `signal` aborted while it waits (its
 * connection or proxy closed): it leaves the queue, rejected with the signal's reason, and never runs.
 * `proxy` names the asker the gate is fair between, any object (an egress proxy passes one of its own);
 * callers that name none are one asker together.
 */
export type GatedLookup = (name: string, signal?: AbortSignal, proxy?: object) => Promise<LookupAddress[]>;

/** What the gate knows of one asker: its lookups in flight and waiting, and when it last started one. */
interface Asker {
  running: number;
  waiting: (() => void)[];
  lastStarted: number;
}

/**
 * `resolve`, at most `max` calls in flight, fair between askers (egress proxies). A caller finding a
 * slot free starts at once (only when none waits); the others wait. A finished lookup hands its slot
 * over at once to the waiting asker holding the fewest slots, among those the one that started a lookup
 * least recently (one that never started any, first), and each asker's own lookups in the order asked. One queue for the
 * whole process let one sandboxed command's 256 connections to names that never answer hold every slot
 * and queue ahead of every other command, whose first lookup waited for all of them (about 40 minutes at
 * 20 s each). Now a proxy waits for at most one lookup of another proxy holding the slots before its
 * own starts, then keeps its share: a freed slot goes to it while it holds fewer than the others
 * (test/sb-lookup-gate-fair.test.ts, test/sb-lookup-gate-fair-random.test.ts). An asker alone may take
 * every slot: lookups of commands that answer take milliseconds.
 */
export function gateLookups(resolve: LookupAll, max: number): GatedLookup {
  let inFlight = 0;
  let starts = 0;
  // Per asker, kept by the asker object itself: nothing here outlives a proxy.
  const askers = new WeakMap<object, Asker>();
  // The askers with lookups waiting, in the order they began to wait.
  const queued: Asker[] = [];
  const anyone = {};

  const start = (asker: Asker, name: string, ok: (a: LookupAddress[]) => void, fail: (e: unknown) => void) => {
    asker.running += 1;
    asker.lastStarted = ++starts;
    let answer: Promise<LookupAddress[]>;
    try {
      answer = Promise.resolve(resolve(name));
    } catch (err) {
      answer = Promise.reject(err);
    }
    // The slot is free before the caller hears: its next lookup queues behind those waiting.
    answer.finally(() => release(asker)).then(ok, fail);
  };
  // Handed over in the same turn as freed, and the next lookup started there: counted down and up a turn
  // apart, a new caller could take the slot in between, or an abort come between hand-over and start.
  const release = (asker: Asker) => {
    asker.running -= 1;
    let next: Asker | undefined;
    for (const a of queued)
      if (!next || a.running < next.running || (a.running === next.running && a.lastStarted < next.lastStarted)) next = a;
    if (!next) {
      inFlight -= 1;
      return;
    }
    const take = next.waiting.shift() as () => void;
    if (!next.waiting.length) queued.splice(queued.indexOf(next), 1);
    take();
  };

  return (name, signal, proxy = anyone) =>
    new Promise<LookupAddress[]>((ok, fail) => {
      if (signal?.aborted) return fail(signal.reason);
      let asker = askers.get(proxy);
      if (!asker) askers.set(proxy, (asker = { running: 0, waiting: [], lastStarted: 0 }));
      // A free slot means none waits: a slot freed while some wait is handed over.
      if (inFlight < max) {
        inFlight += 1;
        return start(asker, name, ok, fail);
      }
      const me = asker;
      const take = () => {
        signal?.removeEventListener('abort', leave);
        start(me, name, ok, fail);
      };
      const leave = () => {
        const i = me.waiting.indexOf(take);
        if (i !== -1) me.waiting.splice(i, 1);
        const q = queued.indexOf(me);
        if (!me.waiting.length && q !== -1) queued.splice(q, 1);
        fail(signal?.reason);
      };
      if (!me.waiting.length) queued.push(me);
      me.waiting.push(take);
      signal?.addEventListener('abort', leave, { once: true });
    });
}

/** The process's gate, shared by every egress proxy (one per sandboxed command). */
export const gatedLookup: GatedLookup = gateLookups((name) => lookup(name, { all: true }), lookupsAtOnce());
