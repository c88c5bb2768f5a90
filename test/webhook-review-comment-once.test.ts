/**
 * A review comment reaches the service twice: its own `pull_request_review_comment` delivery and its
 * review's `pull_request_review` (a review with one comment for the bot is answered through that
 * comment). When one of the two arrives late — GitHub delays or redelivers it, or someone who kept a copy
 * sends it — while a ReviewResponse of another review runs on the pull request, the two took different
 * paths: the comment was answered by its own PRReview and again inside the ReviewResponse (or the other
 * way round), the agent making its change twice. Real service (`rmapp serve` on the GitHub emulator).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isFinalStatus } from '../src/persistence/run-status.ts';
import type { RunInfo } from '../src/state_machine/run-info.ts';
import { example, pullRequestWorld, type ServiceWorld } from './helpers/service-world.ts';

let w: ServiceWorld | null = null;
afterEach(async () => {
  await w?.stop();
  w = null;
});

const review = (id: number) =>
  example('pull_request_review', 'submitted', (p) => {
    p.pull_request.number = 7;
    p.review.id = id;
    p.review.body = '';
    p.review.user.login = 'alice';
    p.review.user.type = 'User';
    p.sender.login = 'alice';
  });

const reviewComment = (id: number, reviewId: number, body: string) =>
  example('pull_request_review_comment', 'created', (p) => {
    p.pull_request.number = 7;
    p.comment.id = id;
    p.comment.body = body;
    p.comment.pull_request_review_id = reviewId;
    p.comment.user.login = 'alice';
    p.comment.user.type = 'User';
    p.sender.login = 'alice';
  });

/** Adds review comment `body` of review `reviewId` on pull request #7 to the emulator; its id. */
const comment = (s: ServiceWorld, reviewId: number, body: string) =>
  s.world.emulator.addReviewComment('acme', 'widgets', 7, body, 'alice', { pull_request_review_id: reviewId, path: 'README.md', line: 1 });

/** Delivers and awaits the GitHubDelivery run; its outcome. */
async function deliver(s: ServiceWorld, event: string, payload: unknown) {
  const res = await s.deliver(event, payload);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const run = await s.service.engine.waitFor(res.body.runId, { timeoutMs: 60_000 });
  return (run.output as { outcome: { action: string; runId: string | null } }).outcome;
}

/** Starts review 502 with two comments for the bot, the first making the agent work 8 s; its ReviewResponse, running. */
async function runningReviewResponse(s: ServiceWorld): Promise<RunInfo> {
  comment(s, 502, '@rmapp SLEEP 8000\nWRITE two.txt two');
  comment(s, 502, '@rmapp WRITE three.txt three');
  const outcome = await deliver(s, 'pull_request_review', review(502));
  expect(outcome.action, 'review 502 starts a ReviewResponse').toBe('started');
  return s.service.engine.get(outcome.runId as string);
}

/** The runs that answered review comment `id`: its PRReviews, and the ReviewResponses whose results name it. */
async function answerers(s: ServiceWorld, id: number): Promise<string[]> {
  const runs = await s.service.engine.list({});
  for (const r of runs) if (!isFinalStatus(r.status)) await s.service.engine.waitFor(r.id, { timeoutMs: 60_000 });
  const done = await s.service.engine.list({});
  return done
    .filter(
      (r) =>
        (r.workflow === 'PRReview' && (r.input as { commentId: number }).commentId === id) ||
        (r.workflow === 'ReviewResponse' &&
          ((r.output as { results?: { commentId: number }[] } | null)?.results ?? []).some((x) => x.commentId === id)),
    )
    .map((r) => `${r.workflow} ${r.id}`);
}

describe('a review comment delivered through its review and on its own is answered once', () => {
  it('answered by its PRReview, its own delivery late while a ReviewResponse runs: not sent into that run', async () => {
    w = await pullRequestWorld('write');
    const c1 = comment(w, 501, '@rmapp WRITE one.txt one');
    const first = await deliver(w, 'pull_request_review', review(501));
    expect(first.action).toBe('started');
    await w.service.engine.waitFor(first.runId as string, { timeoutMs: 60_000 });
    const rr = await runningReviewResponse(w);
    await deliver(w, 'pull_request_review_comment', reviewComment(c1, 501, '@rmapp WRITE one.txt one'));
    expect(
      isFinalStatus((await w.service.engine.get(rr.id)).status),
      `ReviewResponse ${rr.id} still running when the late delivery acted`,
    ).toBe(false);
    expect(await answerers(w, c1), `runs that answered comment ${c1}`).toEqual([`PRReview ${first.runId}`]);
  }, 180_000);

  it('sent into a ReviewResponse by its own delivery, its review delivered after that run ended: no PRReview', async () => {
    w = await pullRequestWorld('write');
    const c1 = comment(w, 501, '@rmapp WRITE one.txt one');
    const rr = await runningReviewResponse(w);
    const own = await deliver(w, 'pull_request_review_comment', reviewComment(c1, 501, '@rmapp WRITE one.txt one'));
    expect(own, `comment ${c1} goes into the running ReviewResponse`).toEqual(
      expect.objectContaining({ action: 'signalled', runId: rr.id }),
    );
    await w.service.engine.waitFor(rr.id, { timeoutMs: 60_000 });
    const late = await deliver(w, 'pull_request_review', review(501));
    expect(late, `review 501 delivered late: its comment ${c1} was answered by ${rr.id}`).toEqual(
      expect.objectContaining({ action: 'signalled', runId: rr.id }),
    );
    expect(await answerers(w, c1), `runs that answered comment ${c1}`).toEqual([`ReviewResponse ${rr.id}`]);
  }, 180_000);
});
