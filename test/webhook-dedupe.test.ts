/**
 * One comment, one answer: GitHub may deliver the same comment or review several times under new
 * `X-GitHub-Delivery` ids, and `rmapp serve` must act and reply once (issue #16). Real signed
 * payloads against the emulator, as in server-webhooks.test.ts. A labelling, which has no id of its own,
 * is one run per signed body, whatever delivery id or event header a copy comes under.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createServiceWorld, example, labelled, type ServiceWorld } from './helpers/service-world.ts';

let w: ServiceWorld;
const comments = (n: number) => w.world.emulator.comments.get(`acme/widgets#${n}`) ?? [];
const deliveryRuns = async () => w.service.engine.list({ workflow: 'GitHubDelivery', limit: 500 });
const issueComment = (n: number, body: string) =>
  example('issue_comment', 'created', (p) => {
    p.issue.number = n;
    delete p.issue.pull_request;
    p.comment.body = body;
    p.comment.user.login = 'alice';
    p.comment.user.type = 'User';
    p.sender.login = 'alice';
  });

/** Delivers `payload` `times` times at once, each under a new delivery id; the run ids answered. */
async function deliverCopies(event: string, payload: unknown, times: number): Promise<string[]> {
  const answers = await Promise.all(Array.from({ length: times }, () => w.deliver(event, payload, { delivery: randomUUID() })));
  for (const a of answers)
    expect([a.status, a.body?.runId === undefined ? a.body : 'a run'], `delivery ${a.delivery}`).toEqual([202, 'a run']);
  return answers.map((a) => a.body.runId as string);
}

/** The delivery runs created since `before`, as `id (delivery id)` for a readable failure. */
const newRuns = async (before: Set<string>) =>
  (await deliveryRuns()).filter((r) => !before.has(r.id)).map((r) => `${r.id} (${(r.input as { deliveryId: string }).deliveryId})`);

beforeAll(async () => {
  w = await createServiceWorld({ RMAPP_LABELS: JSON.stringify({ 'rmapp:bug': 'bugfix' }) });
  w.world.emulator.permissions.set('acme/widgets:alice', 'write');
});
afterAll(async () => w?.stop());

it('one comment delivered 20 times under 20 delivery ids is one run and one reply; two comments are two', async () => {
  const before = new Set((await deliveryRuns()).map((r) => r.id));
  const first = issueComment(41, '@rmapp status');
  const runIds = await deliverCopies('issue_comment', first, 20);
  expect(new Set(runIds), 'every copy is answered with the first copy’s run').toEqual(new Set([runIds[0]]));
  expect(await newRuns(before)).toHaveLength(1);
  await w.service.engine.waitFor(runIds[0] as string, { timeoutMs: 30_000 });
  expect(comments(41).map((c) => c.body)).toEqual([expect.stringContaining('@alice no run has worked on this yet.')]);

  const second = issueComment(41, '@rmapp status');
  expect(second.comment.id).not.toBe(first.comment.id);
  const secondRunIds = await deliverCopies('issue_comment', second, 3);
  expect(new Set(secondRunIds)).toEqual(new Set([secondRunIds[0]]));
  expect(secondRunIds[0]).not.toBe(runIds[0]);
  await w.service.engine.waitFor(secondRunIds[0] as string, { timeoutMs: 30_000 });
  expect(await newRuns(before)).toHaveLength(2);
  expect(comments(41)).toHaveLength(2);
});

it('`implement` delivered 20 times starts one run and never answers "already working"', async () => {
  w.world.emulator.issues.set('acme/widgets#42', { title: 'Add impl', body: 'PLAN write impl.txt\nWRITE impl.txt right' });
  const runIds = await deliverCopies('issue_comment', issueComment(42, '@rmapp implement'), 20);
  expect(new Set(runIds)).toEqual(new Set([runIds[0]]));
  const delivery = await w.service.engine.waitFor(runIds[0] as string, { timeoutMs: 30_000 });
  const started = (delivery.output as { outcome: { action: string; runId: string } }).outcome;
  expect(started.action).toBe('started');
  const issueRuns = (await w.service.engine.list({ idPrefix: 'acme/widgets/issues/42/' })).map((r) => r.id);
  expect(issueRuns).toEqual([started.runId]);
  // Whatever becomes of the run itself (another test's business), no copy answered.
  await w.service.engine.cancel(started.runId, 'test over');
  await w.service.engine.waitFor(started.runId, { timeoutMs: 90_000 });
  await Promise.all([...new Set(runIds)].map((id) => w.service.engine.waitFor(id, { timeoutMs: 30_000 })));
  const duplicates = comments(42).filter((c) => /already working/.test(c.body));
  expect(
    duplicates.map((c) => c.body),
    'replies to copies of the one comment',
  ).toEqual([]);
});

