/**
 * `rmapp serve` driven by real GitHub webhook payloads (`@octokit/webhooks-examples`), signed with the
 * test secret: the right run starts, and bad input starts nothing.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createServiceWorld, example, issueComment, labelled, type ServiceWorld } from './helpers/service-world.ts';
import { until } from './helpers/processes.ts';

let w: ServiceWorld;
const runCount = async () => (await w.service.engine.list({ limit: 500 })).length;
const comments = (n: number) => w.world.emulator.comments.get(`acme/widgets#${n}`) ?? [];

/** The outcome of a delivery's GitHubDelivery run, once it finished. */
const outcomeOf = async (deliveryRunId: string) =>
  ((await w.service.engine.waitFor(deliveryRunId, { timeoutMs: 30_000 })).output as { outcome: { action: string; runId: string } }).outcome;

/** Adds a review comment by alice on the emulator and delivers its `pull_request_review_comment` webhook. */
async function deliverReviewComment(pullNumber: number, body: string, reviewId: number) {
  const id = w.world.emulator.addReviewComment('acme', 'widgets', pullNumber, body, 'alice', {
    path: 'README.md',
    line: 1,
    pull_request_review_id: reviewId,
  });
  const res = await w.deliver(
    'pull_request_review_comment',
    example('pull_request_review_comment', 'created', (p) => {
      p.pull_request.number = pullNumber;
      p.comment.id = id;
      p.comment.body = body;
      p.comment.user.login = 'alice';
      p.comment.pull_request_review_id = reviewId;
    }),
  );
  return { id, res };
}

beforeAll(async () => {
  w = await createServiceWorld({ RMAPP_LABELS: JSON.stringify({ 'rmapp:bug': 'bugfix' }) });
  w.world.emulator.permissions.set('acme/widgets:alice', 'write');
  w.world.emulator.permissions.set('acme/widgets:mallory', 'read');
});
afterAll(async () => w?.stop());

it('`@rmapp implement` from someone with write access runs IssueImplementation to a PR; a redelivery is the same run', async () => {
  w.world.emulator.issues.set('acme/widgets#21', { title: 'Add impl', body: 'PLAN write impl\nWRITE impl.txt right' });
  const payload = issueComment(21, 'Could you take this?\n\n@rmapp implement');
  const first = await w.deliver('issue_comment', payload);
  expect(first.status).toBe(202);
  expect(first.body.runId).toBe(`deliveries/${first.delivery}`);
  const again = await w.deliver('issue_comment', payload, { delivery: first.delivery });
  expect(again.status).toBe(202);
  expect(again.body.runId).toBe(first.body.runId);

  const delivery = await w.service.engine.waitFor(first.body.runId, { timeoutMs: 30_000 });
  expect(delivery.status).toBe('succeeded');
  const outcome = (delivery.output as { outcome: { action: string; runId: string } }).outcome;
  expect(outcome.action).toBe('started');
  expect(outcome.runId).toBe(`acme/widgets/issues/21/${first.delivery}`);
  const run = await w.service.engine.waitFor(outcome.runId, { timeoutMs: 90_000 });
  expect(run.status).toBe('succeeded');
  expect(run.workflow).toBe('IssueImplementation');
  expect(run.input).toMatchObject({ owner: 'acme', repo: 'widgets', issueNumber: 21, requestedBy: 'alice' });
  expect((w.world.emulator.pulls.get('acme/widgets') ?? []).filter((p) => p.head === 'rmapp/issue-21')).toHaveLength(1);
  expect((await w.service.engine.list({ idPrefix: 'acme/widgets/issues/21/' })).length).toBe(1);
  expect((await w.service.engine.list({ workflow: 'GitHubDelivery' })).filter((r) => r.id === first.body.runId)).toHaveLength(1);
  await until(async () => comments(21).some((c) => c.body.includes('✅ Done')), 10_000, 'the progress comment');
  // A run that succeeded leaves no workspace behind.
  await until(() => !existsSync(w.service.workspaces?.dirOf(outcome.runId) as string), 10_000, 'the workspace removal');
});

