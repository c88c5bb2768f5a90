/**
 * An issue closed while its run works: the person who closed it decided the work is not wanted. Its
 * `issues.closed` delivery cancels the run at once (one waiting for plan approval too) and says so once;
 * when that delivery never comes (the webhook not subscribed to, lost), the run finds the issue closed
 * before it marks its pull request ready and stops there, saying so once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServiceWorld, labelled, settledRuns, type ServiceWorld } from './helpers/service-world.ts';
import { issueClosed } from './helpers/issue-events.ts';

let sw: ServiceWorld | undefined;
afterEach(async () => {
  await sw?.stop();
  sw = undefined;
});

const said = (s: ServiceWorld, issue: number) => (s.world.emulator.comments.get(`acme/widgets#${issue}`) ?? []).map((c) => c.body);

describe('an issue closed while its run works', () => {
  it('with no webhook about it: the draft is not marked ready, no review is asked for, and the issue is told once', async () => {
    sw = await createServiceWorld({ RMAPP_LABELS: JSON.stringify({ rmapp: 'simple' }) });
    const { emulator } = sw.world;
    emulator.permissions.set('acme/widgets:alice', 'write');
    emulator.issues.set('acme/widgets#3', { title: 't', body: 'WRITE impl.txt right' });
    // Closed once the draft is open: the run implements and tests with nobody telling it.
    emulator.hook({
      method: 'POST',
      route: '/repos/{owner}/{repo}/pulls',
      when: 'after',
      run: () => {
        emulator.issues.set('acme/widgets#3', {
          title: 't',
          body: 'WRITE impl.txt right',
          state: 'closed',
          closedAt: new Date().toISOString(),
        });
      },
    });
    expect((await sw.deliver('issues', labelled(3, 'rmapp'))).status).toBe(202);
    const runs = await settledRuns(sw);
    const pulls = emulator.pulls.get('acme/widgets') ?? [];
    expect(
      pulls.map((p) => ({ draft: p.draft, reviewers: p.requestedReviewers })),
      'the pull request was readied over the close',
    ).toEqual([{ draft: true, reviewers: [] }]);
    expect(runs.find((r) => r.workflow === 'IssueImplementation')?.status).toBe('failed');
    const comments = said(sw, 3);
    expect(
      comments.filter((b) => /done: /.test(b)),
      comments.join('\n---\n'),
    ).toEqual([]);
    expect(
      comments.filter((b) => /I stopped: the issue was closed while I worked/.test(b)),
      comments.join('\n---\n'),
    ).toHaveLength(1);
  }, 90_000);

  it('its issues.closed delivery cancels a run waiting for plan approval, and says so once', async () => {
    sw = await createServiceWorld({ RMAPP_LABELS: JSON.stringify({ 'rmapp:feature': 'feature' }) });
    const { emulator } = sw.world;
    emulator.permissions.set('acme/widgets:alice', 'write');
    emulator.issues.set('acme/widgets#3', { title: 't', body: 'WRITE impl.txt right' });
    expect((await sw.deliver('issues', labelled(3, 'rmapp:feature'))).status).toBe(202);
    let run;
    for (let i = 0; i < 600 && run?.state !== 'awaitingApproval'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      run = (await sw.service.engine.list({ workflow: 'ComplexFeature' }))[0];
    }
    expect(run?.state).toBe('awaitingApproval');
    // Closed by someone without write access (its author may close it): closing is not steering.
    const closing = issueClosed(3, 'bob');
    expect((await sw.deliver('issues', closing)).status).toBe(202);
    // The same delivery again is the same event, answered once.
    await sw.deliver('issues', closing);
    await settledRuns(sw);
    expect((await sw.service.engine.get(run!.id)).status, 'the run kept waiting on a closed issue').toBe('cancelled');
    expect(emulator.pulls.get('acme/widgets') ?? []).toEqual([]);
    const comments = said(sw, 3);
    expect(
      comments.filter((b) => /closing the issue stopped the run/.test(b)),
      comments.join('\n---\n'),
    ).toHaveLength(1);
    // An issue with no run: nothing stored, nothing said.
    const other = await sw.deliver('issues', issueClosed(4));
    expect(other.body).toEqual({ ignored: 'issues.closed: no unfinished run' });
    expect(said(sw, 4)).toEqual([]);
  }, 90_000);
});
