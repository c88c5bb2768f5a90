/**
 * A mapped label added and removed again, the removal delivered first (GitHub does not deliver in order;
 * README, "Commands"): the removal finds no run to stop and is dropped, then the label's own delivery
 * arrives. The offender was src/actors/github-delivery.ts: it started the template for a label no
 * longer on the issue, a run its author had already undone.
 */
import { afterEach, expect, test } from 'vitest';
import { createServiceWorld, labelled, type ServiceWorld } from './helpers/service-world.ts';
import { unlabelled } from './helpers/issue-events.ts';

let s: ServiceWorld | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

async function settled(world: ServiceWorld) {
  for (let i = 0; i < 600; i++) {
    const runs = await world.service.engine.list({});
    if (runs.length && runs.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.status))) return runs;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('runs did not finish');
}

test('a label whose removal was delivered first starts nothing', async () => {
  s = await createServiceWorld({ RMAPP_LABELS: JSON.stringify({ 'rmapp:bug': 'bugfix' }) });
  s.world.emulator.issues.set('acme/widgets#12', { title: 'Bug', body: 'It breaks.', labels: [] });
  s.world.emulator.permissions.set('acme/widgets:alice', 'write');
  const added = labelled(12, 'rmapp:bug', new Date(Date.now() - 10_000).toISOString());
  const removed = unlabelled(12, 'rmapp:bug');
  const first = await s.deliver('issues', removed);
  expect(first.status).toBe(202);
  const second = await s.deliver('issues', added);
  expect(second.status).toBe(202);
  expect(second.body.runId).toBeTruthy();
  const runs = await settled(s);
  // Only the label's delivery ran: no issue run was started for a label no longer there.
  expect(runs.map((r) => r.workflow)).toEqual(['GitHubDelivery']);
  expect(runs[0]?.output).toMatchObject({ outcome: { action: 'ignored' } });
  // Nothing said either: whoever took the label off knows.
  expect(s.world.emulator.comments.get('acme/widgets#12') ?? []).toEqual([]);
});

test('a label still on the issue starts its template', async () => {
  s = await createServiceWorld({ RMAPP_LABELS: JSON.stringify({ 'rmapp:bug': 'bugfix' }) });
  s.world.emulator.issues.set('acme/widgets#12', { title: 'Bug', body: 'It breaks.', labels: ['rmapp:bug'] });
  s.world.emulator.permissions.set('acme/widgets:alice', 'write');
  const second = await s.deliver('issues', labelled(12, 'rmapp:bug'));
  expect(second.status).toBe(202);
  for (let i = 0; i < 300; i++) {
    const runs = await s.service.engine.list({});
    if (runs.some((r) => r.workflow !== 'GitHubDelivery')) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no issue run started');
});
