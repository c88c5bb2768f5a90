/**
 * The agent's summary is quoted as Markdown in rmapp's reply (run-texts.ts `untrustedMarkdown`), its `<`
 * escaped so that it opens no HTML: no image loaded from a URL the agent chose, no `</details>` closing
 * the reply's sections. A backslash the agent wrote before the `<` escaped that escape: `\<img …>` became
 * `\\<img …>`, a literal backslash and then the raw `<img>`, which GitHub renders. What the agent writes is
 * anyone's to choose who can write an issue, a comment or a file the agent reads.
 */
import { afterAll, expect, it } from 'vitest';
import { example, pullRequestWorld, PULL_BRANCH, type ServiceWorld } from './helpers/service-world.ts';

let w: ServiceWorld | undefined;
afterAll(async () => w?.stop());

/** Whether CommonMark reads a `<` in `text` as the start of HTML: one not escaped by an odd run of backslashes before it. */
const opensHtml = (text: string) => [...text.matchAll(/(\\*)<(?=[/a-z!?])/gi)].some((m) => (m[1] as string).length % 2 === 0);

it('a summary with a backslash before its HTML opens no HTML in the reply', async () => {
  w = await pullRequestWorld('write');
  const request = '@rmapp WRITE impl.txt right\nSAY Done. \\<img src="https://tracker.example/p.png"> \\</details>';
  const now = new Date().toISOString();
  const comment = { id: 4242, body: request, path: 'README.md', line: 1, user: { login: 'alice' }, created_at: now, updated_at: now };
  w.world.emulator.reviewComments.set('acme/widgets#7', [comment]);
  const payload = example('pull_request_review_comment', 'created', (p) => {
    Object.assign(p.comment, { id: comment.id, body: request, path: 'README.md', line: 1, pull_request_review_id: null });
    p.comment.user.login = 'alice';
    p.comment.user.type = 'User';
    p.pull_request.number = 7;
    p.pull_request.head.ref = PULL_BRANCH;
  });
  const res = await w.deliver('pull_request_review_comment', payload);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const delivery = await w.service.engine.waitFor(res.body.runId, { timeoutMs: 30_000 });
  const review = (delivery.output as { outcome: { runId: string } }).outcome.runId;
  const run = await w.service.engine.waitFor(review, { timeoutMs: 60_000 });
  expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
  const replies = (w.world.emulator.reviewComments.get('acme/widgets#7') ?? []).filter((c) => c.in_reply_to_id === comment.id);
  expect(replies.length, 'the review comment is answered').toBe(1);
  const body = replies[0]?.body ?? '';
  expect(body, 'the reply quotes the summary').toContain('tracker.example');
  expect(opensHtml(body.replace(/<!--[\s\S]*?-->/g, '')), `reply ${JSON.stringify(body)} opens HTML the agent wrote`).toBe(false);
}, 90_000);
