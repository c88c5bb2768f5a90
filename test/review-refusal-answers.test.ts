/**
 * What a review refused because the pull request is not rmapp's says, end to end: `@rmapp retry` of it
 * answers once (the refusal stands unless the operator has opted the repository in since), and a review
 * whose every comment was refused does not show "Address the comments" ticked.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createServiceWorld, example, PULL_BRANCH, pullRequestWorld, type ServiceWorld } from './helpers/service-world.ts';

const worlds: ServiceWorld[] = [];
afterEach(async () => {
  await Promise.all(worlds.splice(0).map((w) => w.stop()));
});

/** A person's pull request #8 from `feature-x`, alice (write) in its conversation. */
async function world(env: Record<string, string> = {}): Promise<ServiceWorld> {
  const s = await createServiceWorld(env);
  worlds.push(s);
  await s.world.git(s.world.remote, 'branch', 'feature-x', 'main');
  s.world.emulator.pulls.set('acme/widgets', [
    { number: 8, head: 'feature-x', base: 'main', title: 'x', body: '', state: 'open', author: 'octocat' },
  ]);
  s.world.emulator.permissions.set('acme/widgets:alice', 'write');
  return s;
}

/** alice's comment `body` in pull request #8's conversation, delivered. */
async function say(s: ServiceWorld, body: string): Promise<void> {
  const p = example('issue_comment', 'created', (x) => {
    x.issue.number = 8;
    x.issue.pull_request = { url: 'https://api.github.com/repos/acme/widgets/pulls/8' };
    x.comment.body = body;
    x.comment.user.login = 'alice';
    x.comment.user.type = 'User';
    x.sender.login = 'alice';
  });
  const list = s.world.emulator.comments.get('acme/widgets#8') ?? [];
  s.world.emulator.comments.set('acme/widgets#8', [
    ...list,
    { id: p.comment.id, body, user: { login: 'alice' }, created_at: p.comment.created_at, updated_at: p.comment.updated_at },
  ]);
  expect((await s.deliver('issue_comment', p)).status).toBe(202);
}

/** The service's runs once `count` of them have ended. */
async function ended(s: ServiceWorld, count: number) {
  for (let i = 0; i < 600; i++) {
    const runs = await s.service.engine.list({});
    const done = runs.filter((r) => ['succeeded', 'failed', 'cancelled'].includes(r.status));
    if (done.length >= count && done.length === runs.length) return runs;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('runs did not end');
}

const botSaid = (s: ServiceWorld) =>
  (s.world.emulator.comments.get('acme/widgets#8') ?? []).filter((c) => c.user.login === s.world.emulator.botLogin).map((c) => c.body);

describe('retry of a refusal on a branch that is not rmapp’s', () => {
  it('answers once, saying the refusal stands, and starts no review', async () => {
    const s = await world();
    await say(s, '@rmapp add a test');
    await ended(s, 2); // the delivery and the refused review
    expect(botSaid(s)).toHaveLength(1);
    await say(s, '@rmapp retry');
    const runs = await ended(s, 3);
    expect(runs.filter((r) => r.workflow === 'PRReview')).toHaveLength(1);
    const said = botSaid(s);
    expect(said).toHaveLength(2);
    expect(said[1]).toContain('I cannot retry');
    expect(said[1]).toContain('reviewAnyBranch');
    expect(said[1]).not.toContain('``');
  });

  it('a review whose every comment was refused leaves "Address the comments" unticked', async () => {
    const s = await world();
    const now = new Date().toISOString();
    const p = example('pull_request_review', 'submitted', (x) => {
      x.pull_request.number = 8;
      x.pull_request.head.ref = 'feature-x';
      x.review.body = '';
      x.review.user.login = 'alice';
      x.review.user.type = 'User';
      x.sender.login = 'alice';
    });
    s.world.emulator.reviewComments.set('acme/widgets#8', [
      {
        id: 91_001,
        body: '@rmapp rename a',
        pull_request_review_id: p.review.id,
        path: 'README.md',
        line: 1,
        user: { login: 'alice' },
        created_at: now,
        updated_at: now,
      },
      {
        id: 91_002,
        body: '@rmapp rename b',
        pull_request_review_id: p.review.id,
        path: 'README.md',
        line: 1,
        user: { login: 'alice' },
        created_at: now,
        updated_at: now,
      },
    ]);
    expect((await s.deliver('pull_request_review', p)).status).toBe(202);
    const runs = await ended(s, 2); // the delivery and ReviewResponse (its children are in its snapshot)
    expect(runs.find((r) => r.workflow === 'ReviewResponse')?.status).toBe('succeeded');
    // The progress comment's last edit follows the run's end: waited for (the summary ticked).
    for (let i = 0; i < 100 && !botSaid(s).some((b) => b.includes('[x] Answer the review')); i++)
      await new Promise((r) => setTimeout(r, 100));
    const said = botSaid(s);
    const summary = said.find((b) => b.startsWith('Addressed 0 of 2'));
    expect(summary).toBeDefined();
    const checklist = said.find((b) => b.includes('Address the comments'));
    expect(checklist).toBeDefined();
    expect(checklist).toContain('- [ ] Address the comments — none of 2 done');
    expect(checklist).not.toContain('[x] Address the comments');
  });

  it('pushes nothing when the default branch became the pull request’s branch while the run worked', async () => {
    const s = await pullRequestWorld();
    worlds.push(s);
    const before = await s.world.git(s.world.remote, 'rev-parse', PULL_BRANCH);
    // The pull request is read when the comment is (the default is `main` then) and again before the
    // push: by then an admin has made rmapp's branch the repository's default.
    // The switch happens once the agent has written its change (a file in the run's workspace).
    let switched = false;
    const workspaces = join(dirname(s.world.remote), 'service-runs');
    s.world.emulator.hook({
      method: 'GET',
      route: '/repos/{owner}/{repo}/pulls/{pull_number}',
      when: 'before',
      times: 50,
      run: () => {
        const written = existsSync(workspaces) && readdirSync(workspaces, { recursive: true }).some((f) => String(f).endsWith('impl.txt'));
        if (written && !switched) {
          switched = true;
          s.world.emulator.repos.set('acme/widgets', { default_branch: PULL_BRANCH });
        }
      },
    });
    const now = new Date().toISOString();
    const p = example('pull_request_review_comment', 'created', (x) => {
      x.pull_request.number = 7;
      x.pull_request.head.ref = PULL_BRANCH;
      x.comment.body = '@rmapp\nWRITE impl.txt right';
      x.comment.user.login = 'alice';
      x.comment.user.type = 'User';
      x.sender.login = 'alice';
    });
    s.world.emulator.reviewComments.set('acme/widgets#7', [
      { id: p.comment.id, body: p.comment.body, path: 'README.md', line: 1, user: { login: 'alice' }, created_at: now, updated_at: now },
    ]);
    expect((await s.deliver('pull_request_review_comment', p)).status).toBe(202);
    const runs = await ended(s, 2);
    const review = runs.find((r) => r.workflow === 'PRReview');
    expect((review?.error as { code?: string } | null)?.code).toBe('DEFAULT_BRANCH_HEAD');
    expect(switched).toBe(true);
    expect(await s.world.git(s.world.remote, 'rev-parse', PULL_BRANCH)).toBe(before);
  });
});
