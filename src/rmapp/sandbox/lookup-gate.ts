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
 * `resolve`, at most `max` calls in flight; the others wait their turn, in order. A caller whose
 * connection went meanwhile passes an aborted `signal`: it leaves the queue without a lookup.
 */
export function gateLookups(resolve: LookupAll, max: number): (name: string, signal?: AbortSignal) => Promise<LookupAddress[]> {
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  // A finished lookup hands its slot to the first caller waiting, if any: counted down and up again a
  // turn apart, a new caller could take it in between and one more would be in flight than allowed.
  const release = () => {
    const first = waiting.shift();
    if (first) first();
    else inFlight -= 1;
  };
  return async (name, signal) => {
    signal?.throwIfAborted();
    if (inFlight < max) inFlight += 1;
    else {
      await new Promise<void>((turn, gone) => {
        const take = () => {
          signal?.removeEventListener('abort', leave);
          turn();
        };
        const leave = () => {
          const i = waiting.indexOf(take);
          if (i !== -1) waiting.splice(i, 1);
          gone(signal?.reason);
        };
        waiting.push(take);
        signal?.addEventListener('abort', leave, { once: true });
      });
    }
    try {
      return await resolve(name);
    } finally {
      release();
    }
  };
}

/** The process's gate, shared by every egress proxy (one per sandboxed command). */
export const gatedLookup = gateLookups((name) => lookup(name, { all: true }), lookupsAtOnce());
