/**
 * A comment within GitHub's limit (65,536 characters, counted as code points) is a delivery rmapp
 * takes (src/machines/github-delivery.ts `githubEventInput`, `body`), also when most of it is emoji, each
 * two UTF-16 units: zod 4's string `max` counts code points (measured: `z.string().max(10)` takes 6 emoji,
 * 12 units), so a limit of 65,536 is GitHub's own; one counted in units would refuse the delivery (400)
 * and lose its command.
 */
import { expect, it } from 'vitest';
import { githubEventInput } from '../src/machines/github-delivery.ts';

const delivery = (body: string) => ({
  deliveryId: 'd-1',
  event: 'issue_comment',
  action: 'created',
  owner: 'acme',
  repo: 'widgets',
  installationId: 1,
  number: 1,
  isPullRequest: false,
  author: 'octocat',
  body,
  commentId: 1,
  reviewId: null,
  label: null,
});

it("takes a comment of 65,536 characters of emoji, GitHub's largest, and refuses a longer one", () => {
  const largest = `@rmapp implement ${'🎉'.repeat(65_536 - 17)}`;
  expect([...largest]).toHaveLength(65_536);
  expect(githubEventInput.safeParse(delivery(largest)).success, 'a comment GitHub accepts').toBe(true);
  expect(githubEventInput.safeParse(delivery(`${largest}🎉🎉`)).success, 'a comment longer than GitHub takes').toBe(false);
});
