/**
 * An issue run builds only on a branch rmapp created: a `rmapp/issue-<n>` someone made by hand before
 * rmapp (and a pull request opened from it) is neither built on nor taken over; rmapp's own branch and
 * draft are continued, and a run resumed after its push finds its own branch again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createServiceWorld, example, type ServiceWorld } from './helpers/service-world.ts';

const worlds: ServiceWorld[] = [];
afterEach(async () => {
  await Promise.all(worlds.splice(0).map((w) => w.stop()));
});

async function world(): Promise<ServiceWorld> {
  const s = await createServiceWorld();
  worlds.push(s);
  s.world.emulator.permissions.set('acme/widgets:alice', 'write');
  s.world.emulator.issues.set('acme/widgets#5', { title: 'Make impl right', body: 'WRITE impl.txt right' });
  return s;
}

/** A commit by mallory on `branch` of the remote (made from main), holding `file`. */
async function strangerBranch(s: ServiceWorld, branch: string, file: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'rmapp-stranger-'));
  const git = (...args: string[]) => s.world.git(dir, ...args);
  await s.world.git(tmpdir(), 'clone', '-q', s.world.remote, dir);
  await git('checkout', '-q', '-b', branch);
  await git('-c', 'user.name=mallory', '-c', 'user.email=m@example.com', 'commit', '-q', '--allow-empty', '-m', `add ${file}`);
  await git('push', '-q', 'origin', `HEAD:refs/heads/${branch}`);
  return git('rev-parse', 'HEAD');
}

function implement(issue: number, body = '@rmapp implement') {
  return example('issue_comment', 'created', (p) => {
    p.issue.number = issue;
    delete p.issue.pull_request;
    p.comment.body = body;
    p.comment.user.login = 'alice';
    p.comment.user.type = 'User';
    p.sender.login = 'alice';
  });
}