it('refuses bad signatures, missing signatures, malformed JSON and oversized bodies, storing nothing', async () => {
  const before = await runCount();
  const payload = issueComment(22, '@rmapp implement');
  expect((await w.deliver('issue_comment', payload, { sign: 'not-the-secret' })).status).toBe(401);
  expect((await w.deliver('issue_comment', payload, { sign: false })).status).toBe(401);
  expect((await w.deliver('issue_comment', null, { rawBody: '{"action": "created", ' })).status).toBe(400);
  const big = await w.deliver('issue_comment', null, { rawBody: JSON.stringify({ ...payload, padding: 'x'.repeat(2 * 1024 * 1024) }) });
  expect(big.status).toBe(413);
  expect(await runCount()).toBe(before);
});

it('checks the signature over the bytes sent: a signed body that is not valid UTF-8 is taken, its bad bytes read as U+FFFD', async () => {
  const before = await runCount();
  const text = JSON.stringify(issueComment(24, '@rmapp implement MARK'));
  // 0xFF 0xFE are no UTF-8: GitHub signs the bytes it sends, and a check over the decoded text refused them as forged.
  const [head, tail] = text.split('MARK') as [string, string];
  const raw = Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xfe]), Buffer.from(tail)]);
  const accepted = await w.deliver('issue_comment', null, { rawBody: raw });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
  expect(accepted.body.runId).toEqual(expect.any(String));
  const stored = await w.service.engine.get(accepted.body.runId as string);
  expect(JSON.stringify(stored.input)).toContain('implement \uFFFD\uFFFD');
  // The same bytes signed with another secret, or one byte changed after signing, are still refused.
  expect((await w.deliver('issue_comment', null, { rawBody: raw, sign: 'not-the-secret' })).status).toBe(401);
  expect(await runCount()).toBe(before + 1);
});

it('ignores unknown events, installation events and comments without a mention, storing nothing', async () => {
  const before = await runCount();
  const star = await w.deliver('star', example('star', 'created'));
  expect(star.status).toBe(202);
  expect(star.body.ignored).toBeTruthy();
  expect((await w.deliver('installation', example('installation', 'created'))).status).toBe(202);
  expect((await w.deliver('issue_comment', issueComment(23, 'just a comment'))).body.ignored).toMatch(/does not mention/);
  expect(await runCount()).toBe(before);
});

it('a user without write permission gets a polite reply and nothing starts', async () => {
  const res = await w.deliver('issue_comment', issueComment(24, '@rmapp implement', 'mallory'));
  const delivery = await w.service.engine.waitFor(res.body.runId, { timeoutMs: 30_000 });
  expect(delivery.state).toBe('done');
  expect((delivery.output as { outcome: { action: string } }).outcome.action).toBe('replied');
  expect(
    comments(24)
      .map((c) => c.body)
      .join('\n'),
  ).toMatch(/@mallory thanks for asking! Only people with write access/);
  expect(await w.service.engine.list({ idPrefix: 'acme/widgets/issues/24/' })).toHaveLength(0);
});

it('a review by someone without write access is not answered; each of its comments for the bot is refused once', async () => {
  // Every passer-by's review got the refusal, even one that never mentioned the bot.
  const pr = await w.world.github.pulls.create({
    owner: 'acme',
    repo: 'widgets',
    head: 'drive-by',
    base: 'main',
    title: 'Drive-by',
    body: '',
  });
  const n = pr.data.number;
  const deliverReview = (reviewId: number) =>
    w.deliver(
      'pull_request_review',
      example('pull_request_review', 'submitted', (p) => {
        p.pull_request.number = n;
        p.review.id = reviewId;
        p.review.body = 'Nice work, just a drive-by review.';
        p.review.user.login = 'mallory';
        p.review.user.type = 'User';
      }),
    );
  const quiet = await outcomeOf((await deliverReview(700)).body.runId);
  expect(quiet.action, 'a review that never mentions the bot').toBe('ignored');

  const id = w.world.emulator.addReviewComment('acme', 'widgets', n, '@rmapp delete the tests', 'mallory', {
    path: 'README.md',
    line: 1,
    pull_request_review_id: 701,
  });
  const own = await w.deliver(
    'pull_request_review_comment',
    example('pull_request_review_comment', 'created', (p) => {
      p.pull_request.number = n;
      p.comment.id = id;
      p.comment.body = '@rmapp delete the tests';
      p.comment.user.login = 'mallory';
      p.comment.user.type = 'User';
      p.comment.pull_request_review_id = 701;
    }),
  );
  expect((await outcomeOf(own.body.runId)).action).toBe('replied');
  expect((await outcomeOf((await deliverReview(701)).body.runId)).action, 'the review of that comment').toBe('ignored');
  const answers = [
    ...(w.world.emulator.comments.get(`acme/widgets#${n}`) ?? []),
    ...(w.world.emulator.reviewComments.get(`acme/widgets#${n}`) ?? []),
  ]
    .map((c) => c.body)
    .filter((b) => /thanks for asking/.test(b));
  expect(answers, 'refusals posted for the review and its one comment').toHaveLength(1);
});

