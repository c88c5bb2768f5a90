/**
 * Whose branch a review pushes to (src/rmapp/github/head-branch.ts), end to end: webhook → delivery →
 * PRReview against the emulator and a real git remote. A review comment for rmapp on a same-repository
 * pull request opened by a person, from a branch of theirs (`feature-x`, `release-2.1`), pushed the
 * agent's change onto that branch; rmapp now pushes only to the branches of the pull requests it opened
 * itself (its own login as the author, a branch it names `rmapp/issue-<n>`), unless the operator lists
 * the repository in `reviewAnyBranch`. The refusal comes before the agent runs, is answered once, and
 * the run ends `failed` with code `NOT_OWN_BRANCH`; no ref of the remote moves.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headOwnership, mayPushAnyBranch, shownBranch } from '../src/rmapp/github/head-branch.ts';
import { loadConfig } from '../src/rmapp/config.ts';
import type { RunInfo } from '../src/index.ts';
import { createServiceWorld, example, type ServiceWorld } from './helpers/service-world.ts';

/** The bot's login in the emulator (`GET /user` of the service's token). */
const BOT = 'rmapp[bot]';
const FINAL = ['succeeded', 'failed', 'cancelled'];

/** Every ref of the remote with its commit: what a refused review must leave as it was. */
const refs = (s: ServiceWorld) => s.world.git(s.world.remote, 'for-each-ref', '--format=%(refname) %(objectname)');

/** Puts a pull request into the emulator as GitHub would show it, from `head` (a branch made from `main` unless `branch: false`). */
async function openPull(
  s: ServiceWorld,
  number: number,
  pull: { head: string; author: string | null; headRepo?: string | null; branch?: boolean },
): Promise<void> {
  if (pull.branch !== false) await s.world.git(s.world.remote, 'branch', pull.head, 'main');
  const list = s.world.emulator.pulls.get('acme/widgets') ?? [];
  s.world.emulator.pulls.set('acme/widgets', [
    ...list,
    {
      number,
      head: pull.head,
      base: 'main',
      title: `PR ${number}`,
      body: '',
      state: 'open',
      author: pull.author,
      ...(pull.headRepo !== undefined ? { headRepo: pull.headRepo } : {}),
    },
  ]);
}

/** Delivers a review comment by alice on PR `number` (a thread on app.txt); returns the comment's id. */
async function reviewComment(s: ServiceWorld, number: number, body: string): Promise<number> {
  const id = s.world.emulator.addReviewComment('acme', 'widgets', number, body, 'alice', { path: 'app.txt', line: 1 });
  const sent = example('pull_request_review_comment', 'created', (p) => {
    p.pull_request.number = number;
    Object.assign(p.comment, { id, body, pull_request_review_id: null });
    Object.assign(p.comment.user, { login: 'alice', type: 'User' });
  });
  expect((await s.deliver('pull_request_review_comment', sent)).status).toBe(202);
  return id;
}

/** Delivers `@rmapp <request>` by alice in PR `number`'s conversation. */
async function conversationComment(s: ServiceWorld, number: number, body: string): Promise<number> {
  const id = s.world.emulator.addIssueComment('acme', 'widgets', number, body, 'alice');
  const sent = example('issue_comment', 'created', (p) => {
    p.issue.number = number;
    p.issue.pull_request = { url: `https://api.github.com/repos/acme/widgets/pulls/${number}` };
    Object.assign(p.comment, { id, body });
    Object.assign(p.comment.user, { login: 'alice', type: 'User' });
  });
  expect((await s.deliver('issue_comment', sent)).status).toBe(202);
  return id;
}

