/** A name resolver for the egress proxies' lookup gate (src/rmapp/sandbox/lookup-gate.ts) that tests answer by hand. */
import type { LookupAddress } from 'node:dns';

/** A resolver whose lookups answer only when `answer(name)` is called; `asked` lists the names it was asked, in order. */
export function heldResolver() {
  const held = new Map<string, (a: LookupAddress[]) => void>();
  const asked: string[] = [];
  return {
    asked,
    held: () => [...held.keys()],
    resolve: (name: string) =>
      new Promise<LookupAddress[]>((ok) => {
        asked.push(name);
        held.set(name, ok);
      }),
    answer(name: string) {
      held.get(name)?.([{ address: '192.0.2.1', family: 4 }]);
      held.delete(name);
    },
  };
}

/** One turn of the event loop: promise callbacks and I/O callbacks queued now have run. */
export const turn = () => new Promise((r) => setImmediate(r));
