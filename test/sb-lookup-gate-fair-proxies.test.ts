/**
 * Two egress proxies sharing one lookup gate (src/rmapp/sandbox/lookup-gate.ts), as two sandboxed
 * commands of the service do: one command's connections to names whose resolver never answers hold the
 * gate's slots, and the other command's lookup starts as soon as one of them is answered, not after all
 * of them. Each proxy names itself to the gate; without that the gate saw one asker and served the flood
 * first. The resolver answers only when told.
 */
import type { LookupAddress } from 'node:dns';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { startEgressProxy, type EgressProxy } from '../src/rmapp/sandbox/egress-proxy.ts';
import { gateLookups, type GatedLookup } from '../src/rmapp/sandbox/lookup-gate.ts';

const proxies: EgressProxy[] = [];
const sockets: Socket[] = [];
let dir: string | undefined;
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Opens a CONNECT to `target` through the proxy's socket; `answer` resolves with what the proxy wrote back. */
function tunnel(path: string, target: string): Promise<string> {
  const socket = connect(path);
  sockets.push(socket);
  socket.write(`CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`);
  let text = '';
  return new Promise<string>((ok) => {
    socket.on('data', (d) => (text += d.toString()));
    socket.on('close', () => ok(text));
    socket.on('error', () => {});
  });
}

it.each([1, 2])("another command's lookup waits for one of a flooding command's lookups at most (%i at once)", async (max) => {
  dir = mkdtempSync(join(tmpdir(), 'sb-fair-'));
  const asked: string[] = [];
  const held: ((a: LookupAddress[]) => void)[] = [];
  const gate = gateLookups((name) => {
    asked.push(name);
    return new Promise<LookupAddress[]>((ok) => held.push(ok));
  }, max);
  // Which lookups each proxy asked the gate for, started or waiting.
  const called: string[] = [];
  const lookup: GatedLookup = (name, signal, proxy) => {
    called.push(name);
    return gate(name, signal, proxy);
  };
  const flood = join(dir, 'flood.sock');
  const other = join(dir, 'other.sock');
  proxies.push(await startEgressProxy(flood, { allow: ['*.flood.example'], allowPrivate: [], lookup }));
  proxies.push(await startEgressProxy(other, { allow: ['other.example'], allowPrivate: [], lookup }));
  const floods = new Map(Array.from({ length: 12 }, (_, i) => [`f${i}.flood.example`, tunnel(flood, `f${i}.flood.example:443`)]));
  await expect.poll(() => called.length).toBe(12);
  expect(asked, 'started: the flood holds every slot').toHaveLength(max);
  const mine = tunnel(other, 'other.example:443');
  await expect.poll(() => called.includes('other.example')).toBe(true);
  expect(asked, 'started while the flood holds every slot').toHaveLength(max);
  const firstFlood = asked[0] as string;
  (held[0] as (a: LookupAddress[]) => void)([]);
  await expect.poll(() => asked.length).toBe(max + 1);
  expect(asked[max], `started once ${firstFlood} was answered`).toBe('other.example');
  (held[max] as (a: LookupAddress[]) => void)([]);
  expect(await mine).toContain('other.example does not resolve');
  expect(await floods.get(firstFlood)).toContain(`${firstFlood} does not resolve`);
});
