/**
 * A review whose summary (its own text) asks the bot for something while none of its comments mentions
 * it: GitHub notifies the bot, so the reviewer gets an answer — where to ask, or that they may not —
 * rather than silence. A review that does not mention the bot still gets none.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type ServiceWorld, pullRequestWorld, example } from './helpers/service-world.ts';

let sw: ServiceWorld | undefined;
afterEach(async () => {
  await sw?.stop();
  sw = undefined;
});

async function delivered(s: ServiceWorld, runId: string) {
  for (let i = 0; i < 300; i++) {
    const run = await s.service.engine.get(runId);
    if (['succeeded', 'failed', 'cancelled'].includes(run.status)) return run;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${runId} did not finish`);
}

function review(body: string, login: string) {
  return example('pull_request_review', 'submitted', (p) => {
    p.pull_request.number = 7;
    Object.assign(p.review, { body });
    Object.assign(p.review.user, { login, type: 'User' });
  });
}

describe('a review that mentions the bot only in its summary', () => {
  for (const [who, permission, answer] of [
    ['a writer', 'write', /in a review comment on the code, or in this pull request's conversation/],
    ['a reader', 'read', /Only people with write access/],
  ] as const) {
    it(`by ${who} is answered once`, async () => {
      sw = await pullRequestWorld(permission);
      const asked = await sw.deliver('pull_request_review', review('Looks fine. @rmapp rename `foo` to `bar` please', 'alice'));
      const quiet = await sw.deliver('pull_request_review', review('Looks fine to me.', 'alice'));
      expect(asked.status).toBe(202);
      expect(quiet.status).toBe(202);
      await delivered(sw, asked.body.runId);
      await delivered(sw, quiet.body.runId);
      const said = (sw.world.emulator.comments.get('acme/widgets#7') ?? []).map((c) => c.body);
      expect(said, 'src/actors/delivery-review.ts left a review summary that mentions the bot unanswered').toHaveLength(1);
      expect(said[0]).toMatch(/^@alice /);
      expect(said[0]).toMatch(answer);
    }, 60_000);
  }
});