/** The review run of PR `number` once it has ended, with the top-level states it entered. */
async function reviewRun(s: ServiceWorld, number: number): Promise<{ run: RunInfo; entered: string[] }> {
  for (let i = 0; i < 900; i++) {
    const run = (await s.service.engine.list({ idPrefix: `acme/widgets/pulls/${number}/` })).find((r) => r.parentRunId === null);
    if (run && FINAL.includes(run.status)) {
      const entered = (await s.service.engine.history(run.id))
        .filter((h) => h.type === 'state.entered' && h.path === '')
        .map((h) => String(h.state));
      return { run, entered };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the review run of PR #${number} did not end`);
}

/** What rmapp wrote on PR `number`: its replies in review threads and its comments in the conversation. */
function answers(s: ServiceWorld, number: number): string[] {
  const key = `acme/widgets#${number}`;
  return [...(s.world.emulator.reviewComments.get(key) ?? []), ...(s.world.emulator.comments.get(key) ?? [])]
    .filter((c) => c.user.login === BOT && !c.body.includes('/progress -->')) // a ReviewResponse's checklist is no answer
    .map((c) => c.body);
}

/** The refused run: failed in parsing, before any workspace, agent or push; one answer saying why and what to do. */
async function expectRefused(s: ServiceWorld, number: number, why: RegExp): Promise<string> {
  const { run, entered } = await reviewRun(s, number);
  expect(run.status, JSON.stringify(run.error)).toBe('failed');
  expect(run.error).toMatchObject({ code: 'NOT_OWN_BRANCH', category: 'validation' });
  expect(entered, 'the run went no further than reading the comment').toEqual(['parsingComment', 'reportingFailure', 'failed']);
  const said = answers(s, number);
  expect(said, 'answered once').toHaveLength(1);
  const reply = said[0] as string;
  expect(reply).toMatch(/^@alice I could not do this: /);
  expect(reply).toMatch(why);
  expect(reply, 'what to do instead').toMatch(/comment `@rmapp implement` there/);
  expect(reply, 'the operator setting').toMatch(/`reviewAnyBranch` setting\./);
  expect(reply, 'one full stop').not.toMatch(/\.\./);
  expect(reply, 'no retry offered: it would stop the same way').not.toMatch(/retry/);
  return reply;
}

describe('default: rmapp pushes only to the branches of its own pull requests', () => {
  let s: ServiceWorld;
  beforeAll(async () => {
    s = await createServiceWorld();
    s.world.emulator.permissions.set('acme/widgets:alice', 'write');
  });
  afterAll(() => s?.stop());

  it("refuses a review comment on a person's pull request from their branch: nothing pushed, the reviewer told why and what to do", async () => {
    await openPull(s, 11, { head: 'feature-x', author: 'bob' });
    const before = await refs(s);
    await reviewComment(s, 11, '@rmapp rename foo to bar\nWRITE app.txt let bar = 1;\nWRITE impl.txt right');
    const reply = await expectRefused(
      s,
      11,
      /branch ` feature-x ` is not one rmapp created \(rmapp's own are `rmapp\/issue-<n>`, opened for an issue\)/,
    );
    expect(reply).toMatch(/make the change on ` feature-x ` yourself/);
    expect(await refs(s), "a ref of the remote moved: rmapp pushed to a person's branch").toBe(before);
  }, 90_000);

  it('refuses a request in the conversation of a pull request from a shared branch (release-2.1)', async () => {
    await openPull(s, 12, { head: 'release-2.1', author: 'carol' });
    const before = await refs(s);
    await conversationComment(s, 12, '@rmapp bump the version\nWRITE impl.txt right');
    await expectRefused(s, 12, /branch ` release-2\.1 ` is not one rmapp created/);
    expect(await refs(s)).toBe(before);
  }, 90_000);

  it("refuses a branch named like rmapp's that a person created and opened a pull request from (the name alone is no proof)", async () => {
    await openPull(s, 13, { head: 'rmapp/issue-13', author: 'mallory' });
    const before = await refs(s);
    await reviewComment(s, 13, '@rmapp tidy\nWRITE impl.txt right');
    await expectRefused(
      s,
      13,
      /opened by @\u200bmallory, not by rmapp: its branch ` rmapp\/issue-13 ` has the name of one of rmapp's, but rmapp did not create it/,
    );
    expect(await refs(s)).toBe(before);
  }, 90_000);

  it("refuses a pull request the bot's login opened from a branch of another name (a personal token's user opening their own)", async () => {
    await openPull(s, 14, { head: 'feature-y', author: BOT });
    const before = await refs(s);
    await reviewComment(s, 14, '@rmapp tidy\nWRITE impl.txt right');
    await expectRefused(s, 14, /branch ` feature-y ` is not one rmapp created/);
    expect(await refs(s)).toBe(before);
  }, 90_000);

  it('refuses the pull request of a deleted account, and one whose branch was deleted: nothing re-created', async () => {
    await openPull(s, 15, { head: 'rmapp/issue-15', author: null });
    await openPull(s, 16, { head: 'gone-16', author: 'bob', branch: false });
    const before = await refs(s);
    await reviewComment(s, 15, '@rmapp tidy\nWRITE impl.txt right');
    await reviewComment(s, 16, '@rmapp tidy\nWRITE impl.txt right');
    await expectRefused(s, 15, /opened by an account that no longer exists/);
    await expectRefused(s, 16, /branch ` gone-16 ` is not one rmapp created/);
    expect(await refs(s)).toBe(before);
  }, 90_000);

  it("refuses a fork's pull request from a branch named like rmapp's (as a fork), and the repository's branch of that name stays", async () => {
    await s.world.git(s.world.remote, 'branch', 'rmapp/issue-17', 'main');
    await openPull(s, 17, { head: 'rmapp/issue-17', author: BOT, headRepo: 'mallory/widgets', branch: false });
    const before = await refs(s);
    await reviewComment(s, 17, '@rmapp tidy\nWRITE impl.txt right');
    const { run, entered } = await reviewRun(s, 17);
    expect(run.error).toMatchObject({ code: 'FORK_PULL_REQUEST' });
    expect(entered).toEqual(['parsingComment', 'reportingFailure', 'failed']);
    expect(answers(s, 17)).toHaveLength(1);
    expect(await refs(s)).toBe(before);
  }, 90_000);

  it('shows a branch name with control, format and bidi characters escaped in the reply (never a NUL in the store)', async () => {
    const name = 'fix-\u202eexe.txt';
    await openPull(s, 18, { head: name, author: 'bob' });
    // Not a name git takes: the pull request as GitHub's JSON could carry it, the branch never existed.
    await openPull(s, 19, { head: 'x\u0000y\n@everyone', author: 'bob', branch: false });
    const before = await refs(s);
    await reviewComment(s, 18, '@rmapp tidy\nWRITE impl.txt right');
    await reviewComment(s, 19, '@rmapp tidy\nWRITE impl.txt right');
    const bidi = await expectRefused(s, 18, /branch ` fix-\\u\{202e\}exe\.txt ` is not one rmapp created/);
    expect(bidi).not.toContain('\u202e');
    const nul = await expectRefused(s, 19, /branch ` x\\u\{0\}y\\u\{a\}@everyone ` is not one rmapp created/);
    expect(nul).not.toContain('\u0000');
    expect((await reviewRun(s, 19)).run.error?.message).not.toContain('\u0000');
    expect(await refs(s)).toBe(before);
  }, 90_000);

  it("pushes to rmapp's own pull request — also after a person force-pushed its branch, on top of their commit", async () => {
    // Opened by the bot through the API (the emulator records the token's login as its author), as an issue run does.
    await s.world.git(s.world.remote, 'branch', 'rmapp/issue-20', 'main');
    const { data: pr } = await s.world.github.pulls.create({
      owner: 'acme',
      repo: 'widgets',
      head: 'rmapp/issue-20',
      base: 'main',
      title: 'T',
      body: '',
    });
    expect(pr.user?.login).toBe(BOT);
    // A person rewrote the branch: a commit of theirs in place of rmapp's history.
    const human = await s.world.git(
      s.world.remote,
      '-c',
      'user.name=bob',
      '-c',
      'user.email=bob@x',
      'commit-tree',
      '-p',
      'main',
      '-m',
      'by hand',
      `${await s.world.git(s.world.remote, 'rev-parse', 'main')}^{tree}`,
    );
    await s.world.git(s.world.remote, 'update-ref', 'refs/heads/rmapp/issue-20', human);
    await reviewComment(s, pr.number, '@rmapp make it right\nWRITE impl.txt right');
    const { run, entered } = await reviewRun(s, pr.number);
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    expect(entered).toContain('applyingChanges');
    const head = await s.world.git(s.world.remote, 'rev-parse', 'refs/heads/rmapp/issue-20');
    expect(await s.world.git(s.world.remote, 'rev-parse', `${head}^`), "the person's commit is under rmapp's").toBe(human);
    expect(answers(s, pr.number)).toEqual([expect.stringMatching(/^@alice pushed [0-9a-f]{12}\./)]);
  }, 90_000);

  it("a review with several comments on a person's branch: one summary says why once, nothing pushed, no reply per comment", async () => {
    await openPull(s, 21, { head: 'feature-z', author: 'bob' });
    const before = await refs(s);
    for (const body of ['@rmapp first\nWRITE a.txt a', '@rmapp second\nWRITE b.txt b'])
      s.world.emulator.addReviewComment('acme', 'widgets', 21, body, 'alice', { path: 'app.txt', line: 1, pull_request_review_id: 2101 });
    const sent = example('pull_request_review', 'submitted', (p) => {
      p.pull_request.number = 21;
      p.review.id = 2101;
      Object.assign(p.review.user, { login: 'alice', type: 'User' });
    });
    expect((await s.deliver('pull_request_review', sent)).status).toBe(202);
    const { run } = await reviewRun(s, 21);
    expect(run.workflow).toBe('ReviewResponse');
    const said = answers(s, 21);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^Addressed 0 of 2 review comments:/);
    expect(said[0]?.match(/not one rmapp created/g), 'the reason, once').toHaveLength(1);
    expect(said[0]?.match(/not done \(this pull request's branch is not rmapp's: see below\)/g)).toHaveLength(2);
    expect(await refs(s)).toBe(before);
  }, 120_000);
});

describe('a pull request changed while its review run works', () => {
  let s: ServiceWorld;
  beforeAll(async () => {
    s = await createServiceWorld();
    s.world.emulator.permissions.set('acme/widgets:alice', 'write');
  });
  afterAll(() => s?.stop());

  /** rmapp's own pull request from `rmapp/issue-<n>`, opened by the bot. */
  async function ownPull(n: number): Promise<number> {
    await s.world.git(s.world.remote, 'branch', `rmapp/issue-${n}`, 'main');
    const { data } = await s.world.github.pulls.create({
      owner: 'acme',
      repo: 'widgets',
      head: `rmapp/issue-${n}`,
      base: 'main',
      title: 'T',
      body: '',
    });
    return data.number;
  }

  /** Changes the pull request once the run has read it (its second `GET /pulls/{n}`: the delivery's is the first). */
  function afterParsing(number: number, change: (pull: { head: string; base: string }) => void) {
    let reads = 0;
    s.world.emulator.hook({
      method: 'GET',
      route: '/repos/{owner}/{repo}/pulls/{pull_number}',
      when: 'after',
      times: 2,
      run: () => {
        reads += 1;
        const pull = (s.world.emulator.pulls.get('acme/widgets') ?? []).find((p) => p.number === number);
        if (reads === 2 && pull) change(pull);
      },
    });
  }

  it('a head that became another branch while the agent worked gets nothing pushed, and the reviewer is told', async () => {
    const number = await ownPull(31);
    await s.world.git(s.world.remote, 'branch', 'feature-31', 'main');
    afterParsing(number, (pull) => (pull.head = 'feature-31'));
    const before = await refs(s);
    await reviewComment(s, number, '@rmapp change it\nWRITE impl.txt right');
    // What GitHub tells of such changes (pull_request.edited, .synchronize) starts and stops nothing: the
    // run reads the pull request itself, when it parses the comment and again before it pushes.
    // (The examples have no `edited`: an `opened` made one, its base changed, as a retarget is told.)
    const edited = example('pull_request', 'opened', (p) => {
      Object.assign(p, { action: 'edited', changes: { base: { ref: { from: 'main' }, sha: { from: p.pull_request.base.sha } } } });
      p.pull_request.number = number;
    });
    const synchronize = example('pull_request', 'synchronize', (p) => (p.pull_request.number = number));
    for (const told of [edited, synchronize])
      expect(await s.deliver('pull_request', told), told.action).toMatchObject({
        status: 202,
        body: { ignored: 'event pull_request needs no action' },
      });
    const { run, entered } = await reviewRun(s, number);
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ code: 'BRANCH_CHANGED', category: 'validation' });
    expect(entered, 'refused at the push, after the tests').toContain('applyingChanges');
    expect(await refs(s), 'nothing pushed anywhere').toBe(before);
    expect(answers(s, number)).toEqual([expect.stringMatching(/branch is no longer "rmapp\/issue-31", so rmapp pushed nothing/)]);
  }, 90_000);

  it('a pull request retargeted to another base while the run worked still gets its change on its own branch', async () => {
    const number = await ownPull(32);
    await s.world.git(s.world.remote, 'branch', 'develop', 'main');
    afterParsing(number, (pull) => (pull.base = 'develop'));
    await reviewComment(s, number, '@rmapp change it\nWRITE impl.txt right');
    const { run } = await reviewRun(s, number);
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    expect(await s.world.git(s.world.remote, 'show', 'rmapp/issue-32:impl.txt')).toBe('right');
    expect(await s.world.git(s.world.remote, 'rev-parse', 'develop'), 'the new base is untouched').toBe(
      await s.world.git(s.world.remote, 'rev-parse', 'main'),
    );
  }, 90_000);
});

