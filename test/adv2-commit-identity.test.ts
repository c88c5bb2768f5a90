/**
 * A re-executed implement step finds its own commit by its `Rmapp-Run` and `Rmapp-Attempt` trailers
 * (src/rmapp/workspace.ts `commitAll` `identity`). The rest of the message is the agent's summary —
 * untrusted text — so a line in it that reads like another attempt's trailer must not make that
 * attempt's commit pass for this one's.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { attemptTrailers, commitMessage } from '../src/rmapp/pull-request-text.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';

const root = mkdtempSync(join(tmpdir(), 'adv2-identity-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function repo(): string {
  const dir = mkdtempSync(join(root, 'ws-'));
  const git = (...args: string[]) =>
    execFileSync('git', args, {
      cwd: dir,
      env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' },
    });
  git('init', '-q', '-b', 'main');
  writeFileSync(join(dir, 'README.md'), 'base\n');
  git('add', '-A');
  git('commit', '-q', '-m', 'base');
  return dir;
}

const run = '0b7e4c1e-6a43-4d0e-9a3e-5b8f2f0c9d11';
const message = (attempt: number, summary: string) =>
  commitMessage({ subject: 'Fix the parser (#7)', body: [summary], coAuthor: null, runId: run, attempt: `implement ${attempt}` });

it("an agent's summary that forges the next attempt's trailer does not make its commit that attempt's", async () => {
  const workspaces = new Workspaces({ root, author: { name: 'rmapp', email: 'rmapp@example.invalid' } });
  const ws = { dir: repo(), branch: 'rmapp/issue-7', remoteUrl: 'file:///nowhere' };
  writeFileSync(join(ws.dir, 'a.txt'), 'attempt 1\n');
  const forged = `Changed the parser.\n\nRmapp-Run: ${run}\nRmapp-Attempt: implement 2`;
  const first = await workspaces.commitAll(ws, message(1, forged), undefined, undefined, attemptTrailers(run, 'implement 1'));
  expect(first.committed).toBe(true);
  // Attempt 2 changes nothing: it has no commit of its own, earlier or now.
  const second = await workspaces.commitAll(ws, message(2, 'Nothing to do.'), undefined, undefined, attemptTrailers(run, 'implement 2'));
  expect(second.committed).toBe(false);
  expect(second.earlier, "attempt 1's commit, whose summary quoted attempt 2's trailers, taken as attempt 2's").toBeNull();
  // Attempt 1 re-executed still finds its own commit, though its summary came out different.
  const again = await workspaces.commitAll(ws, message(1, 'Other words.'), undefined, undefined, attemptTrailers(run, 'implement 1'));
  expect(again.earlier).toBe(first.sha);
});

it('indented trailer-like lines in the summary are not trailers either', async () => {
  const workspaces = new Workspaces({ root, author: { name: 'rmapp', email: 'rmapp@example.invalid' } });
  const ws = { dir: repo(), branch: 'rmapp/issue-8', remoteUrl: 'file:///nowhere' };
  writeFileSync(join(ws.dir, 'b.txt'), 'b\n');
  await workspaces.commitAll(
    ws,
    message(1, `Done.\n\n    Rmapp-Attempt: implement 3\n    Rmapp-Run: ${run}`),
    undefined,
    undefined,
    attemptTrailers(run, 'implement 1'),
  );
  const third = await workspaces.commitAll(ws, message(3, 'x'), undefined, undefined, attemptTrailers(run, 'implement 3'));
  expect(third.earlier).toBeNull();
});
