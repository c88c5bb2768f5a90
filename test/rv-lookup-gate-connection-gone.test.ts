/**
 * A queued name lookup of the egress proxy leaves the gate (src/rmapp/sandbox/lookup-gate.ts) when the
 * connection that asked for it closes, not only when the proxy closes: otherwise a sandboxed command
 * opening and closing connections to names that never answer queues lookups without bound, and every
 * other command's lookups wait behind them.
 */
import type { LookupAddress } from 'node:dns';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { startEgressProxy, type EgressProxy } from '../src/rmapp/sandbox/egress-proxy.ts';
import { gateLookups } from '../src/rmapp/sandbox/lookup-gate.ts';

let proxy: EgressProxy | undefined;
let dir: string | undefined;
afterEach(async () => {
  await proxy?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Opens a CONNECT to `target` through the proxy's socket; `answer` resolves with what the proxy wrote back. */
function tunnel(path: string, target: string): { socket: Socket; sent: Promise<void>; answer: Promise<string> } {
  const socket = connect(path);
  const sent = new Promise<void>((ok) => socket.write(`CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`, () => ok()));
  let text = '';
  const answer = new Promise<string>((ok) => {
    socket.on('data', (d) => (text += d.toString()));
    socket.on('close', () => ok(text));
    socket.on('error', () => {});
  });
  return { socket, sent, answer };
}

it("a closed connection's queued lookup never runs", async () => {
  dir = mkdtempSync(join(tmpdir(), 'rv-gate-'));
  const asked: string[] = [];
  const held: ((a: LookupAddress[]) => void)[] = [];
  const lookup = gateLookups((name) => {
    asked.push(name);
    return new Promise<LookupAddress[]>((ok) => held.push(ok));
  }, 1);
  const path = join(dir, 'egress.sock');
  proxy = await startEgressProxy(path, { allow: ['first.example', 'second.example'], allowPrivate: [], lookup });
  const first = tunnel(path, 'first.example:443');
  await expect.poll(() => asked).toEqual(['first.example']);
  const second = tunnel(path, 'second.example:443');
  await second.sent;
  // A refused name is answered at once: by then the proxy has read the second connection's request
  // (and, below, seen it close).
  expect(await tunnel(path, 'elsewhere.example:443').answer).toContain('403');
  second.socket.destroy();
  await second.answer;
  expect(await tunnel(path, 'elsewhere.example:443').answer).toContain('403');
  (held[0] as (a: LookupAddress[]) => void)([]);
  expect(await first.answer).toContain('first.example does not resolve');
  expect(asked, 'the lookup of second.example, whose connection had closed, still ran').toEqual(['first.example']);
});