describe("as a GitHub App: the pull request its own issue run opened, against a person's", () => {
  let s: ServiceWorld;
  beforeAll(async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    });
    s = await createServiceWorld({}, { app: { appId: 5151, privateKey, publicKey, installations: { 'acme/widgets': 51 } } });
    s.world.emulator.permissions.set('acme/widgets:alice', 'write');
  });
  afterAll(() => s?.stop());

  it("reviews push to the draft `@rmapp implement` opened (the App's `<slug>[bot]` is its author); a person's PR is refused", async () => {
    const { emulator } = s.world;
    emulator.issues.set('acme/widgets#50', { title: 'Add impl', body: 'PLAN write impl\nWRITE impl.txt right' });
    const asked = await s.deliver(
      'issue_comment',
      example('issue_comment', 'created', (p) => {
        p.issue.number = 50;
        delete p.issue.pull_request;
        p.comment.body = '@rmapp implement';
        Object.assign(p.comment.user, { login: 'alice', type: 'User' });
      }),
    );
    const { runId } = ((await s.service.engine.waitFor(asked.body.runId, { timeoutMs: 30_000 })).output as { outcome: { runId: string } })
      .outcome;
    const issueRun = await s.service.engine.waitFor(runId, { timeoutMs: 90_000 });
    expect(issueRun.status, JSON.stringify(issueRun.error)).toBe('succeeded');
    const own = (emulator.pulls.get('acme/widgets') ?? []).find((p) => p.head === 'rmapp/issue-50');
    expect(own?.author, 'opened as the App').toBe(BOT);

    await reviewComment(s, own?.number as number, '@rmapp add a note\nWRITE note.txt noted');
    const { run } = await reviewRun(s, own?.number as number);
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    expect(await s.world.git(s.world.remote, 'show', 'rmapp/issue-50:note.txt')).toBe('noted');

    await openPull(s, 52, { head: 'feature-52', author: 'bob' });
    const before = await refs(s);
    await reviewComment(s, 52, '@rmapp tidy\nWRITE impl.txt right');
    await expectRefused(s, 52, /branch ` feature-52 ` is not one rmapp created/);
    expect(await refs(s)).toBe(before);
    expect(emulator.violations()).toEqual([]);
  }, 180_000);
});

