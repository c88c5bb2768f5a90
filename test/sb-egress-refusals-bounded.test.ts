/**
 * The egress proxy runs in the service's process and noted every refused request (`refused`), its
 * host name twice, for as long as the sandboxed command ran. A command — a repository's tests, with one
 * host in its `.github/rmapp.yml`, or an agent told to — sending refused requests to names of ~7,000
 * characters over one keep-alive connection grew the service's memory by ~35 MB a second, past the
 * sandbox's memory limit, which bounds the command and not the service (measured: 100,000 refusals in
 * 23 s, 790 MB). What the proxy keeps of its refusals is bounded whatever the command sends.
 */
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEgressProxy } from '../src/rmapp/sandbox/egress-proxy.ts';

const dir = mkdtempSync(join(tmpdir(), 'sb-egress-refusals-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Sends `count` absolute-form requests for `host` on one connection; resolves with the number of 403 answers. */
function refusedRequests(socket: string, host: string, count: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    const request = `GET http://${host}/ HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
    let answered = 0;
    let tail = '';
    s.on('data', (d) => {
      const text = tail + d.toString('latin1');
      answered += text.split('HTTP/1.1 403').length - 1;
      tail = text.slice(-16);
      if (answered >= count) s.end();
    });
    s.on('close', () => resolve(answered));
    s.on('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < count) {
        sent += 1;
        if (!s.write(request)) return void s.once('drain', pump);
      }
    };
    s.on('connect', pump);
  });
}

describe('the egress proxy keeps a bounded record of what it refused', () => {
  it('holds little of 2,000 refused requests for long host names', async () => {
    const socket = join(dir, 'egress.sock');
    const proxy = await startEgressProxy(socket, { allow: ['example.com'], allowPrivate: [] });
    try {
      const answered = await refusedRequests(socket, `${'h'.repeat(7_000)}.invalid`, 2_000);
      expect(answered).toBe(2_000);
      const kept = proxy.refused.reduce((sum, r) => sum + r.length, 0);
      // Unbounded, this was ~28 million characters (2,000 × the name twice).
      expect(kept, `egress-proxy.ts kept ${proxy.refused.length} refusals, ${kept} characters, in the service's memory`).toBeLessThan(
        256 * 1024,
      );
      // What is kept still says what was refused.
      expect(proxy.refused[0]).toMatch(/^hhhh.*not on the sandbox's network allowlist/);
    } finally {
      await proxy.close();
    }
  });
});
