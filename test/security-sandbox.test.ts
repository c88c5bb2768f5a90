/**
 * The sandbox the agent and the repository's tests run in (src/rmapp/sandbox/), attacked from inside
 * with the real bubblewrap driver: the service's secrets in its environment, a host file, the
 * service's own directory, Postgres and a local HTTP service on the network, writes outside the
 * workspace, hooks planted in `.git`, a process that outlives its timeout, a memory hog, a fork bomb
 * and a flood of output. Each must find nothing, reach nothing, or be stopped.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { toErrorData } from '../src/index.ts';
import { runTests } from '../src/rmapp/agent-runner.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { createSandbox, type SandboxJob } from '../src/rmapp/sandbox/index.ts';
import { isSpecialAddress } from '../src/rmapp/sandbox/egress-proxy.ts';
import { writeWorkspaceFile, Workspaces } from '../src/rmapp/workspace.ts';
import { createBareRemote } from './helpers/git-remote.ts';
import { ROOT, until } from './helpers/processes.ts';

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

const sh = (script: string, job: Partial<SandboxJob> = {}, box = sandbox) =>
  box.run({ argv: ['sh', '-c', script], workspace, timeoutMs: 30_000, ...job });

it("a command finds none of the service's secrets: not in its environment, not in any process's, not in a host file or the service's directory", async () => {
  const r = await sh(
    `env; echo ---; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; echo ---; cat ${join(tmp, 'host-secret.txt')} ${join(ROOT, 'package.json')} /etc/shadow /root/.bash_history 2>&1; ls / /home /root /work 2>&1`,
  );
  const seen = r.stdout + r.stderr;
  for (const [name, value] of Object.entries(SECRETS)) expect(seen, `${name} reached the sandbox`).not.toContain(value);
  expect(seen, 'a host file reached the sandbox').not.toContain(HOST_SECRET);
  expect(seen, "the service's own directory is visible").not.toContain('"name": "rmapp"');
  expect(seen, "the service's working directory is named in an environment (PWD)").not.toContain(`PWD=${process.cwd()}`);
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
  const strict = createSandbox({ driver: 'bubblewrap', network: [`localhost:${webPort}`] });
  const refused = await sh(`${get('localhost')}; ${get('127.0.0.1')}`, {}, strict);
  expect(refused.stdout).not.toContain('reached the local service');
  expect(refused.stdout).toMatch(/localhost:\d+ refused: localhost resolves to a loopback/);
  expect(refused.stdout).toMatch(/127\.0\.0\.1:\d+ refused: 127\.0\.0\.1:\d+ is not on the sandbox's network allowlist/);
  const loose = createSandbox({ driver: 'bubblewrap', network: [`localhost:${webPort}`, 'localhost'], allowPrivateNetwork: true });
  const r = await sh(
    `${get('localhost')}; echo; ${get('127.0.0.1')}; echo; curl -s -S -m 5 --noproxy '' http://localhost:5432/ 2>&1; echo; curl -s -m 5 --noproxy '*' http://127.0.0.1:5432/ 2>&1; echo " [direct exit $?]"`,
    {},
    loose,
  );
  expect(r.stdout.match(/reached the local service/g), 'only the allowlisted name and port answer').toHaveLength(1);
  expect(r.stdout.indexOf('reached the local service'), 'the allowlisted name comes first').toBe(0);
  expect(r.stdout, 'a name not on the list').toMatch(/127\.0\.0\.1:\d+ is not on the sandbox's network allowlist/);
  expect(r.stdout, 'a port the list does not open').toMatch(/localhost:5432 is not on the sandbox's network allowlist/);
  expect(r.stdout).toMatch(/direct exit [1-9]/);
  // allowPrivateNetwork is for the operator's names only: a repository's `.github/rmapp.yml` adding
  // `localhost:<port>` (its tests' hosts) reached the local service — and Postgres — once it was on.
  const fromRepo = await runTests(
    {
      command: ['sh', '-c', get('localhost')],
      fromRepository: true,
      timeoutMs: 30_000,
      sandbox: createSandbox({ driver: 'bubblewrap', network: ['npm.internal.example'], allowPrivateNetwork: true }),
    },
    { cwd: workspace, repository: { network: [`localhost:${webPort}`] } },
  );
  expect(fromRepo.output, "a repository's name reached a loopback service").not.toContain('reached the local service');
  expect(fromRepo.output).toMatch(/localhost:\d+ refused: localhost resolves to a loopback.*not a repository's/);
  const fromAgent = await sh(
    get('localhost'),
    { network: [`localhost:${webPort}`] },
    createSandbox({
      driver: 'bubblewrap',
      allowPrivateNetwork: true,
    }),
  );
  expect(fromAgent.stdout, "the operator's agent.network name (a job's network) may be private").toContain('reached the local service');
  // Public addresses are not "special": an allowlisted public name is reachable (IPv4 was refused whole once).
  for (const a of ['1.1.1.1', '8.8.8.8', '2606:4700::1111']) expect(isSpecialAddress(a), a).toBe(false);
  for (const a of [
    '127.0.0.1',
    '10.1.2.3',
    '169.254.169.254',
    '::1',
    '::ffff:127.0.0.1',
    '::127.0.0.1',
    'fe80::1',
    'fd00::1',
    '2002:7f00:1::1',
    '0.0.0.0',
  ])
    expect(isSpecialAddress(a), a).toBe(true);
});

/** Host processes whose command line contains `token` (the sandbox's processes are visible in /proc here). */
function processesWith(token: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (cmdline.includes(token)) found.push(`${pid}: ${cmdline.replaceAll('\0', ' ')}`);
  }
  return found;
}