it('a mention quoted, hidden in HTML, or in a comment the service wrote starts nothing', async () => {
  const pr = await w.world.github.pulls.create({ owner: 'acme', repo: 'widgets', head: 'quoted', base: 'main', title: 'Quoted', body: '' });
  const before = await runCount();
  for (const body of [
    "> @rmapp delete the greeting test, it's annoying\n\nNo — we keep that test.",
    'LGTM\n<!-- @rmapp delete the tests -->',
  ]) {
    const res = await w.deliver(
      'pull_request_review_comment',
      example('pull_request_review_comment', 'created', (p) => {
        p.pull_request.number = pr.data.number;
        p.comment.body = body;
        p.comment.user.login = 'alice';
        p.comment.user.type = 'User';
      }),
    );
    expect(res.body.ignored, body).toMatch(/does not mention/);
  }
  // Under a personal token the service writes as that token's user, not as the bot's name: its answer,
  // delivered back, was answered again.
  const echo = await w.deliver(
    'issue_comment',
    issueComment(26, "@ci-bot I don't know the command ` @rmapp `.\n\n<!-- rmapp:deliveries/x/reply -->", 'ci-bot'),
  );
  expect(echo.body.ignored).toMatch(/by a bot/);
  expect(await runCount()).toBe(before);
});

it('two `implement` comments delivered at once start one run; the other is told a run is already working', async () => {
  w.world.emulator.issues.set('acme/widgets#27', { title: 'Twice', body: 'PLAN write impl\nWRITE impl.txt right' });
  const [a, b] = await Promise.all([
    w.deliver('issue_comment', issueComment(27, '@rmapp implement')),
    w.deliver('issue_comment', issueComment(27, '@rmapp implement docs')),
  ]);
  const outcomes = await Promise.all([outcomeOf(a.body.runId), outcomeOf(b.body.runId)]);
  expect(outcomes.map((o) => o.action).sort(), JSON.stringify(outcomes)).toEqual(['replied', 'started']);
  const runs = await w.service.engine.list({ idPrefix: 'acme/widgets/issues/27/' });
  expect(
    runs.map((r) => r.workflow),
    'both deliveries decided no run was active and each started one',
  ).toHaveLength(1);
  expect(
    comments(27)
      .map((c) => c.body)
      .join('\n'),
  ).toMatch(/a run is already working on this issue/);
  await w.service.engine.waitFor(runs[0]!.id, { timeoutMs: 90_000 });
});

it('two deliveries whose ids differ only in characters a run id cannot hold are two runs', async () => {
  // `a b` and `a_b` were both stored as deliveries/a_b: the second, about another comment, was answered
  // with the first one's run and never acted on.
  const first = await w.deliver('issue_comment', issueComment(30, '@rmapp status'), { delivery: 'odd delivery' });
  const second = await w.deliver('issue_comment', issueComment(30, '@rmapp help'), { delivery: 'odd_delivery' });
  expect(first.status).toBe(202);
  expect(second.status).toBe(202);
  expect(second.body.runId, 'one run for two comments').not.toBe(first.body.runId);
  const inputs = await Promise.all([first, second].map(async (d) => (await w.service.engine.get(d.body.runId)).input as { body: string }));
  expect(inputs.map((i) => i.body)).toEqual(['@rmapp status', '@rmapp help']);

  // The issue's runs are named after the delivery too: the second `implement` answered "started" with
  // the first one's finished run, and started nothing.
  w.world.emulator.issues.set('acme/widgets#31', { title: 'Odd ids', body: 'PLAN write impl\nWRITE impl.txt right' });
  const runs: string[] = [];
  for (const delivery of ['odd impl', 'odd_impl']) {
    const d = await w.deliver('issue_comment', issueComment(31, '@rmapp implement'), { delivery });
    const outcome = await outcomeOf(d.body.runId);
    expect(outcome.action, delivery).toBe('started');
    runs.push(outcome.runId);
    await w.service.engine.waitFor(outcome.runId, { timeoutMs: 90_000 });
  }
  expect(new Set(runs).size, `one issue run for two deliveries: ${runs.join(', ')}`).toBe(2);
});

