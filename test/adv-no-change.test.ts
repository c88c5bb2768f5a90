/**
 * The no-change stop after a retry: a run that continues a failed run (`@rmapp retry`) numbers its
 * attempts from 1 again on the same branch. An attempt that changes nothing must not take the failed
 * run's commit of the same attempt number for its own (it would count as a change, the tests would run
 * again for nothing, and the step would report a commit it did not make).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attemptTrailers, commitMessage } from '../src/rmapp/pull-request-text.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';

const root = mkdtempSync(join(tmpdir(), 'adv-nochange-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const author = { name: 'T', email: 't@example.com' };

function upstream(): string {
  const dir = join(root, 'up');
  mkdirSync(dir);
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@example.com', ...args], { cwd: dir });
  git('init', '-q', '-b', 'main');
  writeFileSync(join(dir, 'a.txt'), 'a\n');
  git('add', '.');
  git('commit', '-qm', 'init');
  return dir;
}

describe('commitAll with nothing to commit', () => {
  it("does not take another run's commit with the same subject for this step's own", async () => {
    const remote = upstream();
    const workspaces = new Workspaces({ root: join(root, 'ws'), author });
    const message = (runId: string) => `rmapp: Fix it (#1), attempt 1\n\nRmapp-Run: ${runId}`;

    // The failed run's attempt 1 changed a file and pushed.
    const failed = await workspaces.prepare({ runId: 'failed-run', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
    writeFileSync(join(failed.dir, 'a.txt'), 'changed\n');
    const first = await workspaces.commitAll(failed, message('failed-run'));
    await workspaces.push(failed);
    expect(first.committed).toBe(true);

    // The retry's attempt 1 changes nothing.
    const retry = await workspaces.prepare({ runId: 'retry-run', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
    const again = await workspaces.commitAll(retry, message('retry-run'));
    expect(again.committed).toBe(false);
    expect(again.earlier, "the failed run's commit was taken for the retry's").toBeNull();

    // The same step of the same run, re-executed after its push, still finds its own commit.
    const reexecuted = await workspaces.commitAll(failed, message('failed-run'));
    expect(reexecuted).toMatchObject({ committed: false, earlier: first.sha });
  });
});

describe("commitAll finds a re-executed step's commit by its trailers", () => {
  it("when the agent summarises differently the second time, and never the same run's other attempt", async () => {
    const remote = join(root, 'up');
    const workspaces = new Workspaces({ root: join(root, 'ws-trailers'), author });
    const ws = await workspaces.prepare({ runId: 'run-t', remoteUrl: remote, branch: 'rmapp/issue-3', base: 'main' });
    const message = (summary: string, attempt: number) =>
      commitMessage({ subject: 'feat: Fix it (#3)', body: [summary], runId: 'run-t', attempt: `implement ${attempt}` });
    writeFileSync(join(ws.dir, 'a.txt'), 'attempt 1\n');
    const first = await workspaces.commitAll(
      ws,
      message('Changed a.txt.', 1),
      undefined,
      undefined,
      attemptTrailers('run-t', 'implement 1'),
    );
    expect(first.committed).toBe(true);
    // Re-executed after its commit and push: the agent finds nothing left to do and says so in other words.
    const again = await workspaces.commitAll(
      ws,
      message('Nothing to change.', 1),
      undefined,
      undefined,
      attemptTrailers('run-t', 'implement 1'),
    );
    expect(again, 'the step reported no change although its earlier execution committed').toMatchObject({
      committed: false,
      earlier: first.sha,
    });
    // Attempt 2 of the same run changes nothing: attempt 1's commit is not its own.
    const second = await workspaces.commitAll(
      ws,
      message('Changed a.txt.', 2),
      undefined,
      undefined,
      attemptTrailers('run-t', 'implement 2'),
    );
    expect(second.earlier, "attempt 1's commit was taken for attempt 2's").toBeNull();
  });
});

describe("the plan's commit holds the plan only", () => {
  it('what an analysing agent changed is not committed with the plan, so the protected-paths check still sees it', async () => {
    const remote = join(root, 'up');
    const workspaces = new Workspaces({ root: join(root, 'ws-plan'), author });
    const ws = await workspaces.prepare({ runId: 'plan-run', remoteUrl: remote, branch: 'rmapp/issue-2', base: 'main' });
    // The analysis agent (told not to change files) edited a file; the service then places the plan.
    writeFileSync(join(ws.dir, 'a.txt'), 'edited during analysis\n');
    mkdirSync(join(ws.dir, '.rmfilter'), { recursive: true });
    writeFileSync(join(ws.dir, '.rmfilter/plan.yml'), 'goal: x\n');
    const plan = await workspaces.commitAll(ws, 'rmapp: plan for #2', undefined, ['.rmfilter/plan.yml']);
    expect(plan.committed).toBe(true);
    const files = execFileSync('git', ['show', '--name-only', '--format=', 'HEAD'], { cwd: ws.dir, encoding: 'utf8' }).trim().split('\n');
    expect(files, "the analysing agent's edit went into the plan's commit").toEqual(['.rmfilter/plan.yml']);
    expect(await workspaces.changedPaths(ws)).toEqual(['a.txt']);
  });
});
