/**
 * A mapped label removed from an issue: whoever put it there asked for the run, and whoever (with write
 * access) takes it off asks for it to stop, as `@rmapp cancel` would. The run that label started is
 * cancelled and the issue is told once; a run started another way is not the label's to stop.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServiceWorld, example, labelled, type ServiceWorld } from './helpers/service-world.ts';
import { unlabelled } from './helpers/issue-events.ts';

let sw: ServiceWorld | undefined;
afterEach(async () => {
  await sw?.stop();
  sw = undefined;
});

const said = (s: ServiceWorld, issue: number) => (s.world.emulator.comments.get(`acme/widgets#${issue}`) ?? []).map((c) => c.body);

/** The issue's run, once it waits for plan approval. */
async function waitingRun(s: ServiceWorld, issue: number) {
  for (let i = 0; i < 600; i++) {
    const run = (await s.service.engine.list({ idPrefix: `acme/widgets/issues/${issue}/` }))[0];
    if (run?.state === 'awaitingApproval') return run;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`issue #${issue}'s run never waited for approval`);
}

/** The delivery's GitHubDelivery run, once it ended. */
async function delivered(s: ServiceWorld, event: string, payload: unknown) {
  const res = await s.deliver(event, payload);
  expect(res.status).toBe(202);
  return s.service.engine.waitFor(res.body.runId as string, { timeoutMs: 30_000 });
}

describe('a mapped label removed while the run it started works', () => {
  it('cancels that run and says so once; a run asked for in a comment goes on', async () => {
    sw = await createServiceWorld({ RMAPP_LABELS: JSON.stringify({ 'rmapp:feature': 'feature' }) });
    const { emulator } = sw.world;
    emulator.permissions.set('acme/widgets:alice', 'write');
    for (const n of [3, 4]) emulator.issues.set(`acme/widgets#${n}`, { title: 't', body: 'WRITE impl.txt right' });
    await delivered(sw, 'issues', labelled(3, 'rmapp:feature'));
    const byLabel = await waitingRun(sw, 3);
    const asked = example('issue_comment', 'created', (p) => {
      p.issue.number = 4;
      delete p.issue.pull_request;
      p.comment.body = '@rmapp implement feature';
      p.comment.user.login = 'alice';
      p.comment.user.type = 'User';
      p.sender.login = 'alice';
    });
    await delivered(sw, 'issue_comment', asked);
    const byComment = await waitingRun(sw, 4);

    const removal = unlabelled(3, 'rmapp:feature');
    await delivered(sw, 'issues', removal);
    expect((await sw.service.engine.get(byLabel.id)).status, 'the label removed, its run kept waiting').toBe('cancelled');
    // The same removal delivered again is one event, answered once.
    await sw.deliver('issues', removal);
    expect(
      said(sw, 3).filter((b) => /removing the label ` rmapp:feature ` stopped the run/.test(b)),
      said(sw, 3).join('\n---\n'),
    ).toHaveLength(1);

    await delivered(sw, 'issues', unlabelled(4, 'rmapp:feature'));
    expect((await sw.service.engine.get(byComment.id)).state, 'a run the label did not start').toBe('awaitingApproval');
    expect(said(sw, 4).filter((b) => /removing the label/.test(b))).toEqual([]);
    await sw.service.engine.cancel(byComment.id);
  }, 90_000);

  it('by someone without write access stops nothing, and they are told', async () => {
    sw = await createServiceWorld({ RMAPP_LABELS: JSON.stringify({ 'rmapp:feature': 'feature' }) });
    const { emulator } = sw.world;
    emulator.permissions.set('acme/widgets:alice', 'write');
    emulator.permissions.set('acme/widgets:tri', 'triage');
    emulator.issues.set('acme/widgets#3', { title: 't', body: 'WRITE impl.txt right' });
    await delivered(sw, 'issues', labelled(3, 'rmapp:feature'));
    const run = await waitingRun(sw, 3);
    await delivered(sw, 'issues', unlabelled(3, 'rmapp:feature', 'tri'));
    expect((await sw.service.engine.get(run.id)).state).toBe('awaitingApproval');
    expect(
      said(sw, 3).some((b) => /@tri thanks for asking! Only people with write access/.test(b)),
      said(sw, 3).join('\n---\n'),
    ).toBe(true);
    await sw.service.engine.cancel(run.id);
  }, 90_000);
});