it('`retry` and `implement docs` delivered at once after a failed run start one run between them', async () => {
  // The retry's start was keyed by the failed run, the implement's by the issue's newest run (the same
  // failed run): the keys differed and both started.
  w.world.emulator.issues.set('acme/widgets#32', { title: 'Fails', body: 'PLAN write impl\nWRITE impl.txt wrong' });
  const first = await outcomeOf((await w.deliver('issue_comment', issueComment(32, '@rmapp implement --max-attempts 1'))).body.runId);
  expect((await w.service.engine.waitFor(first.runId, { timeoutMs: 90_000 })).status).toBe('failed');
  const [a, b] = await Promise.all([
    w.deliver('issue_comment', issueComment(32, '@rmapp retry')),
    w.deliver('issue_comment', issueComment(32, '@rmapp implement docs')),
  ]);
  const outcomes = await Promise.all([outcomeOf(a.body.runId), outcomeOf(b.body.runId)]);
  const runs = (await w.service.engine.list({ idPrefix: 'acme/widgets/issues/32/' })).filter((r) => r.id !== first.runId);
  expect(
    runs.map((r) => `${r.workflow} ${r.status}`),
    `two runs after one failed one: ${JSON.stringify(outcomes)}`,
  ).toHaveLength(1);
  for (const r of runs) await w.service.engine.waitFor(r.id, { timeoutMs: 90_000 }).catch(() => {});
});

it("a review's comment that ends with the service's marker is not counted as a request (as on its own event)", async () => {
  const pr = await w.world.github.pulls.create({ owner: 'acme', repo: 'widgets', head: 'marked', base: 'main', title: 'Marked', body: '' });
  for (const body of ['@rmapp rename it', "@rmapp I don't know the command ` x `.\n\n<!-- rmapp:deliveries/y/reply -->"])
    w.world.emulator.addReviewComment('acme', 'widgets', pr.data.number, body, 'alice', {
      path: 'README.md',
      line: 1,
      pull_request_review_id: 901,
    });
  const review = await w.deliver(
    'pull_request_review',
    example('pull_request_review', 'submitted', (p) => {
      p.pull_request.number = pr.data.number;
      p.review.id = 901;
      p.review.user.login = 'alice';
    }),
  );
  const outcome = await outcomeOf(review.body.runId);
  expect(outcome.action).toBe('started');
  const run = await w.service.engine.get(outcome.runId);
  expect(run.workflow, 'two comments counted: a ReviewResponse').toBe('PRReview');
  await w.service.engine.waitFor(outcome.runId, { timeoutMs: 90_000 });
});

it('an unknown command gets the help text', async () => {
  const res = await w.deliver('issue_comment', issueComment(25, '@rmapp dance'));
  await w.service.engine.waitFor(res.body.runId, { timeoutMs: 30_000 });
  const reply = comments(25)
    .map((c) => c.body)
    .join('\n');
  expect(reply).toContain("I don't know the command ` dance `");
  expect(reply).toContain('**rmapp commands**');
});

