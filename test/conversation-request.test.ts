/**
 * `@rmapp <request>` in a pull request's conversation is a request for a change on its branch (a
 * PRReview without a path), while commands keep their meaning and issues keep answering with help.
 */
import { expect, it } from 'vitest';
import { intentOf } from '../src/actors/delivery-intent.ts';
import { conversationRequest } from '../src/rmapp/commands.ts';
import type { GitHubEventInput } from '../src/machines/github-delivery.ts';

const event = (body: string, isPullRequest: boolean): GitHubEventInput => ({
  deliveryId: 'd-1',
  event: 'issue_comment',
  action: 'created',
  owner: 'acme',
  repo: 'widgets',
  installationId: null,
  number: 7,
  isPullRequest,
  author: 'maintainer',
  body,
  commentId: 41,
  reviewId: null,
  label: null,
});
const deps = { botName: 'rmapp', labels: {} };

it('a request in a PR conversation is a review; commands and bare mentions are not', () => {
  expect(intentOf(event('@rmapp rename the flag to --sep', true), deps)).toEqual({ kind: 'review' });
  expect(intentOf(event('Thanks! @rmapp please add a test for empty input', true), deps)).toEqual({ kind: 'review' });
  expect(intentOf(event('@rmapp status', true), deps)).toEqual({ kind: 'status' });
  expect(intentOf(event('@rmapp retry', true), deps)).toEqual({ kind: 'retry' });
  expect(intentOf(event('@rmapp', true), deps)).toEqual({ kind: 'help' });
  // On an issue, a request that is not a command still gets the help (implement is how to start).
  expect(intentOf(event('@rmapp rename the flag to --sep', false), deps)).toMatchObject({ kind: 'help' });
  expect(conversationRequest('@rmapp rename the flag', 'rmapp')).toBe('rename the flag');
  expect(conversationRequest('@rmapp implement', 'rmapp')).toBeNull();
});