it('a review delivered 5 times under new delivery ids is one run', async () => {
  const before = new Set((await deliveryRuns()).map((r) => r.id));
  const review = example('pull_request_review', 'submitted', (p) => {
    p.pull_request.number = 43;
    p.review.user.login = 'alice';
  });
  const reviewRuns = await deliverCopies('pull_request_review', review, 5);
  expect(new Set(reviewRuns)).toEqual(new Set([reviewRuns[0]]));
  expect(await newRuns(before)).toHaveLength(1);
  await w.service.engine.waitFor(reviewRuns[0] as string, { timeoutMs: 30_000 });
});

it('a labelling replayed under new delivery ids after its run ended is that run; labelling again later is a new one', async () => {
  w.world.emulator.issues.set('acme/widgets#44', { title: 'Label me', body: 'PLAN x\nWRITE impl.txt right' });
  const before = new Set((await deliveryRuns()).map((r) => r.id));
  const first = labelled(44, 'rmapp:bug', new Date(Date.now() - 60_000).toISOString());
  const [runId] = await deliverCopies('issues', first, 1);
  const delivery = await w.service.engine.waitFor(runId as string, { timeoutMs: 30_000 });
  const started = (delivery.output as { outcome: { action: string; runId: string } }).outcome;
  expect(started.action).toBe('started');
  await w.service.engine.cancel(started.runId, 'test over');
  await w.service.engine.waitFor(started.runId, { timeoutMs: 90_000 });

  // The same signed bytes under new delivery ids — GitHub's signature does not cover the headers.
  const replayed = await deliverCopies('issues', first, 3);
  expect(new Set(replayed), 'each replay is answered with the first delivery’s run').toEqual(new Set([runId]));
  expect(await newRuns(before), 'delivery runs').toHaveLength(1);
  const issueRuns = async () => (await w.service.engine.list({ idPrefix: 'acme/widgets/issues/44/' })).map((r) => r.id);
  expect(await issueRuns(), 'runs on the issue').toEqual([started.runId]);

  // The label added again later: another body (the issue changed), another request.
  const [again] = await deliverCopies('issues', labelled(44, 'rmapp:bug', new Date().toISOString()), 1);
  expect(again).not.toBe(runId);
  const second = await w.service.engine.waitFor(again as string, { timeoutMs: 30_000 });
  const secondStarted = (second.output as { outcome: { action: string; runId: string } }).outcome;
  expect(await newRuns(before)).toHaveLength(2);
  if (secondStarted.action === 'started') {
    await w.service.engine.cancel(secondStarted.runId, 'test over');
    await w.service.engine.waitFor(secondStarted.runId, { timeoutMs: 90_000 });
  }
});

