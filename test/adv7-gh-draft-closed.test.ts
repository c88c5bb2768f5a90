/**
 * The run's draft pull request closed by someone while the run works: the run opens no second pull
 * request beside it (ready, its review requested, over that person's decision) and ends saying why.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServiceWorld, labelled, type ServiceWorld } from './helpers/service-world.ts';

let sw: ServiceWorld | undefined;
afterEach(async () => {
  await sw?.stop();
  sw = undefined;
});

describe('a draft pull request closed while its run works', () => {
  it.each([
    // The service's own words, not quoted as a code span (run-texts.ts OWN_MESSAGES).
    ['closed', /I stopped: the draft pull request #\d+ was closed while I worked/],
    ['merged', /I stopped: the pull request #\d+ was merged before I finished/],
  ] as const)(
    '(%s) gets no second pull request, and the answer says which',
    async (how, answer) => {
      sw = await createServiceWorld({ RMAPP_LABELS: JSON.stringify({ rmapp: 'simple' }) });
      const { emulator } = sw.world;
      emulator.permissions.set('acme/widgets:alice', 'write');
      emulator.issues.set('acme/widgets#3', { title: 't', body: 'WRITE impl.txt right' });
      // Closed right after it was opened (the answer to the run still says open).
      emulator.hook({
        method: 'POST',
        route: '/repos/{owner}/{repo}/pulls',
        when: 'after',
        run: () => {
          for (const pull of emulator.pulls.get('acme/widgets') ?? []) {
            pull.state = 'closed';
            if (how === 'merged') pull.mergedAt = new Date().toISOString();
          }
        },
      });
      expect((await sw.deliver('issues', labelled(3, 'rmapp'))).status).toBe(202);
      let runs = await sw.service.engine.list({});
      for (let i = 0; i < 900 && !(runs.length > 1 && runs.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.status))); i++) {
        await new Promise((r) => setTimeout(r, 100));
        runs = await sw.service.engine.list({});
      }
      const pulls = emulator.pulls.get('acme/widgets') ?? [];
      expect(
        pulls.map((p) => `#${p.number} ${p.state}`),
        'src/actors/issue-implementation.ts createPR opened a second pull request',
      ).toHaveLength(1);
      const run = runs.find((r) => r.workflow === 'IssueImplementation');
      expect(run?.status).toBe('failed');
      const said = (emulator.comments.get('acme/widgets#3') ?? []).map((c) => c.body);
      expect(
        said.some((b) => answer.test(b)),
        said.join('\n---\n'),
      ).toBe(true);
    },
    90_000,
  );
});