it('`implement feature` then `approve` is routed to the waiting run as a signal; `cancel` cancels', async () => {
  w.world.emulator.issues.set('acme/widgets#26', { title: 'Feature', body: 'PLAN step\nWRITE impl.txt right' });
  const started = await w.deliver('issue_comment', issueComment(26, '@rmapp implement feature --max-attempts 2'));
  const runId = (await outcomeOf(started.body.runId)).runId;
  expect((await w.service.engine.get(runId)).workflow).toBe('ComplexFeature');
  await until(async () => (await w.service.engine.get(runId)).state === 'awaitingApproval', 60_000, 'the approval wait');
  // An adversarial pass: an `approve` written before this plan was posted (delivered late, or again)
  // approved a plan its author never saw. It is answered, not applied.
  const early = issueComment(26, '@rmapp approve');
  early.comment.created_at = new Date(Date.now() - 60_000).toISOString();
  const late = await w.deliver('issue_comment', early);
  expect((await outcomeOf(late.body.runId)).action, 'an approve written before the plan').toBe('replied');
  expect((await w.service.engine.get(runId)).state, 'the run after the early approve').toBe('awaitingApproval');
  expect(comments(26).at(-1)?.body).toMatch(/was written before the plan waiting now was posted/);
  const approved = await w.deliver('issue_comment', issueComment(26, '@rmapp approve'));
  expect((await outcomeOf(approved.body.runId)).action).toBe('signalled');
  expect((await w.service.engine.waitFor(runId, { timeoutMs: 90_000 })).status).toBe('succeeded');

  w.world.emulator.issues.set('acme/widgets#27', { title: 'Slow', body: 'PLAN step' });
  const slow = await w.deliver('issue_comment', issueComment(27, '@rmapp implement feature --max-attempts 9'));
  const slowRun = (await outcomeOf(slow.body.runId)).runId;
  // The service's maxTestAttempts (3 by default) is a ceiling the command cannot raise.
  expect((await w.service.engine.get(runId)).input, '--max-attempts 2').toMatchObject({ maxTestAttempts: 2 });
  expect((await w.service.engine.get(slowRun)).input, '--max-attempts 9').toMatchObject({ maxTestAttempts: 3 });
  await until(async () => (await w.service.engine.get(slowRun)).state === 'awaitingApproval', 60_000, 'the approval wait');
  const second = await w.deliver('issue_comment', issueComment(27, '@rmapp implement'));
  await w.service.engine.waitFor(second.body.runId, { timeoutMs: 30_000 });
  expect(
    comments(27)
      .map((c) => c.body)
      .join('\n'),
  ).toMatch(/is already working on this issue/);
  const earlyCancel = issueComment(27, '@rmapp cancel');
  earlyCancel.comment.created_at = new Date((await w.service.engine.get(slowRun)).createdAt.getTime() - 60_000).toISOString();
  const lateCancel = await w.deliver('issue_comment', earlyCancel);
  expect((await outcomeOf(lateCancel.body.runId)).action, 'a cancel written before the run started').toBe('replied');
  expect((await w.service.engine.get(slowRun)).status, 'the run after the early cancel').not.toBe('cancelled');
  const cancel = await w.deliver('issue_comment', issueComment(27, '@rmapp cancel'));
  await w.service.engine.waitFor(cancel.body.runId, { timeoutMs: 30_000 });
  expect((await w.service.engine.get(slowRun)).status).toBe('cancelled');
});

it('a review comment mentioning the bot starts PRReview; a review with several starts one ReviewResponse', async () => {
  const pr = await w.world.github.pulls.create({ owner: 'acme', repo: 'widgets', head: 'main', base: 'main', title: 'PR', body: '' });
  const { id: one, res } = await deliverReviewComment(pr.data.number, '@rmapp rename it', 500);
  const outcome = await outcomeOf(res.body.runId);
  expect(outcome.action).toBe('started');
  expect((await w.service.engine.get(outcome.runId)).workflow).toBe('PRReview');
  expect((await w.service.engine.get(outcome.runId)).input).toMatchObject({ pullNumber: pr.data.number, commentId: one });

  for (const body of ['@rmapp first', '@rmapp second'])
    w.world.emulator.addReviewComment('acme', 'widgets', pr.data.number, body, 'alice', {
      path: 'README.md',
      line: 1,
      pull_request_review_id: 501,
    });
  const review = await w.deliver(
    'pull_request_review',
    example('pull_request_review', 'submitted', (p) => {
      p.pull_request.number = pr.data.number;
      p.review.id = 501;
      p.review.user.login = 'alice';
    }),
  );
  const reviewOutcome = await outcomeOf(review.body.runId);
  expect((await w.service.engine.get(reviewOutcome.runId)).workflow).toBe('ReviewResponse');

  // A new review comment while that ReviewResponse is queued or running is routed to it as a signal.
  const { id: late, res: lateRes } = await deliverReviewComment(pr.data.number, '@rmapp one more', 502);
  const lateOutcome = await outcomeOf(lateRes.body.runId);
  expect(lateOutcome).toMatchObject({ action: 'signalled', runId: reviewOutcome.runId });
  const rr = await w.service.engine.waitFor(reviewOutcome.runId, { timeoutMs: 90_000 });
  expect(rr.status).toBe('succeeded');
  expect((rr.output as { results: { commentId: number }[] }).results.map((r) => r.commentId)).toContain(late);
  const summaries = (w.world.emulator.comments.get(`acme/widgets#${pr.data.number}`) ?? []).filter((c) => c.body.startsWith('Addressed'));
  expect(summaries).toHaveLength(1);
  expect(summaries[0]?.body).toMatch(/of 3 review comments/);
});

