/**
 * A review comment deleted while its run works: the change is still pushed (it was asked for by someone
 * allowed to), and the answer — which went into the comment's thread — comes in the pull request's
 * conversation, rather than the run failing after its push with no one told.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type ServiceWorld, pullRequestWorld, example } from './helpers/service-world.ts';

let sw: ServiceWorld | undefined;
afterEach(async () => {
  await sw?.stop();
  sw = undefined;
});

describe('a review comment deleted before its answer', () => {
  it('is answered in the conversation, once', async () => {
    sw = await pullRequestWorld();
    const { emulator } = sw.world;
    const body = '@rmapp fix\nWRITE impl.txt right';
    const id = emulator.addReviewComment('acme', 'widgets', 7, body, 'alice');
    // Deleted once the run has read it: GitHub answers a reply to it 404.
    emulator.failNext('POST', /\/pulls\/7\/comments\/\d+\/replies$/, 404, { message: 'Not Found', times: 100 });
    const sent = example('pull_request_review_comment', 'created', (p) => {
      p.pull_request.number = 7;
      Object.assign(p.comment, { id, body, pull_request_review_id: null });
      Object.assign(p.comment.user, { login: 'alice', type: 'User' });
    });
    expect((await sw.deliver('pull_request_review_comment', sent)).status).toBe(202);
    let runs = await sw.service.engine.list({});
    for (let i = 0; i < 600 && !(runs.length > 1 && runs.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.status))); i++) {
      await new Promise((r) => setTimeout(r, 100));
      runs = await sw.service.engine.list({});
    }
    const review = runs.find((r) => r.workflow === 'PRReview');
    expect(review?.status, `src/actors/pr-review.ts replyInThread: ${JSON.stringify(review?.error)}`).toBe('succeeded');
    const said = (emulator.comments.get('acme/widgets#7') ?? []).map((c) => c.body);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^@alice pushed [0-9a-f]{12}\./);
    expect(said[0]).toMatch(/was deleted, so the answer is here/);
  }, 60_000);
});