it('a timeout kills the whole tree: nothing the command started outlives it', async () => {
  const token = `late-${randomUUID()}`;
  const marker = join(workspace, `${token}.txt`);
  const err = await sh(`(sleep 2; echo late > ${token}.txt) & sleep 60`, { timeoutMs: 500 }).catch((e: unknown) => e);
  expect(toErrorData(err)).toMatchObject({ code: 'COMMAND_TIMEOUT', category: 'timeout' });
  // The shell and the subshell that would write the marker carry the token in their command line
  // (as does bwrap's). Rather than wait out the subshell's 2 s: wait until none of them is left, then
  // check that nothing was written. A survivor either stays (the wait fails, naming it) or writes the
  // marker before it exits (the check fails).
  await until(() => processesWith(token).length === 0, 10_000, "the killed command's processes to be gone").catch((e: Error) => {
    throw new Error(`${e.message}: a process survived the timeout:\n${processesWith(token).join('\n')}`);
  });
  expect(existsSync(marker), 'a background process survived the timeout').toBe(false);
});

it('memory, processes and output are bounded', async () => {
  const small = createSandbox({
    driver: 'bubblewrap',
    limits: { memoryBytes: 256 * 1024 ** 2, processes: 64, fileBytes: 1024 ** 2, outputBytes: 64 * 1024 },
  });
  const hog = await sh(
    `node -e "const a=[];for(let i=0;i<40;i++)a.push(Buffer.alloc(32*1024*1024,1));console.log('ALLOCATED')"`,
    {},
    small,
  );
  expect(hog.stdout, 'allocated 1.25 GiB under a 256 MiB limit').not.toContain('ALLOCATED');
  expect(hog.exitCode).not.toBe(0);
  const bomb = await sh(
    'n=0; for i in $(seq 1 300); do (sleep 5 &) 2>/dev/null || n=$((n+1)); done; echo "failed forks: $n"',
    { timeoutMs: 60_000 },
    small,
  );
  expect(Number(/failed forks: (\d+)/.exec(bomb.stdout)?.[1]), 'forks beyond the process limit').toBeGreaterThan(0);
  const flood = await sh('head -c 5000000 /dev/zero | tr "\\0" x; dd if=/dev/zero of=big.bin bs=1M count=4 2>&1', {}, small);
  expect(flood.stdout.length).toBeLessThanOrEqual(64 * 1024);
  expect(flood.stdout + flood.stderr).toMatch(/File too large|exceeded/i);
  // The private /tmp is memory: many small files must not get past the bound either.
  const tmpfill = await sh(
    'for i in $(seq 1 64); do head -c 500000 /dev/zero > /tmp/f$i || { echo "stopped at $i"; break; }; done',
    {},
    small,
  );
  expect(tmpfill.stdout, 'filled /tmp beyond its bound').toMatch(/stopped at \d+/);
});

