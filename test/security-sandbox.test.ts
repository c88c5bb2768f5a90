/**
 * The sandbox the agent and the repository's tests run in (src/rmapp/sandbox/), attacked from inside
 * with the real bubblewrap driver: the service's secrets in its environment, a host file, the
 * service's own directory, Postgres and a local HTTP service on the network, writes outside the
 * workspace, hooks planted in `.git`, a process that outlives its timeout, a memory hog, a fork bomb
 * and a flood of output. Each must find nothing, reach nothing, or be stopped.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { toErrorData } from '../src/index.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { createSandbox, type SandboxJob } from '../src/rmapp/sandbox/index.ts';
import { ROOT } from './helpers/processes.ts';

const SECRETS = {
  GITHUB_TOKEN: `ghp_${'S3cr3t'.repeat(6)}`,
  GITHUB_WEBHOOK_SECRET: 'webhook-secret-for-sandbox-test',
  RMAPP_DASHBOARD_TOKEN: 'dashboard-token-for-sandbox-test',
  DATABASE_URL: 'postgres://svc:db-password-for-sandbox-test@127.0.0.1:5432/prod',
  ANTHROPIC_API_KEY: 'agent-key-only-for-the-agent',
};
const HOST_SECRET = 'HOST-FILE-SECRET-51c0';
let tmp: string;
let workspace: string;
let web: Server;
let webPort: number;
const sandbox = createSandbox({ driver: 'bubblewrap' });

beforeAll(async () => {
  Object.assign(process.env, SECRETS);
  tmp = mkdtempSync(join(tmpdir(), 'rmapp-sandbox-attack-'));
  writeFileSync(join(tmp, 'host-secret.txt'), HOST_SECRET);
  workspace = join(tmp, 'ws');
  mkdirSync(workspace);
  await runCommand(['git', 'init', '-q', workspace]);
  web = createServer((_req, res) => res.end('reached the local service'));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webPort = (web.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const k of Object.keys(SECRETS)) delete process.env[k];
  await new Promise((r) => web?.close(r));
});

const sh = (script: string, job: Partial<SandboxJob> = {}, box = sandbox) => box.run({ argv: ['sh', '-c', script], workspace, timeoutMs: 30_000, ...job });

it("a command finds none of the service's secrets: not in its environment, not in any process's, not in a host file or the service's directory", async () => {
  const r = await sh(
    `env; echo ---; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; echo ---; cat ${join(tmp, 'host-secret.txt')} ${join(ROOT, 'package.json')} /etc/shadow /root/.bash_history 2>&1; ls / /home /root /work 2>&1`,
  );
  const seen = r.stdout + r.stderr;
  for (const [name, value] of Object.entries(SECRETS)) expect(seen, `${name} reached the sandbox`).not.toContain(value);
  expect(seen, 'a host file reached the sandbox').not.toContain(HOST_SECRET);
  expect(seen, "the service's own directory is visible").not.toContain('"name": "rmapp"');
  expect(seen).toContain('PATH=/usr/local/bin:/usr/bin:/bin');
  expect(seen).toMatch(/No such file or directory/);
});

it('only names on an allowlist are passed, and never the service secrets even when listed', async () => {
  const agentish = await sh('echo "key=$ANTHROPIC_API_KEY"', { env: ['ANTHROPIC_API_KEY'] });
  expect(agentish.stdout).toContain(`key=${SECRETS.ANTHROPIC_API_KEY}`);
  await expect(sh('env', { env: ['GITHUB_TOKEN'] })).rejects.toThrow(/never receives GITHUB_TOKEN/);
});

it('writes land only in the workspace: the host is read-only, .git cannot get hooks or config, /tmp is private', async () => {
  const r = await sh(
    'echo ok > inside.txt; for f in /usr/evil /etc/evil /evil .git/hooks/post-checkout .git/config; do (echo x > $f) 2>/dev/null && echo "WROTE $f"; done; echo private > /tmp/mine; cat /tmp/mine',
  );
  expect(r.stdout).not.toMatch(/WROTE/);
  expect(r.stdout).toContain('private');
  expect(readFileSync(join(workspace, 'inside.txt'), 'utf8')).toBe('ok\n');
  expect(existsSync(join(workspace, '.git/hooks/post-checkout'))).toBe(false);
  expect(existsSync('/tmp/mine')).toBe(false);
  expect(existsSync('/etc/evil') || existsSync('/evil') || existsSync('/usr/evil'), 'a file was written on the host').toBe(false);
});

it('no network by default: not Postgres, not a local service, not DNS', async () => {
  const probe = `node -e "const n=require('net');for(const p of [5432,${webPort}]){const s=n.connect(p,'127.0.0.1');s.on('connect',()=>{console.log('CONNECTED '+p);process.exit(0)});s.on('error',e=>console.log('refused '+p+' '+e.code))};require('dns').lookup('registry.npmjs.org',e=>console.log('dns '+(e?e.code:'RESOLVED')))"`;
  const r = await sh(probe);
  expect(r.stdout).not.toContain('CONNECTED');
  expect(r.stdout).not.toContain('RESOLVED');
  expect(r.stdout).toMatch(/refused 5432/);
});

it('an allowlist reaches only its names through the egress proxy, and never a private address unless allowed', async () => {
  // `--noproxy ''`: through the proxy even for loopback names (NO_PROXY keeps the sandbox's own loopback direct).
  const get = (host: string) => `curl -s -S -m 5 --noproxy '' http://${host}:${webPort}/ 2>&1; echo " [exit $?]"`;
  const strict = createSandbox({ driver: 'bubblewrap', network: ['localhost'] });
  const refused = await sh(`${get('localhost')}; ${get('127.0.0.1')}`, {}, strict);
  expect(refused.stdout).not.toContain('reached the local service');
  expect(refused.stdout).toMatch(/localhost:\d+ refused: localhost resolves to a loopback/);
  expect(refused.stdout).toMatch(/127\.0\.0\.1:\d+ refused: 127\.0\.0\.1 is not on the sandbox's network allowlist/);
  const loose = createSandbox({ driver: 'bubblewrap', network: ['localhost'], allowPrivateNetwork: true });
  const r = await sh(`${get('localhost')}; echo; ${get('127.0.0.1')}; curl -s -m 5 --noproxy '*' http://127.0.0.1:5432/ 2>&1; echo " [direct exit $?]"`, {}, loose);
  const [viaName, viaIp] = r.stdout.split('\n');
  expect(viaName, 'the allowlisted name').toContain('reached the local service');
  expect(viaIp, 'a name not on the list').not.toContain('reached the local service');
  expect(r.stdout).toMatch(/direct exit [1-9]/);
});

it('a timeout kills the whole tree: nothing the command started outlives it', async () => {
  const marker = join(workspace, 'late.txt');
  const err = await sh(`(sleep 2; echo late > late.txt) & sleep 60`, { timeoutMs: 500 }).catch((e: unknown) => e);
  expect(toErrorData(err)).toMatchObject({ code: 'COMMAND_TIMEOUT', category: 'timeout' });
  await new Promise((r) => setTimeout(r, 3_000));
  expect(existsSync(marker), 'a background process survived the timeout').toBe(false);
});

it('memory, processes and output are bounded', async () => {
  const small = createSandbox({ driver: 'bubblewrap', limits: { memoryBytes: 256 * 1024 ** 2, processes: 64, fileBytes: 1024 ** 2, outputBytes: 64 * 1024 } });
  const hog = await sh(`node -e "const a=[];for(let i=0;i<40;i++)a.push(Buffer.alloc(32*1024*1024,1));console.log('ALLOCATED')"`, {}, small);
  expect(hog.stdout, 'allocated 1.25 GiB under a 256 MiB limit').not.toContain('ALLOCATED');
  expect(hog.exitCode).not.toBe(0);
  const bomb = await sh('n=0; for i in $(seq 1 300); do (sleep 5 &) 2>/dev/null || n=$((n+1)); done; echo "failed forks: $n"', { timeoutMs: 60_000 }, small);
  expect(Number(/failed forks: (\d+)/.exec(bomb.stdout)?.[1]), 'forks beyond the process limit').toBeGreaterThan(0);
  const flood = await sh('head -c 5000000 /dev/zero | tr "\\0" x; dd if=/dev/zero of=big.bin bs=1M count=4 2>&1', {}, small);
  expect(flood.stdout.length).toBeLessThanOrEqual(64 * 1024);
  expect(flood.stdout + flood.stderr).toMatch(/File too large|exceeded/i);
});