it('a mapped label starts its template; an unmapped one is ignored', async () => {
  w.world.emulator.issues.set('acme/widgets#28', { title: 'Bug', body: 'PLAN fix\nREPRO WRITE impl.txt wrong\nFIX WRITE impl.txt right' });
  const labeled = (name: string) => labelled(28, name);
  expect((await w.deliver('issues', labeled('documentation'))).body.ignored).toMatch(/no mapped label/);
  const res = await w.deliver('issues', labeled('rmapp:bug'));
  const outcome = await outcomeOf(res.body.runId);
  const run = await w.service.engine.waitFor(outcome.runId, { timeoutMs: 90_000 });
  expect(run.workflow).toBe('BugFix');
  expect(run.status).toBe('succeeded');
});

it('a delivery whose act step re-runs after a crash finds the run it started, not a conflict', async () => {
  w.world.emulator.issues.set('acme/widgets#29', { title: 'Re-run', body: 'PLAN x\nWRITE impl.txt right' });
  const deliveryId = 'redo-29';
  const executor = w.service.executor;
  if (!executor) throw new Error('GitHub is configured in this world');
  // What the first execution of `act` did before the crash: start the issue's run with this delivery's key.
  const started = await executor.startIssueWorkflow({
    owner: 'acme',
    repo: 'widgets',
    issueNumber: 29,
    template: 'simple',
    requestedBy: 'alice',
    key: deliveryId,
  });
  const payload = issueComment(29, '@rmapp implement');
  const input = {
    deliveryId,
    event: 'issue_comment',
    action: 'created',
    owner: 'acme',
    repo: 'widgets',
    installationId: null,
    number: 29,
    isPullRequest: false,
    author: 'alice',
    body: payload.comment.body,
    commentId: payload.comment.id,
    reviewId: null,
    label: null,
  };
  const delivery = await w.service.engine.waitFor(
    await w.service.engine.start('GitHubDelivery', input, { runId: 'deliveries/redo-29-again' }),
    { timeoutMs: 30_000 },
  );
  expect((delivery.output as { outcome: { action: string; runId: string } }).outcome).toMatchObject({ action: 'started', runId: started });
  expect(
    comments(29)
      .map((c) => c.body)
      .join('\n'),
  ).not.toMatch(/already working/);
  expect((await w.service.engine.waitFor(started, { timeoutMs: 90_000 })).status).toBe('succeeded');
});

it("a review of an issue run's draft pull request waits for that run: the two never push to its branch at once", async () => {
  // An adversarial pass: runs were serialized per issue and per pull request apart, so a review comment
  // on the draft pull request ran beside the issue run still implementing, and the issue run's push was
  // then rejected (GIT_FAILED).
  w.world.emulator.issues.set('acme/widgets#41', { title: 'Slow work', body: 'PLAN write impl\nSLEEP 3000\nWRITE impl.txt right' });
  const started = await w.deliver('issue_comment', issueComment(41, '@rmapp implement'));
  const issueRun = (await outcomeOf(started.body.runId)).runId;
  let draft: { number: number } | undefined;
  await until(
    async () => {
      draft = (w.world.emulator.pulls.get('acme/widgets') ?? []).find((p) => p.head === 'rmapp/issue-41');
      return !!draft && (await w.service.engine.get(issueRun)).state === 'implementing';
    },
    60_000,
    'the draft pull request, and the issue run implementing',
  );
  const pullNumber = (draft as { number: number }).number;
  const { res } = await deliverReviewComment(pullNumber, '@rmapp add notes\nWRITE notes.txt hello', 900);
  const review = (await outcomeOf(res.body.runId)).runId;
  expect((await w.service.engine.get(review)).status, 'the review while the issue run works').toBe('pending');
  // Asked, the pull request's status says what it waits for: it answered "pending (working)".
  const asked = issueComment(pullNumber, '@rmapp status');
  asked.issue.pull_request = { url: `https://api.github.com/repos/acme/widgets/pulls/${pullNumber}` };
  const status = await outcomeOf((await w.deliver('issue_comment', asked)).body.runId);
  expect(status).toMatchObject({ action: 'replied', runId: review });
  const answer = comments(pullNumber).at(-1)?.body ?? '';
  expect(answer, 'the status of the queued review').toMatch(
    /\*\*pending\*\*: it waits for its turn \(first in line\) behind the run on issue #41 \(now: implement the change\); it starts once that run finishes/,
  );
  const done = await w.service.engine.waitFor(issueRun, { timeoutMs: 90_000 });
  expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
  const reviewed = await w.service.engine.waitFor(review, { timeoutMs: 90_000 });
  expect(reviewed.status, JSON.stringify(reviewed.error)).toBe('succeeded');
  const firstOfReview = (await w.service.engine.history(review))[0]?.at.getTime() ?? 0;
  expect(firstOfReview, 'the review began after the issue run finished').toBeGreaterThanOrEqual(done.finishedAt?.getTime() ?? Infinity);
});

