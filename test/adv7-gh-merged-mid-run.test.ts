/**
 * A pull request merged (or closed) while its review run works — the agent and the tests take minutes —
 * gets nothing pushed to its branch, and the reviewer is told why, not "pushed".
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type ServiceWorld, settledRuns, pullRequestWorld, example, PULL_BRANCH } from './helpers/service-world.ts';

let sw: ServiceWorld | undefined;
afterEach(async () => {
  await sw?.stop();
  sw = undefined;
});

describe('a pull request closed while its review run works', () => {
  it('gets nothing pushed, and a reply that says so', async () => {
    sw = await pullRequestWorld();
    const { emulator } = sw.world;
    const head = await sw.world.git(sw.world.remote, 'rev-parse', PULL_BRANCH);
    // Open for the delivery's look and the run's reading of the request; closed right after that read.
    let reads = 0;
    emulator.hook({
      method: 'GET',
      route: '/repos/{owner}/{repo}/pulls/{pull_number}',
      when: 'after',
      times: 2,
      run: () => {
        reads += 1;
        if (reads === 2) for (const pull of emulator.pulls.get('acme/widgets') ?? []) pull.state = 'closed';
      },
    });
    const body = '@rmapp please\nWRITE impl.txt right';
    const id = emulator.addIssueComment('acme', 'widgets', 7, body, 'alice');
    const sent = example('issue_comment', 'created', (p) => {
      p.issue.number = 7;
      p.issue.pull_request = { url: 'x' };
      Object.assign(p.comment, { id, body });
      Object.assign(p.comment.user, { login: 'alice', type: 'User' });
    });
    expect((await sw.deliver('issue_comment', sent)).status).toBe(202);
    const runs = await settledRuns(sw);
    expect(reads).toBe(2);
    expect(
      await sw.world.git(sw.world.remote, 'rev-parse', PULL_BRANCH),
      'src/actors/pr-review.ts applyChanges pushed to a pull request closed while the run worked',
    ).toBe(head);
    expect(runs.find((r) => r.workflow === 'PRReview')?.status).toBe('failed');
    const said = (emulator.comments.get('acme/widgets#7') ?? []).map((c) => c.body);
    expect(said.some((b) => /This pull request is closed, so rmapp changed nothing/.test(b))).toBe(true);
    expect(said.some((b) => /pushed [0-9a-f]{12}/.test(b))).toBe(false);
  }, 60_000);
});
