/**
 * A port past 65535 in a network rule. `.github/rmapp.yml` took `sandbox: { network: ["8.8.8.8:99999"] }`
 * (five digits), and a test command that then asked the egress proxy for `CONNECT 8.8.8.8:99999` made
 * node's `connect` throw inside the proxy's promise handler: an unhandled rejection, which ends the
 * service's process (every run in flight with it). The proxy refuses such a port; the settings refuse
 * the rule.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRepositoryConfig } from '../src/rmapp/repository-config.ts';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';
import { removeTree } from '../src/rmapp/workspace-access.ts';

/** Asks the proxy (through the forwarder at 127.0.0.1:3128) for a CONNECT and prints its first line. */
const CLIENT = `
const s = require('node:net').connect(3128, '127.0.0.1', () => s.write('CONNECT 8.8.8.8:99999 HTTP/1.1\\r\\nHost: 8.8.8.8:99999\\r\\n\\r\\n'));
let got = '';
s.on('data', (d) => { got += d; if (got.includes('\\n')) { console.log('answer: ' + got.split('\\r\\n')[0]); process.exit(0); } });
s.on('error', (e) => { console.log('error: ' + e.message); process.exit(0); });
setTimeout(() => { console.log('no answer'); process.exit(0); }, 10000);
`;

describe('a network rule whose port is past 65535', () => {
  let workspace: string;
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => void rejections.push(reason);
  beforeAll(async () => {
    workspace = await mkdtemp(join(tmpdir(), 'rmapp-adv5-port-'));
    process.on('unhandledRejection', onRejection);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onRejection);
    await removeTree(workspace);
  });

  it('is refused by the egress proxy, which stays up (no unhandled rejection in the service)', async () => {
    const sandbox = createSandbox({ driver: 'bubblewrap' });
    // As a repository's rule reaches the sandbox (the settings no longer take it, see below).
    const r = await sandbox.run({
      argv: ['node', '-e', CLIENT],
      workspace,
      timeoutMs: 60_000,
      repositoryNetwork: ['8.8.8.8:99999'],
      fromRepository: true,
    });
    // Let a rejection of the proxy's handler surface before looking.
    await new Promise((ok) => setImmediate(ok));
    expect(
      rejections.map((e) => String((e as Error)?.message ?? e)),
      'the egress proxy threw on CONNECT 8.8.8.8:99999 (an unhandled rejection ends the service)',
    ).toEqual([]);
    expect(r.stdout, `the sandbox's client got: ${r.stdout}${r.stderr}`).toMatch(/^answer: HTTP\/1\.1 403/m);
  });

  it('is refused in .github/rmapp.yml, naming the key', () => {
    expect(() => parseRepositoryConfig('sandbox:\n  network: ["8.8.8.8:99999"]\n')).toThrow(/sandbox\.network[\s\S]*1 to 65535/);
    expect(() => parseRepositoryConfig('sandbox:\n  network: ["git.example.com:0"]\n')).toThrow(/1 to 65535/);
    expect(parseRepositoryConfig('sandbox:\n  network: ["git.example.com:65535"]\n').network).toEqual(['git.example.com:65535']);
  });
});