it('a cancel stops the run that was there when it was written, not a run queued since', async () => {
  // An adversarial pass: the cancel was checked against the newest run (a review queued behind the one
  // working), refused as written before it, and "comment again" then cancelled the queued one.
  // rmapp's own pull request (opened by its client, from a branch it names), whose reviews run and push.
  await w.world.git(w.world.remote, 'branch', 'rmapp/issue-9100', 'main');
  const pr = await w.world.github.pulls.create({
    owner: 'acme',
    repo: 'widgets',
    head: 'rmapp/issue-9100',
    base: 'main',
    title: 'C',
    body: '',
  });
  const first = await deliverReviewComment(pr.data.number, '@rmapp slow change\nSLEEP 5000\nWRITE a.txt a', 910);
  const a = (await outcomeOf(first.res.body.runId)).runId;
  await until(async () => (await w.service.engine.get(a)).status === 'running', 30_000, 'review A to run');
  const writtenAt = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 3_000)); // more than the 2 s slack
  const second = await deliverReviewComment(pr.data.number, '@rmapp another change\nWRITE b.txt b', 911);
  const b = (await outcomeOf(second.res.body.runId)).runId;
  expect((await w.service.engine.get(b)).status, 'review B, queued behind A').toBe('pending');
  const cancel = issueComment(pr.data.number, '@rmapp cancel');
  cancel.issue.pull_request = { url: `https://api.github.com/repos/acme/widgets/pulls/${pr.data.number}` };
  cancel.comment.created_at = writtenAt;
  const cancelled = await outcomeOf((await w.deliver('issue_comment', cancel)).body.runId);
  expect(cancelled, 'the late cancel').toMatchObject({ action: 'cancelled', runId: a });
  expect((await w.service.engine.waitFor(a, { timeoutMs: 30_000 })).status).toBe('cancelled');
  expect((await w.service.engine.waitFor(b, { timeoutMs: 60_000 })).status, 'review B').not.toBe('cancelled');

  // Written while both existed: both stop (checking the newest alone cancelled the queued one while the
  // working one went on pushing).
  const third = await deliverReviewComment(pr.data.number, '@rmapp slow again\nSLEEP 5000\nWRITE c.txt c', 912);
  const c = (await outcomeOf(third.res.body.runId)).runId;
  await until(async () => (await w.service.engine.get(c)).status === 'running', 30_000, 'review C to run');
  const fourth = await deliverReviewComment(pr.data.number, '@rmapp queued change\nWRITE d.txt d', 913);
  const d = (await outcomeOf(fourth.res.body.runId)).runId;
  const both = issueComment(pr.data.number, '@rmapp cancel');
  both.issue.pull_request = { url: `https://api.github.com/repos/acme/widgets/pulls/${pr.data.number}` };
  expect(await outcomeOf((await w.deliver('issue_comment', both)).body.runId), 'the cancel of both').toMatchObject({
    action: 'cancelled',
    runId: c,
  });
  for (const id of [c, d]) expect((await w.service.engine.waitFor(id, { timeoutMs: 30_000 })).status, id).toBe('cancelled');
});
