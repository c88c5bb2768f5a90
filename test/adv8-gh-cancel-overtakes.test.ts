/**
 * GitHub does not deliver in order: a `@rmapp cancel` written after `@rmapp implement` may be delivered,
 * and answered, first. The run the cancel was written after does not start; a cancel written before the
 * request, or by someone who may not steer runs, does not stop it. And a cancel delivered after a request
 * that itself came late — its run created after the cancel was written — still stops that run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceWorld, example, type ServiceWorld } from './helpers/service-world.ts';

let sw: ServiceWorld;
beforeAll(async () => {
  sw = await createServiceWorld();
  sw.world.emulator.permissions.set('acme/widgets:alice', 'write');
  sw.world.emulator.permissions.set('acme/widgets:mallory', 'read');
  for (const n of [3, 4, 5, 6, 7, 8]) sw.world.emulator.issues.set(`acme/widgets#${n}`, { title: 't', body: 'WRITE impl.txt right' });
});
afterAll(async () => sw?.stop());

let commentIds = 5_000;
/** A comment on issue `n`, written `secondsAgo` seconds ago (or at `at`), with the next comment id. */
const comment = (
  n: number,
  body: string,
  secondsAgo: number,
  login = 'alice',
  at = new Date(Date.now() - secondsAgo * 1000).toISOString(),
) =>
  example('issue_comment', 'created', (p) => {
    p.comment.id = commentIds++;
    p.issue.number = n;
    delete p.issue.pull_request;
    Object.assign(p.comment, { body, created_at: at, updated_at: at });
    p.comment.user.login = login;
    p.comment.user.type = 'User';
    p.sender.login = login;
  });

/** Delivers and waits for the delivery's run: its outcome. */
async function answer(payload: unknown): Promise<{ action: string; runId: string | null }> {
  const res = await sw.deliver('issue_comment', payload);
  expect(res.status).toBe(202);
  const run = await sw.service.engine.waitFor(res.body.runId as string, { timeoutMs: 30_000 });
  return (run.output as { outcome: { action: string; runId: string | null } }).outcome;
}

const issueRuns = (n: number) => sw.service.engine.list({ idPrefix: `acme/widgets/issues/${n}/` });
const said = (n: number) => (sw.world.emulator.comments.get(`acme/widgets#${n}`) ?? []).map((c) => c.body);

describe('a cancel delivered before the request it was written after', () => {
  it('keeps the run from starting, and says why', async () => {
    expect((await answer(comment(3, '@rmapp cancel', 5))).action).toBe('replied');
    const implement = await answer(comment(3, '@rmapp implement', 10));
    expect(await issueRuns(3), 'the run started after a later cancel').toEqual([]);
    expect(implement.action).toBe('replied');
    expect(
      said(3).some((b) => /written after this request, reached me before it, so I did not start/.test(b)),
      said(3).join('\n---\n'),
    ).toBe(true);
  }, 60_000);

  it('does not keep a request written after it, or stop one when its author may not steer runs', async () => {
    await answer(comment(4, '@rmapp cancel', 20));
    expect((await answer(comment(4, '@rmapp implement', 10))).action, 'an implement written after the cancel').toBe('started');
    await answer(comment(5, '@rmapp cancel', 5, 'mallory'));
    expect((await answer(comment(5, '@rmapp implement', 10))).action, "a passer-by's cancel").toBe('started');
    for (const n of [4, 5]) for (const run of await issueRuns(n)) await sw.service.engine.cancel(run.id);
  }, 60_000);

  it('a cancel written after a request that came late stops its run, though the run was created after the cancel was written', async () => {
    const started = await answer(comment(6, '@rmapp implement feature', 30));
    expect(started.action).toBe('started');
    // Written 20 s ago: after the request, before its (late) run was created.
    const cancel = await answer(comment(6, '@rmapp cancel', 20));
    expect(cancel, said(6).join('\n---\n')).toMatchObject({ action: 'cancelled', runId: started.runId });
    expect((await sw.service.engine.waitFor(started.runId as string, { timeoutMs: 30_000 })).status).toBe('cancelled');
  }, 60_000);

  it('finds the cancel behind a hundred other comments delivered since', async () => {
    // Stamped from one instant: stamped as each is made, a hundred deliveries that took more than 5 s (a
    // loaded machine) dated the request after the cancel, and its run rightly started.
    const ago = (seconds: number) => new Date(Date.now() - seconds * 1000).toISOString();
    const [cancelAt, helpAt, requestAt] = [ago(5), ago(4), ago(10)];
    expect((await answer(comment(7, '@rmapp cancel', 0, 'alice', cancelAt))).action).toBe('replied');
    for (let i = 0; i < 100; i++)
      expect((await sw.deliver('issue_comment', comment(7, '@rmapp help', 0, 'mallory', helpAt))).status).toBe(202);
    const implement = await answer(comment(7, '@rmapp implement', 0, 'alice', requestAt));
    expect(implement.action, 'src/actors/delivery-order.ts cancelledAfter missed the cancel').toBe('replied');
    expect(await issueRuns(7)).toEqual([]);
  }, 120_000);

  it('tells a cancel written in the same second as the request, after it, by their comment ids', async () => {
    const second = new Date(Math.floor(Date.now() / 1000) * 1000 - 5_000).toISOString();
    const request = comment(8, '@rmapp implement', 0, 'alice', second);
    const cancel = comment(8, '@rmapp cancel', 0, 'alice', second);
    expect((await answer(cancel)).action).toBe('replied');
    expect((await answer(request)).action, 'the request started though the cancel written after it came first').toBe('replied');
    expect(await issueRuns(8)).toEqual([]);
  }, 60_000);
});
