/**
 * What a careless person types around a command on a pull request: a question mark, an invisible
 * character pasted with it, a colon after the name. Each is still that command — never a change request
 * for the agent (which could push), never only the help text.
 */
import { describe, expect, it } from 'vitest';
import { intentOf } from '../src/actors/delivery-intent.ts';
import type { GitHubEventInput } from '../src/machines/github-delivery.ts';

const onPull = (body: string): GitHubEventInput => ({
  deliveryId: 'd1',
  event: 'issue_comment',
  action: 'created',
  owner: 'acme',
  repo: 'widgets',
  installationId: null,
  number: 7,
  isPullRequest: true,
  author: 'alice',
  body,
  commentId: 1,
  reviewId: null,
  label: null,
});

describe('a command with what people type around it, on a pull request', () => {
  for (const [body, kind] of [
    ['@rmapp status?', 'status'],
    ['@rmapp cancel?', 'cancel'],
    ['@rmapp retry?!', 'retry'],
    ['@rmapp\u200b cancel', 'cancel'],
    ['@rmapp cancel\u200b', 'cancel'],
    ['@rmapp\u2060 status', 'status'],
    ['@rmapp: status', 'status'],
  ] as const) {
    it(`${JSON.stringify(body)} is ${kind}`, () => {
      expect(
        intentOf(onPull(body), { botName: 'rmapp', labels: {} }).kind,
        `src/rmapp/commands.ts parseCommand misread ${JSON.stringify(body)}`,
      ).toBe(kind);
    });
  }

  it('a passing mention followed by a comma is no change request', () => {
    expect(intentOf(onPull('thanks @rmapp, looks good'), { botName: 'rmapp', labels: {} }).kind).toBe('help');
  });

  it('a request with a question mark stays a request', () => {
    expect(intentOf(onPull('@rmapp why does this fail?'), { botName: 'rmapp', labels: {} }).kind).toBe('review');
  });
});
