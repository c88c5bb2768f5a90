/**
 * A review request is read again from GitHub when its run works on it (a run queued behind another, a
 * retry): a comment its author edited meanwhile into "never mind" — or, in the conversation, into a
 * command — no longer asks for a change, and nothing may be pushed for it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type ServiceWorld, settledRuns, pullRequestWorld, example, PULL_BRANCH } from './helpers/service-world.ts';

let sw: ServiceWorld | undefined;
afterEach(async () => {
  await sw?.stop();
  sw = undefined;
});

const replies = (s: ServiceWorld) =>
  [...(s.world.emulator.comments.get('acme/widgets#7') ?? []), ...(s.world.emulator.reviewComments.get('acme/widgets#7') ?? [])].map(
    (c) => c.body,
  );

describe('a review request edited after it was sent', () => {
  for (const [what, now] of [
    ['to no longer mention the bot', 'Never mind, I did it myself.\nWRITE impl.txt right'],
    ['into a command', '@rmapp cancel\nWRITE impl.txt right'],
  ] as const) {
    it(`in the conversation, ${what}: nothing is pushed and the reply says why`, async () => {
      sw = await pullRequestWorld();
      const head = await sw.world.git(sw.world.remote, 'rev-parse', PULL_BRANCH);
      // The comment as GitHub has it when the run reads it; the delivery carries it as it was sent.
      const id = sw.world.emulator.addIssueComment('acme', 'widgets', 7, now, 'alice');
      const sent = example('issue_comment', 'created', (p) => {
        p.issue.number = 7;
        p.issue.pull_request = { url: 'x' };
        Object.assign(p.comment, { id, body: '@rmapp please\nWRITE impl.txt right' });
        Object.assign(p.comment.user, { login: 'alice', type: 'User' });
      });
      expect((await sw.deliver('issue_comment', sent)).status).toBe(202);
      const runs = await settledRuns(sw);
      const review = runs.find((r) => r.workflow === 'PRReview');
      expect(
        await sw.world.git(sw.world.remote, 'rev-parse', PULL_BRANCH),
        'src/actors/pr-review.ts parseComment pushed an edited-away request',
      ).toBe(head);
      expect(review?.status).toBe('failed');
      expect(replies(sw).some((b) => /edited after it was sent/.test(b))).toBe(true);
    }, 60_000);
  }

  it('a review comment edited to no longer mention the bot: nothing is pushed', async () => {
    sw = await pullRequestWorld();
    const head = await sw.world.git(sw.world.remote, 'rev-parse', PULL_BRANCH);
    const id = sw.world.emulator.addReviewComment('acme', 'widgets', 7, 'ok, done by hand\nWRITE impl.txt right', 'alice');
    const sent = example('pull_request_review_comment', 'created', (p) => {
      p.pull_request.number = 7;
      Object.assign(p.comment, { id, body: '@rmapp fix\nWRITE impl.txt right', pull_request_review_id: null });
      Object.assign(p.comment.user, { login: 'alice', type: 'User' });
    });
    expect((await sw.deliver('pull_request_review_comment', sent)).status).toBe(202);
    await settledRuns(sw);
    expect(
      await sw.world.git(sw.world.remote, 'rev-parse', PULL_BRANCH),
      'src/actors/pr-review.ts parseComment pushed an edited-away request',
    ).toBe(head);
    expect(replies(sw).some((b) => /edited after it was sent/.test(b))).toBe(true);
  }, 60_000);
});
