/**
 * `@rmapp implement` again after rmapp's pull request from `rmapp/issue-<n>` was closed, its branch left
 * in place: the run is refused (it builds only on a branch it can show is its own), and the answer says
 * why in true words. It said "rmapp did not create it" of the branch rmapp had made.
 */
import { afterEach, expect, it } from 'vitest';
import { createServiceWorld, implementIssue, type ServiceWorld } from './helpers/service-world.ts';

let w: ServiceWorld | undefined;
afterEach(async () => {
  await w?.stop();
  w = undefined;
});

it.each([
  [
    'closed without merging',
    null,
    /closed without merging \(reopen it, then ask me to implement the issue again, to have me continue there\)/,
  ],
  ['merged', '2026-01-02T03:04:05Z', /which was merged/],
])(
  'after rmapp pull request was %s, a new run names it rather than disowning the branch',
  async (_how, mergedAt, said) => {
    w = await createServiceWorld();
    w.world.emulator.permissions.set('acme/widgets:alice', 'write');
    await implementIssue(w, 5, 'Add a greeting');
    const pulls = w.world.emulator.pulls.get('acme/widgets') ?? [];
    expect(pulls.map((p) => [p.head, p.author])).toEqual([['rmapp/issue-5', w.world.emulator.botLogin]]);
    for (const p of pulls) Object.assign(p, { state: 'closed', mergedAt });

    const again = await w.service.engine.get(await implementIssue(w, 5, 'Add a greeting'));
    expect(again.status).toBe('failed');
    expect(again.error?.code).toBe('ISSUE_BRANCH_TAKEN');
    expect(again.error?.message).toMatch(new RegExp(`left from my pull request #${pulls[0]!.number}, which was`));
    expect(again.error?.message).toMatch(said);
    expect(again.error?.message).not.toMatch(/did not create/);
    // Nothing opened beside the closed one.
    expect(w.world.emulator.pulls.get('acme/widgets')).toHaveLength(1);
  },
  240_000,
);

it('asked again after a run pushed its branch and failed before its draft opened, the next run continues that branch', async () => {
  w = await createServiceWorld();
  w.world.emulator.permissions.set('acme/widgets:alice', 'write');
  w.world.emulator.failNext('POST', /\/pulls$/, 422, { message: 'Validation Failed' });
  const first = await w.service.engine.get(await implementIssue(w, 5, 'Add a greeting'));
  expect(first.error?.code).toBe('HTTP_422');
  expect(await w.service.engine.getArtifact(first.id, 'branch-pushes')).toHaveLength(1);

  const second = await w.service.engine.get(await implementIssue(w, 5, 'Add a greeting'));
  expect(second.error?.code).not.toBe('ISSUE_BRANCH_TAKEN');
  expect(w.world.emulator.pulls.get('acme/widgets')?.map((p) => [p.head, p.state])).toEqual([['rmapp/issue-5', 'open']]);
}, 240_000);