describe('reviewAnyBranch: an operator opts a repository in', () => {
  let s: ServiceWorld;
  beforeAll(async () => {
    s = await createServiceWorld({ RMAPP_REVIEW_ANY_BRANCH: 'acme/widgets' });
    s.world.emulator.permissions.set('acme/widgets:alice', 'write');
  });
  afterAll(() => s?.stop());

  it("pushes to a person's branch of that repository; forks and the default branch stay refused", async () => {
    await openPull(s, 41, { head: 'feature-x', author: 'bob' });
    await reviewComment(s, 41, '@rmapp make it right\nWRITE impl.txt right');
    const { run } = await reviewRun(s, 41);
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    expect(await s.world.git(s.world.remote, 'show', 'feature-x:impl.txt')).toBe('right');

    await openPull(s, 42, { head: 'feature-x', author: 'bob', headRepo: 'mallory/widgets', branch: false });
    await openPull(s, 43, { head: 'main', author: 'bob', branch: false });
    const before = await refs(s);
    await reviewComment(s, 42, '@rmapp tidy\nWRITE impl.txt wrong');
    await reviewComment(s, 43, '@rmapp tidy\nWRITE impl.txt wrong');
    expect((await reviewRun(s, 42)).run.error).toMatchObject({ code: 'FORK_PULL_REQUEST' });
    expect((await reviewRun(s, 43)).run.error).toMatchObject({ code: 'DEFAULT_BRANCH_HEAD' });
    expect(await refs(s)).toBe(before);
  }, 120_000);
});

