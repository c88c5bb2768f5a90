/**
 * A review request deleted before its run reads it: the answer says so, and does not send the reader to
 * `retry` (which would read the deleted comment again, and fail the same way).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type ServiceWorld, pullRequestWorld, example } from './helpers/service-world.ts';

let sw: ServiceWorld | undefined;
afterEach(async () => {
  await sw?.stop();
  sw = undefined;
});

describe('a review request deleted before its run reads it', () => {
  for (const kind of ['conversation', 'review'] as const) {
    it(`(${kind} comment) is answered with what happened`, async () => {
      sw = await pullRequestWorld();
      const { emulator } = sw.world;
      // Delivered, but no longer on GitHub (the emulator never had it).
      const body = '@rmapp fix\nWRITE impl.txt right';
      const event = kind === 'conversation' ? 'issue_comment' : 'pull_request_review_comment';
      const sent =
        kind === 'conversation'
          ? example(event, 'created', (p) => {
              p.issue.number = 7;
              p.issue.pull_request = { url: 'x' };
              Object.assign(p.comment, { body });
              Object.assign(p.comment.user, { login: 'alice', type: 'User' });
            })
          : example(event, 'created', (p) => {
              p.pull_request.number = 7;
              Object.assign(p.comment, { body, pull_request_review_id: null });
              Object.assign(p.comment.user, { login: 'alice', type: 'User' });
            });
      expect((await sw.deliver(event, sent)).status).toBe(202);
      let runs = await sw.service.engine.list({});
      for (let i = 0; i < 600 && !(runs.length > 1 && runs.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.status))); i++) {
        await new Promise((r) => setTimeout(r, 100));
        runs = await sw.service.engine.list({});
      }
      expect(runs.find((r) => r.workflow === 'PRReview')?.status).toBe('failed');
      const said = (emulator.comments.get('acme/widgets#7') ?? []).map((c) => c.body);
      expect(said).toHaveLength(1);
      expect(said[0], 'src/actors/pr-review.ts parseComment answered a deleted comment unclearly').toMatch(
        /The comment was deleted before rmapp read it/,
      );
      expect(said[0]).not.toMatch(/retry/);
    }, 60_000);
  }
});