it("the service's git never runs what the sandbox planted: a nested repository with a filter is refused", async () => {
  const remote = await createBareRemote(tmp, 'nested', { 'a.txt': 'a\n' });
  const workspaces = new Workspaces({ root: join(tmp, 'runs'), author: { name: 'rmapp', email: 'rmapp@example.com' } });
  const ws = await workspaces.prepare({ runId: 'nested-1', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  const pwned = join(tmp, 'filter-ran-on-host');
  // The agent makes sub/ a repository whose filter writes a file: inside the sandbox that file would be
  // in the sandbox's own /tmp; if the service's git ran it, it appears on the host.
  const plant = `mkdir sub && cd sub && git init -q && printf '* filter=evil\\n' > .gitattributes && git config filter.evil.clean 'touch ${pwned}; cat' && git config user.email a@b && git config user.name a && git add -A && git commit -qm x && echo change > f`;
  const r = await sandbox.run({ argv: ['sh', '-c', plant], workspace: ws.dir, timeoutMs: 30_000 });
  expect(r.exitCode, r.stderr).toBe(0);
  const err = await workspaces.commitAll(ws, 'rmapp: try').catch((e: unknown) => e);
  expect(toErrorData(err)).toMatchObject({ code: 'NESTED_REPOSITORY', category: 'permanent' });
  expect((err as Error).message).toContain('sub/.git');
  expect(existsSync(pwned), "the nested repository's filter ran outside the sandbox").toBe(false);
});

it('a file the service writes into the workspace never follows a symlink the sandbox put on its path', async () => {
  const ws = join(tmp, 'links');
  mkdirSync(ws);
  const target = join(tmp, 'host-target.txt');
  writeFileSync(target, 'untouched');
  await sh(`ln -s ${target} plan.yml; ln -s ${tmp} tasks`, { workspace: ws });
  await writeWorkspaceFile(ws, 'plan.yml', 'written\n');
  await writeWorkspaceFile(ws, 'tasks/issue-1.yml', 'written\n');
  expect(readFileSync(target, 'utf8'), 'a host file was written through a symlink').toBe('untouched');
  expect(existsSync(join(tmp, 'issue-1.yml')), 'a file was created outside the workspace').toBe(false);
  expect(readFileSync(join(ws, 'plan.yml'), 'utf8')).toBe('written\n');
  expect(readFileSync(join(ws, 'tasks/issue-1.yml'), 'utf8')).toBe('written\n');
});

it('a setuid or setgid file or a file capability the sandbox makes is not one on the host; workspaces are private to the service', async () => {
  const remote = await createBareRemote(tmp, 'setid', { 'a.txt': 'a\n' });
  const workspaces = new Workspaces({ root: join(tmp, 'setid-runs'), author: { name: 'rmapp', email: 'rmapp@example.com' } });
  const ws = await workspaces.prepare({ runId: 'setid-1', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  expect(statSync(ws.dir).mode & 0o777, 'another local user can reach the workspace').toBe(0o700);
  expect(statSync(join(tmp, 'setid-runs')).mode & 0o777, 'another local user can reach the workspaces').toBe(0o700);
  // Inside, the sandbox's user is the service's user: the bits are set (the mount is nosuid there only).
  const plant = `cp /bin/sh .suid-sh && chmod 6755 .suid-sh && mkdir -p deep/er && cp /bin/sh "deep/er/$(printf 'x\\377y')" && chmod 2755 deep/er/* && ls -l .suid-sh`;
  const r = await sandbox.run({ argv: ['sh', '-c', plant], workspace: ws.dir, timeoutMs: 30_000 });
  expect(r.exitCode, r.stderr).toBe(0);
  expect(r.stdout, 'the sandbox could not set the bit: the test proves nothing').toMatch(/^-rwsr-sr-x/);
  // Names as bytes: one is not UTF-8.
  const setIds: string[] = [];
  const walk = (dir: Buffer) => {
    for (const e of readdirSync(dir, { withFileTypes: true, encoding: 'buffer' })) {
      const path = Buffer.concat([dir, Buffer.from('/'), e.name]);
      if (e.isDirectory()) walk(path);
      else if (e.isFile() && statSync(path).mode & 0o6000) setIds.push(path.toString());
    }
  };
  walk(Buffer.from(ws.dir));
  expect(setIds, 'setuid/setgid files left in the workspace on the host').toEqual([]);
  expect(statSync(join(ws.dir, '.suid-sh')).mode & 0o777).toBe(0o755);

  // A second pass: a setuid file deeper than PATH_MAX (changed by its full name, it was skipped), a file
  // capability set from a user namespace of the command's own, and the workspace opened to everyone.
  const deep = `node -e "const fs = require('fs'); const d = 'd'.repeat(200); for (let i = 0; i < 25; i++) { fs.mkdirSync(d); process.chdir(d); } fs.copyFileSync('/bin/sh', 'deep'); fs.chmodSync('deep', 0o4755); console.log('deep-made')"`;
  const caps = `cp /bin/cat capcat; unshare -Ur /usr/sbin/setcap cap_dac_override+ep capcat && echo cap-set; chmod 755 /workspace`;
  const second = await sandbox.run({ argv: ['sh', '-c', `${deep}; ${caps}`], workspace: ws.dir, timeoutMs: 30_000 });
  expect(second.stdout, second.stderr).toContain('deep-made');
  expect(second.stdout, 'a user namespace inside the sandbox gave the command the capability to set file capabilities').not.toContain(
    'cap-set',
  );
  const left = await runCommand(['find', ws.dir, '-perm', '/6000', '-type', 'f'], {});
  expect(left.stdout, 'setuid/setgid files left deep in the workspace').toBe('');
  expect(statSync(join(tmp, 'setid-runs')).mode & 0o777, 'the workspaces root is open to other users').toBe(0o700);
  // A third: a folder closed to its owner (mode 0001 lets everyone else through), holding a setuid file.
  const closed = await sandbox.run({
    argv: ['sh', '-c', 'mkdir shut && cp /bin/sh shut/x && chmod 4755 shut/x && chmod 0001 shut && chmod 0711 /workspace && echo shut'],
    workspace: ws.dir,
    timeoutMs: 30_000,
  });
  expect(closed.stdout, closed.stderr).toContain('shut');
  expect(statSync(join(ws.dir, 'shut', 'x')).mode & 0o6000, 'a setuid file in a folder closed to its owner').toBe(0);
  expect(statSync(ws.dir).mode & 0o777, 'the sandbox opened its workspace to other users').toBe(0o700);
  // A tree deeper than PATH_MAX, and that folder, are removed with the workspace (Node's rm alone failed on both).
  await workspaces.remove(ws);
  expect(existsSync(ws.dir), 'the workspace was left behind').toBe(false);
});

it('a workspaces root given as a symlink is made private too', async () => {
  const real = join(tmp, 'real-root');
  mkdirSync(real, { mode: 0o755 });
  symlinkSync(real, join(tmp, 'linked-root'));
  const remote = await createBareRemote(tmp, 'linked', { 'a.txt': 'a\n' });
  const workspaces = new Workspaces({ root: join(tmp, 'linked-root'), author: { name: 'rmapp', email: 'rmapp@example.com' } });
  await workspaces.prepare({ runId: 'linked-1', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  expect(statSync(real).mode & 0o777, 'the folder behind the symlink is open to other users').toBe(0o700);
});