describe('the rule itself', () => {
  it("is rmapp's own only for rmapp's login and a name rmapp gives, exactly", () => {
    const own = (ref: string, login: string | null = BOT) => headOwnership({ user: login === null ? null : { login }, head: { ref } }, BOT);
    expect(own('rmapp/issue-5')).toBe('own');
    expect(own('rmapp/issue-5', 'RMAPP[BOT]'), 'logins compare as GitHub compares them').toBe('own');
    expect(own('rmapp/issue-5', 'alice')).toBe('other-author');
    expect(own('rmapp/issue-5', null)).toBe('other-author');
    expect(own('rmapp/issue-5', 'rmapp')).toBe('other-author'); // a user named like the App, without [bot]
    for (const ref of [
      'rmapp/issue-５', // a fullwidth digit
      'rmapp／issue-5', // a fullwidth solidus
      'rmapp/issue-5\u0000',
      'rmapp/issue-5\n',
      'rmapp/issue-5\u200b',
      '\u202ermapp/issue-5',
      'RMAPP/issue-5',
      'rmapp/issue-05',
      'rmapp/issue-0',
      'rmapp/issue-5/x',
      'refs/heads/rmapp/issue-5',
      ' rmapp/issue-5',
      'feature-x',
    ])
      expect(own(ref), JSON.stringify(ref)).toBe('other-name');
  });

  it("opts in exactly the repositories listed, or all of an owner's", () => {
    expect(mayPushAnyBranch(undefined, 'acme', 'widgets')).toBe(false);
    expect(mayPushAnyBranch([], 'acme', 'widgets')).toBe(false);
    expect(mayPushAnyBranch(['acme/widgets'], 'Acme', 'Widgets')).toBe(true);
    expect(mayPushAnyBranch(['acme/*'], 'acme', 'gadgets')).toBe(true);
    expect(mayPushAnyBranch(['acme/widgets'], 'acme', 'widgets-2')).toBe(false);
    expect(mayPushAnyBranch(['acme/*'], 'acme-evil', 'widgets')).toBe(false);
    expect(mayPushAnyBranch(['other/widgets'], 'acme', 'widgets')).toBe(false);
  });

  it('shows a long name cut, in a code span longer than its backticks', () => {
    expect(shownBranch('a`b')).toBe('`` a`b ``');
    expect([...shownBranch('x'.repeat(300))].length).toBeLessThan(110);
  });

  it('is an operator setting: default none, checked at start-up naming the setting and its variable', async () => {
    const cwd = '/nonexistent-rmapp-config-dir';
    expect((await loadConfig({ env: {}, cwd })).reviewAnyBranch).toEqual([]);
    expect((await loadConfig({ env: { RMAPP_REVIEW_ANY_BRANCH: 'acme/widgets, acme/*' }, cwd })).reviewAnyBranch).toEqual([
      'acme/widgets',
      'acme/*',
    ]);
    await expect(loadConfig({ env: { RMAPP_REVIEW_ANY_BRANCH: '*' }, cwd })).rejects.toThrow(
      /reviewAnyBranch\.0: must be a repository, owner\/repo, or owner\/\* .* set RMAPP_REVIEW_ANY_BRANCH to the repositories/s,
    );
  });
});
