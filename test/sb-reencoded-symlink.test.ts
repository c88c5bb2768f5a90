/**
 * The commit check reads the working-tree bytes of files `.gitattributes` gives a
 * `working-tree-encoding` (workspace.ts `reencodedSecret`). The names come from git's staged diff, which
 * lists a deleted tracked file (`docs/notes.txt`) even when the sandbox replaced its folder with a symbolic
 * link: the service then opened `<workspace>/docs/notes.txt` through the link — a host folder, or a FIFO
 * in an ignored folder of the workspace, on which `open` never returned and held a thread of libuv's pool
 * for good. The agent runs here in the real bubblewrap sandbox.
 */
import { closeSync, constants, mkdtempSync, mkdirSync, openSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { secretFinder } from '../src/rmapp/secret-scan.ts';
import { createBareRemote } from './helpers/git-remote.ts';
import { testSandbox } from './helpers/sandbox.ts';

const root = mkdtempSync(join(tmpdir(), 'sb-reencoded-'));
afterAll(() => {
  // A reader left blocked on the FIFO (the defect) is let go: a writer opening it ends the reader's `open`.
  try {
    closeSync(openSync(join(root, 'ws-fifo', 'run-fifo', 'cache', 'notes.txt'), constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // No reader waits: nothing to let go.
  }
  rmSync(root, { recursive: true, force: true });
});

const SECRET = 'hostonly-9f3Kq2Lm8Xw4Zp7Rt5Vb';

async function attempt(agentScript: string, id: string) {
  const remote = await createBareRemote(root, `repo-${id}`, { 'docs/notes.txt': 'notes\n', 'README.md': 'hi\n' });
  const workspaces = new Workspaces({
    root: join(root, `ws-${id}`),
    author: { name: 'rmapp', email: 'rmapp@example.com' },
    findSecret: secretFinder([{ label: 'the value of HOST_SECRET (sandbox.env)', secrets: [SECRET] }]),
  });
  const ws = await workspaces.prepare({ runId: `run-${id}`, remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  const r = await testSandbox.run({ argv: ['/bin/sh', '-c', agentScript], workspace: ws.dir, timeoutMs: 30_000 });
  expect(r.exitCode, r.stderr).toBe(0);
  return workspaces.commitAll(ws, 'rmapp: the agent changes docs');
}

describe('the commit check never opens a file through a symlinked folder of the workspace', () => {
  it('does not read a host file that a link in place of a tracked folder points at', async () => {
    // A host folder outside every workspace, holding a file of the tracked file's name.
    const host = join(root, 'host-dir');
    mkdirSync(host);
    writeFileSync(join(host, 'notes.txt'), `token=${SECRET}\n`);
    const script = `rm -rf docs && ln -s ${host} docs && echo 'docs/notes.txt working-tree-encoding=UTF-16LE' > .gitattributes`;
    const result = await attempt(script, 'host').catch((err: Error) => err);
    // Refused for a secret only the host file holds: the service opened docs/notes.txt through the link.
    expect(
      result instanceof Error ? result.message : 'committed',
      'workspace.ts reencodedSecret read a host file through a symlinked folder',
    ).toBe('committed');
  });

  it('does not block on a FIFO that a link in place of a tracked folder leads to', async () => {
    // The FIFO sits in an ignored folder, so `git add -A` never sees it; the link leads the deleted name to it.
    const script = [
      'mkdir -p cache && mkfifo cache/notes.txt',
      "echo 'cache/' > .gitignore",
      'rm -rf docs && ln -s cache docs',
      "echo 'docs/notes.txt working-tree-encoding=UTF-16LE' > .gitattributes",
    ].join(' && ');
    const result = await attempt(script, 'fifo');
    expect(result.committed, 'workspace.ts reencodedSecret opened a FIFO through a symlinked folder').toBe(true);
  });
});
