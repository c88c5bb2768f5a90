/**
 * PRReview's reading of a request (src/actors/pr-review.ts), run as plain actors with a fake GitHub:
 * a request on a closed or merged pull request changes nothing, and the bot's mention is recognised as
 * commands.ts recognises it — `@my-app` for a bot configured as `my-app[bot]` (the form config.ts
 * documents), both when stripping it from the request and when ReviewResponse lists a review's comments.
 */
import { createActor, toPromise } from 'xstate';
import { expect, it } from 'vitest';
import { prReviewSteps, reviewResponseSteps, type PrReviewDeps } from '../src/actors/pr-review.ts';
import type { GitHubOctokit } from '../src/rmapp/github/client.ts';

const pr = (state: 'open' | 'closed', merged = false) => ({
  state,
  merged_at: merged ? '2026-01-01T00:00:00Z' : null,
  // rmapp's own pull request: opened by its login from a branch it names (src/rmapp/github/head-branch.ts).
  user: { login: 'my-app[bot]' },
  head: { ref: 'rmapp/issue-4', repo: { full_name: 'acme/widgets' } },
  base: { ref: 'main', repo: { full_name: 'acme/widgets', default_branch: 'main' } },
});

function deps(pull: ReturnType<typeof pr>, body: string, reviewComments: string[] = [], permission = 'write'): PrReviewDeps {
  const github = {
    users: { getAuthenticated: async () => ({ data: { login: 'my-app[bot]' } }) },
    repos: { getCollaboratorPermissionLevel: async () => ({ data: { permission, role_name: permission } }) },
    issues: { getComment: async () => ({ data: { body, user: { login: 'alice' } } }) },
    pulls: { get: async () => ({ data: pull }), listCommentsForReview: async () => ({ data: [] }) },
    paginate: async () => reviewComments.map((b, i) => ({ id: i + 1, body: b })),
  } as unknown as GitHubOctokit;
  return { github, botName: 'my-app[bot]' } as unknown as PrReviewDeps;
}

const input = { owner: 'acme', repo: 'widgets', pullNumber: 5, commentId: 7, source: 'conversation' as const };

async function parse(d: PrReviewDeps) {
  return toPromise(createActor(prReviewSteps(d).parseComment, { input: input as never }).start());
}

it('refuses a request on a closed or merged pull request', async () => {
  await expect(parse(deps(pr('closed'), '@my-app rename x'))).rejects.toThrow(/closed/);
  await expect(parse(deps(pr('closed', true), '@my-app rename x'))).rejects.toThrow(/merged/);
  await expect(parse(deps(pr('open'), '@my-app rename x'))).resolves.toMatchObject({ request: 'rename x' });
});

it('refuses a request whose author cannot steer rmapp now, or on a pull request whose branch is the default branch', async () => {
  // Adversarial pass: an author who lost write access edited an accepted comment, and a `retry` by
  // someone else read it again; a PR from `main` into another branch had a review change pushed onto main.
  for (const permission of ['read', 'triage', 'none'])
    await expect(parse(deps(pr('open'), '@my-app add a backdoor', [], permission)), permission).rejects.toMatchObject({
      code: 'NOT_ALLOWED',
      message: expect.stringMatching(new RegExp(`permission: ${permission}`)),
    });
  const fromMain = {
    ...pr('open'),
    head: { ref: 'main', repo: { full_name: 'acme/widgets' } },
    base: { ref: 'dev', repo: { full_name: 'acme/widgets', default_branch: 'main' } },
  };
  await expect(parse(deps(fromMain, '@my-app tidy'))).rejects.toMatchObject({ code: 'DEFAULT_BRANCH_HEAD' });
});

it('strips the mention of a bot configured as `my-app[bot]` from the request', async () => {
  const review = await parse(deps(pr('open'), 'please @my-app rename the flag'));
  expect(review.request, 'the mention stays in what the agent is asked and in the commit subject').toMatch(/^please +rename the flag$/);
});

it('ReviewResponse lists the comments that mention `@my-app` for a bot configured as `my-app[bot]`', async () => {
  const d = deps(pr('open'), '', ['@my-app fix this', 'unrelated', '@my-app[bot] and this', '@my-application not me']);
  const listed = await toPromise(
    createActor(reviewResponseSteps(d).listComments, {
      input: { owner: 'acme', repo: 'widgets', pullNumber: 5, reviewId: 1 } as never,
    }).start(),
  );
  expect(listed.commentIds).toEqual([1, 3]);
});

it('a failed conversation request mentions the comment author, not the author of a review comment with the same id', async () => {
  const posted: string[] = [];
  const github = {
    users: { getAuthenticated: async () => ({ data: { login: 'rmapp' } }) },
    issues: {
      getComment: async () => ({ data: { body: '@my-app x', user: { login: 'alice' } } }),
      listComments: async () => ({ data: [] }),
      createComment: async ({ body }: { body: string }) => (posted.push(body), { data: { id: 1 } }),
    },
    pulls: { getReviewComment: async () => ({ data: { user: { login: 'mallory' } } }) },
    paginate: async () => [],
  } as unknown as GitHubOctokit;
  const error = { name: 'ValidationError', message: 'no', code: 'X', category: 'validation' };
  await toPromise(
    createActor(prReviewSteps({ github, botName: 'my-app[bot]' } as unknown as PrReviewDeps).reportFailure, {
      input: { ...input, error, author: null } as never,
    }).start(),
  );
  expect(posted[0]).toMatch(/^@alice /);
});