async function issueRun(s: ServiceWorld) {
  for (let i = 0; i < 900; i++) {
    const runs = await s.service.engine.list({});
    const run = runs.find((r) => r.id.startsWith('acme/widgets/issues/5/'));
    if (run && ['succeeded', 'failed', 'cancelled'].includes(run.status)) return run;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the issue run did not end');
}

describe('an issue run and a hand-made rmapp/issue-<n>', () => {
  it('neither builds on a branch it did not create nor takes over the pull request opened from it', async () => {
    const s = await world();
    const theirs = await strangerBranch(s, 'rmapp/issue-5', 'evil');
    s.world.emulator.pulls.set('acme/widgets', [
      { number: 20, head: 'rmapp/issue-5', base: 'main', title: 'mallory’s', body: 'mine', state: 'open', author: 'mallory' },
    ]);
    expect((await s.deliver('issue_comment', implement(5))).status).toBe(202);
    const run = await issueRun(s);
    expect(run.status).toBe('failed');
    expect((run.error as { code?: string }).code).toBe('ISSUE_BRANCH_TAKEN');
    // Nothing pushed onto it, no pull request taken over or opened beside it.
    expect(await s.world.git(s.world.remote, 'rev-parse', 'rmapp/issue-5')).toBe(theirs);
    const pulls = s.world.emulator.pulls.get('acme/widgets') ?? [];
    expect(pulls).toHaveLength(1);
    expect(pulls[0]).toMatchObject({ title: 'mallory’s', body: 'mine', state: 'open' });
    // The requester is told why and what to do, once.
    const said = (s.world.emulator.comments.get('acme/widgets#5') ?? []).map((c) => c.body).filter((b) => b.includes('@alice I stopped'));
    expect(said).toHaveLength(1);
    expect(said[0]).toContain('` rmapp/issue-5 `');
    expect(said[0]).toContain('did not create');
    expect(said[0]).not.toContain('``');
  });

  it('refuses a hand-made branch with no pull request too', async () => {
    const s = await world();
    const theirs = await strangerBranch(s, 'rmapp/issue-5', 'evil');
    await s.deliver('issue_comment', implement(5));
    const run = await issueRun(s);
    expect((run.error as { code?: string }).code).toBe('ISSUE_BRANCH_TAKEN');
    expect(await s.world.git(s.world.remote, 'rev-parse', 'rmapp/issue-5')).toBe(theirs);
    expect(s.world.emulator.pulls.get('acme/widgets') ?? []).toHaveLength(0);
  });

  it('continues the branch of the draft rmapp opened itself (a run asked for again)', async () => {
    const s = await world();
    const before = await strangerBranch(s, 'rmapp/issue-5', 'earlier work');
    s.world.emulator.pulls.set('acme/widgets', [
      {
        number: 21,
        head: 'rmapp/issue-5',
        base: 'main',
        title: '[WIP] x',
        body: '',
        state: 'open',
        author: s.world.emulator.botLogin,
        draft: true,
      },
    ]);
    await s.deliver('issue_comment', implement(5));
    const run = await issueRun(s);
    expect(run.status).toBe('succeeded');
    const tip = await s.world.git(s.world.remote, 'rev-parse', 'rmapp/issue-5');
    expect(await s.world.git(s.world.remote, 'merge-base', '--is-ancestor', before, tip).then(() => true)).toBe(true);
    expect(s.world.emulator.pulls.get('acme/widgets')).toHaveLength(1);
  });

  it('resumes on the branch it pushed when opening its draft failed, in a fresh clone, by its own record', async () => {
    const s = await world();
    // Opening the draft fails after the push (GitHub answering 500 past the client's own retries), and
    // the workspace is gone before the step runs again (as on another worker): the branch is on the
    // remote, no pull request comes from it, and only the run's record of its push says whose it is.
    const workspaces = join(dirname(s.world.remote), 'service-runs');
    let failed = 0;
    s.world.emulator.hook({
      method: 'POST',
      route: '/repos/{owner}/{repo}/pulls',
      when: 'before',
      times: 4,
      run: () => {
        failed++;
        rmSync(workspaces, { recursive: true, force: true });
        return { status: 500, message: 'emulated 500' };
      },
    });
    await s.deliver('issue_comment', implement(5));
    const run = await issueRun(s);
    expect(failed).toBe(4);
    expect(run.error).toBeNull();
    expect(run.status).toBe('succeeded');
    const pulls = s.world.emulator.pulls.get('acme/widgets') ?? [];
    expect(pulls).toHaveLength(1);
    expect(pulls[0]?.author).toBe(s.world.emulator.botLogin);
  });

  it('a retry continues the branch the failed run pushed before its draft could open, by that run’s record', async () => {
    const s = await world();
    // GitHub refuses the draft once (422): the first run fails after pushing its plan, with no pull request.
    s.world.emulator.hook({
      method: 'POST',
      route: '/repos/{owner}/{repo}/pulls',
      when: 'before',
      run: () => ({ status: 422, message: 'Validation Failed' }),
    });
    await s.deliver('issue_comment', implement(5));
    const first = await issueRun(s);
    expect(first.status).toBe('failed');
    const pushed = await s.world.git(s.world.remote, 'rev-parse', 'rmapp/issue-5');
    expect(s.world.emulator.pulls.get('acme/widgets') ?? []).toHaveLength(0);
    await s.deliver('issue_comment', implement(5, '@rmapp retry'));
    let second;
    for (let i = 0; i < 900 && !second; i++) {
      const runs = await s.service.engine.list({});
      second = runs.find(
        (r) => r.id !== first.id && r.id.startsWith('acme/widgets/issues/5/') && ['succeeded', 'failed'].includes(r.status),
      );
      if (!second) await new Promise((r) => setTimeout(r, 100));
    }
    expect(second?.error ?? null).toBeNull();
    expect(second?.status).toBe('succeeded');
    const tip = await s.world.git(s.world.remote, 'rev-parse', 'rmapp/issue-5');
    expect(await s.world.git(s.world.remote, 'merge-base', '--is-ancestor', pushed, tip).then(() => true)).toBe(true);
    expect(s.world.emulator.pulls.get('acme/widgets')).toHaveLength(1);
  });
});
