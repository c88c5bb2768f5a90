/**
 * Which git failures a step retries (src/rmapp/git-failures.ts `gitFailureIsTransient`), judged on what real
 * git prints: a push whose remote hung up mid-transfer (GitHub may even have received it) and HTTP 5xx are
 * worth another attempt; a refused or rejected push, HTTP 401/403/404 and bad refs are not. A push
 * GitHub received but git reported failed used to fail the run for good ("the remote end hung up").
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { gitFailureIsTransient } from '../src/rmapp/workspace.ts';

const dir = mkdtempSync(join(tmpdir(), 'rmapp-git-failures-'));
const work = join(dir, 'work');
const bare = join(dir, 'remote.git');
const env = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' };

/** Runs git (asynchronously: the HTTP remote below answers in this process). */
function git(args: string[], cwd = work): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile('git', args, { cwd, env, encoding: 'utf8', timeout: 20_000 }, (err, _stdout, stderr) =>
      resolve({ status: err ? ((err as { code?: unknown }).code as number | null) : 0, stderr }),
    );
  });
}

/** A failed git command's stderr (the test fails if it succeeded). */
async function failure(args: string[]): Promise<string> {
  const r = await git(args);
  expect(r.status, `git ${args.join(' ')} should fail`).not.toBe(0);
  return r.stderr;
}

let http: Server;
let base = '';
beforeAll(async () => {
  await git(['init', '-q', '--bare', bare], dir);
  await git(['init', '-q', '-b', 'main', work], dir);
  await git(['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '--allow-empty', '-m', 'one']);
  // An HTTP "remote" answering each path's status (`/502/r.git/info/refs` → 502), or dropping the connection.
  http = createServer((req, res) => {
    const status = Number(req.url?.split('/')[1]);
    if (!status) return void req.socket.destroy();
    res.writeHead(status, { 'content-type': 'text/plain' }).end('no');
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => http.close(resolve));
});

it('a remote that hangs up during a push is transient (git: "the remote end hung up unexpectedly")', async () => {
  // receive-pack with no input: it advertises its refs, then goes away while the pack is being sent.
  const script = join(dir, 'hang-up.sh');
  writeFileSync(script, `#!/bin/sh\nexec git receive-pack '${bare}' </dev/null\n`);
  chmodSync(script, 0o755);
  const stderr = await failure(['-c', 'protocol.ext.allow=always', 'push', `ext::${script}`, 'HEAD:main']);
  expect(stderr).toMatch(/remote end hung up/);
  expect(gitFailureIsTransient(stderr), stderr).toBe(true);
});

it('HTTP 5xx and a dropped or refused connection are transient; HTTP 401, 403 and 404 are permanent', async () => {
  const verdicts: Record<string, boolean> = {};
  for (const what of ['502', '503', '429', '403', '404', '401', 'dropped']) {
    const stderr = await failure(['push', `${base}/${what === 'dropped' ? 'x' : what}/r.git`, 'HEAD:main']);
    verdicts[what] = gitFailureIsTransient(stderr);
  }
  // Port 9 (discard): nothing listens on it here.
  const refused = await failure(['push', 'http://127.0.0.1:9/r.git', 'HEAD:main']);
  expect({ ...verdicts, refused: gitFailureIsTransient(refused) }).toEqual({
    '502': true,
    '503': true,
    '429': true,
    '403': false,
    '404': false,
    '401': false,
    dropped: true,
    refused: true,
  });
});

it('a rejected push and a missing ref are permanent', async () => {
  expect((await git(['push', bare, 'HEAD:main'])).status, 'the first push').toBe(0);
  await git(['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '--amend', '--allow-empty', '-m', 'other']);
  const rejected = await failure(['push', bare, 'HEAD:main']);
  expect(rejected).toMatch(/rejected/);
  expect(gitFailureIsTransient(rejected), rejected).toBe(false);
  const missing = await failure(['push', bare, 'no-such-branch:main']);
  expect(gitFailureIsTransient(missing), missing).toBe(false);
});

it("git's and curl's texts for failures not made here: certificates, declined or too-large pushes, an unreadable HOME are permanent; GitHub's ref races and 5xx in a push report are transient", () => {
  const url = "fatal: unable to access 'https://ghe.example/acme/w.git/': ";
  const cases: [string, boolean][] = [
    [`${url}SSL certificate problem: self-signed certificate in certificate chain`, false],
    [`${url}URL using bad/illegal format or missing URL`, false],
    [`${url}Failed to connect to ghe.example port 443 after 2 ms: Network is unreachable`, true],
    [
      "warning: unable to access '/root/.config/git/attributes': Permission denied\nerror: pathspec 'x' did not match any file(s) known to git",
      false,
    ],
    ['remote: error: GH001: Large files detected.\n ! [remote rejected] main -> main (pre-receive hook declined)', false],
    ['fatal: the remote end hung up unexpectedly\nremote: fatal: pack exceeds maximum allowed size (2.00 GiB)', false],
    [" ! [remote rejected] b -> b (cannot lock ref 'refs/heads/b': is at 1a2b but expected 3c4d)\nerror: failed to push some refs", true],
    [' ! [remote rejected] b -> b (Internal Server Error)\nerror: failed to push some refs', true],
    ['kex_exchange_identification: Connection closed by remote host\nfatal: Could not read from remote repository.', true],
    [`remote: You have exceeded a secondary rate limit.\n${url}The requested URL returned error: 403`, true],
    // A URL or branch naming a certificate is no certificate problem.
    ["fatal: unable to access 'https://github.com/acme/certificate-service.git/': The requested URL returned error: 502", true],
    [' ! [remote rejected] rmapp/fix-certificate-renewal -> rmapp/fix-certificate-renewal (Internal Server Error)', true],
    [`${url}Received HTTP code 503 from proxy after CONNECT`, true],
    [`${url}Received HTTP code 407 from proxy after CONNECT`, false],
    [`${url}Error in the HTTP2 framing layer`, true],
    [
      " ! [remote rejected] rmapp/x -> rmapp/x (cannot lock ref 'refs/heads/rmapp/x': 'refs/heads/rmapp' exists; cannot create 'refs/heads/rmapp/x')",
      false,
    ],
  ];
  expect(cases.filter(([stderr, transient]) => gitFailureIsTransient(stderr) !== transient).map(([stderr]) => stderr)).toEqual([]);
});
