/**
 * The egress proxy runs in the service's process, and each connection a sandboxed command opens to its
 * socket is a descriptor of the service's. A command with a network allowlist (a repository's tests with
 * one host in its `.github/rmapp.yml`) holding thousands of connections open — four processes of 6,000,
 * each under the descriptor limit the sandbox inherits — took the service to EMFILE: it could open no
 * file, socket or pipe (Postgres, git, webhooks) while the command ran. The proxy takes a bounded
 * number of connections at once.
 */
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEgressProxy } from '../src/rmapp/sandbox/egress-proxy.ts';

const dir = mkdtempSync(join(tmpdir(), 'sb-egress-connections-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HELD = 1_500;

/** Opens a connection and asks through it for a host the proxy refuses: true when the proxy answered. */
function answered(socket: string, held: Socket[]): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socket);
    held.push(s);
    let done = false;
    const end = (v: boolean) => {
      if (!done) resolve(v);
      done = true;
    };
    s.on('connect', () => s.write('GET http://refused.invalid/ HTTP/1.1\r\nHost: refused.invalid\r\n\r\n'));
    s.on('data', (d) => end(d.toString('latin1').startsWith('HTTP/1.1 403')));
    s.on('error', () => end(false));
    s.on('close', () => end(false));
  });
}

describe('the egress proxy holds a bounded number of connections of a sandboxed command', () => {
  it(`does not serve ${HELD} connections held open at once`, async () => {
    const socket = join(dir, 'egress.sock');
    const proxy = await startEgressProxy(socket, { allow: ['example.com'], allowPrivate: [] });
    const held: Socket[] = [];
    try {
      // In batches, as a command retrying would: the socket's backlog refuses a burst (EAGAIN) before the proxy sees it.
      const results: boolean[] = [];
      while (results.length < HELD) results.push(...(await Promise.all(Array.from({ length: 100 }, () => answered(socket, held)))));
      const served = results.filter(Boolean).length;
      expect(served, `egress-proxy.ts served ${served} connections held at once: each is a descriptor of the service's`).toBeLessThan(
        HELD / 2,
      );
      expect(served, 'the proxy still serves connections').toBeGreaterThan(0);
    } finally {
      for (const s of held) s.destroy();
      await proxy.close();
    }
  });
});
