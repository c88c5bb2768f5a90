/**
 * `@rmapp implement` and then `@rmapp cancel` a moment later: the cancel's delivery acted while the
 * implement's was between its look for a later cancel and its run's start — it found no run to cancel
 * and said so, and the run then started and went on. Real service on the GitHub emulator; the
 * implement's read of its issue (github/issue-closed.ts `closedSince`, just before the start) is held
 * until the cancel has been answered.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isFinalStatus } from '../src/persistence/run-status.ts';
import { createServiceWorld, issueComment, type ServiceWorld } from './helpers/service-world.ts';

let w: ServiceWorld | null = null;
afterEach(async () => {
  await w?.stop();
  w = null;
});

const comment = (n: number, body: string) => issueComment(n, body);

describe('a cancel written after an implement, acting while that implement starts its run', () => {
  it('cancels the run the implement starts', async () => {
    w = await createServiceWorld();
    w.world.emulator.permissions.set('acme/widgets:alice', 'write');
    w.world.emulator.issues.set('acme/widgets#5', { title: 'Issue 5', body: 'PLAN x\nWRITE impl.txt right' });
    let reached!: () => void;
    const atRead = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let hold = true;
    w.world.github.hook.before('request', async (options) => {
      if (hold && options.method === 'GET' && options.url === '/repos/{owner}/{repo}/issues/{issue_number}' && options.issue_number === 5) {
        hold = false;
        reached();
        await released;
      }
    });
    const implement = await w.deliver('issue_comment', comment(5, '@rmapp implement feature'));
    await atRead;
    const cancel = await w.deliver('issue_comment', comment(5, '@rmapp cancel'));
    const cancelled = await w.service.engine.waitFor(cancel.body.runId, { timeoutMs: 60_000 });
    expect((cancelled.output as { outcome: { message: string } }).outcome.message, 'the cancel acted before the run existed').toMatch(
      /no run to cancel/,
    );
    release();
    const started = await w.service.engine.waitFor(implement.body.runId, { timeoutMs: 60_000 });
    const outcome = (started.output as { outcome: { action: string; runId: string | null } }).outcome;
    for (let i = 0; i < 100 && outcome.runId; i++) {
      const run = await w.service.engine.get(outcome.runId);
      if (isFinalStatus(run.status) || run.state === 'awaitingApproval') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const unfinished = (await w.service.engine.list({ idPrefix: 'acme/widgets/issues/5/' })).filter((r) => !isFinalStatus(r.status));
    expect(
      unfinished.map((r) => `${r.id} ${r.status} ${JSON.stringify(r.state)}`),
      `runs going on after the implement's delivery (${JSON.stringify(outcome)}), its later cancel answered first`,
    ).toEqual([]);
    const said = (w.world.emulator.comments.get('acme/widgets#5') ?? []).map((c) => c.body);
    expect(
      said.filter((b) => b.includes('so I cancelled that run')),
      `comments on #5: ${JSON.stringify(said)}`,
    ).toHaveLength(1);
  }, 120_000);
});