it('a signed copy of an event older than GitHub redelivers starts nothing, whatever the event; one of two days ago is answered', async () => {
  // GitHub redelivers only the last 3 days; the run that would recognise an older copy may have been
  // deleted by retention (succeeded runs: 7 days), so such a copy must not start the work again.
  const daysAgo = (d: number) => new Date(Date.now() - d * 86_400_000).toISOString();
  w.world.emulator.issues.set('acme/widgets#47', { title: 'Label me', body: 'PLAN x\nWRITE impl.txt right' });
  const before = new Set((await deliveryRuns()).map((r) => r.id));
  const stale: [string, unknown][] = [
    [
      'issue_comment',
      { ...issueComment(45, '@rmapp status'), comment: { ...issueComment(45, '@rmapp status').comment, created_at: daysAgo(4) } },
    ],
    // A leap day is a day: stale, not refused as a malformed time.
    [
      'issue_comment',
      {
        ...issueComment(45, '@rmapp status'),
        comment: { ...issueComment(45, '@rmapp status').comment, created_at: '2024-02-29T10:00:00Z' },
      },
    ],
    ['issues', labelled(47, 'rmapp:bug', daysAgo(3.1))],
    [
      'pull_request_review',
      example('pull_request_review', 'submitted', (p) => {
        p.pull_request.number = 46;
        p.review.user.login = 'alice';
        p.review.submitted_at = daysAgo(8);
      }),
    ],
    [
      'pull_request_review_comment',
      example('pull_request_review_comment', 'created', (p) => {
        p.pull_request.number = 46;
        p.comment.body = '@rmapp please rename this';
        p.comment.user.login = 'alice';
        p.comment.user.type = 'User';
        p.comment.created_at = p.comment.updated_at = p.pull_request.updated_at = daysAgo(30);
      }),
    ],
  ];
  for (const [event, payload] of stale) {
    const answer = await w.deliver(event, payload, { delivery: randomUUID() });
    expect([answer.status, answer.body], `${event}`).toEqual([
      202,
      { ignored: expect.stringMatching(/ h ago: GitHub redelivers nothing older than 73 h/) },
    ]);
  }
  expect(await newRuns(before), 'runs started by copies of old events').toEqual([]);
  expect(comments(45), 'replies to an old comment').toEqual([]);

  // Times GitHub never sends, signed anyway: a 400 naming the field, whatever the value's size or depth
  // (written into the body as JSON text: a value 5,000 arrays deep overflows JSON.stringify's stack).
  for (const [what, json] of [
    ['a word', '"yesterday"'],
    ['a loose date', JSON.stringify(`Jan 1 2020 (${'y'.repeat(800_000)})`)],
    ['a number', '1796446308'],
    ['arrays 5,000 deep', '['.repeat(5_000) + ']'.repeat(5_000)],
    // Days and hours the calendar has not (Date.parse reads the first as 2 March, the last as the next day).
    ['30 February', JSON.stringify(`${new Date().getUTCFullYear()}-02-30T10:00:00Z`)],
    ['31 April', JSON.stringify(`${new Date().getUTCFullYear()}-04-31T10:00:00+02:00`)],
    ['29 February of a common year', '"2027-02-29T10:00:00Z"'],
    ['hour 24', JSON.stringify(`${new Date().toISOString().slice(0, 10)}T24:00:00Z`)],
  ] as const) {
    const odd = issueComment(45, '@rmapp status');
    odd.comment.created_at = 'TIME';
    const rawBody = JSON.stringify(odd).replace('"TIME"', json);
    const refused = await w.deliver('issue_comment', null, { rawBody });
    expect([refused.status, refused.body.error], what).toEqual([400, expect.stringContaining('comment.created_at: not a date-time')]);
    expect(JSON.stringify(refused.body).length, `${what}: the answer echoes the value`).toBeLessThan(400);
  }

  // A review comment drafted days before its review was submitted is dated by the submission (its pull
  // request's updated_at), not refused as a copy.
  const drafted = example('pull_request_review_comment', 'created', (p) => {
    p.pull_request.number = 46;
    p.comment.body = '@rmapp status';
    p.comment.user.login = 'alice';
    p.comment.user.type = 'User';
    p.comment.created_at = p.comment.updated_at = daysAgo(5);
    p.pull_request.updated_at = daysAgo(0);
  });
  const draftedAnswer = await w.deliver('pull_request_review_comment', drafted, { delivery: randomUUID() });
  expect([draftedAnswer.status, typeof draftedAnswer.body.runId], JSON.stringify(draftedAnswer.body)).toEqual([202, 'string']);
  await w.service.engine.waitFor(draftedAnswer.body.runId as string, { timeoutMs: 30_000 });

  const recent = issueComment(45, '@rmapp status');
  recent.comment.created_at = daysAgo(2);
  const [runId] = await deliverCopies('issue_comment', recent, 1);
  await w.service.engine.waitFor(runId as string, { timeoutMs: 30_000 });
  expect(await newRuns(before)).toHaveLength(2);
  expect(comments(45)).toHaveLength(1);
});
