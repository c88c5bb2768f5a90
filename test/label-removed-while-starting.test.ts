/**
 * A mapped label taken off again in the instant between its delivery's last read of the issue and the
 * start of the run (README, "Commands": a mapped label removed stops the run it started). The removal,
 * delivered in that instant, found no run to stop and was dropped; the labelling's delivery, having read
 * the label still there, then started the run — which went on working for a label its author had taken
 * off. The offender was src/actors/delivery-implement.ts: it read the issue only before the start. It
 * now reads it again once the run is stored, and cancels the run if the label has gone.
 */
import { afterEach, expect, test } from 'vitest';
import { createServiceWorld, labelled, type ServiceWorld } from './helpers/service-world.ts';

let s: ServiceWorld | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

const ISSUE_ROUTE = '/repos/{owner}/{repo}/issues/{issue_number}';

async function settled(world: ServiceWorld) {
  for (let i = 0; i < 600; i++) {
    const runs = await world.service.engine.list({});
    if (runs.length > 1 && runs.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.status))) return runs;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('runs did not finish');
}

test('a label removed while its run is starting: the run is cancelled', async () => {
  s = await createServiceWorld({ RMAPP_LABELS: JSON.stringify({ 'rmapp:bug': 'bugfix' }) });
  const emulator = s.world.emulator;
  emulator.issues.set('acme/widgets#12', { title: 'Bug', body: 'It breaks.', labels: ['rmapp:bug'] });
  emulator.permissions.set('acme/widgets:alice', 'write');
  // The delivery reads the issue twice before the start: whether it was closed since the request, then
  // whether the label is still on it. Right after the second answer, the label is taken off on GitHub;
  // the removal's own delivery finds no run and is dropped (not delivered here).
  let reads = 0;
  emulator.hook({
    method: 'GET',
    route: ISSUE_ROUTE,
    when: 'after',
    times: 2,
    run: () => {
      reads += 1;
      if (reads === 2) emulator.issues.set('acme/widgets#12', { title: 'Bug', body: 'It breaks.', labels: [] });
    },
  });
  const delivered = await s.deliver('issues', labelled(12, 'rmapp:bug', new Date(Date.now() - 10_000).toISOString()));
  expect(delivered.status).toBe(202);
  const runs = await settled(s);
  expect(reads, 'reads of the issue before the start (closed since? label still there?)').toBe(2);
  const issueRun = runs.find((r) => r.workflow !== 'GitHubDelivery');
  expect(issueRun, 'the run the labelling started').toBeDefined();
  expect(issueRun?.status, 'the run started for a label taken off meanwhile').toBe('cancelled');
  const delivery = runs.find((r) => r.workflow === 'GitHubDelivery');
  expect(delivery?.output).toMatchObject({ outcome: { action: 'cancelled', runId: issueRun?.id } });
});

test('a label still there after the start: the run goes on', async () => {
  s = await createServiceWorld({ RMAPP_LABELS: JSON.stringify({ 'rmapp:bug': 'bugfix' }) });
  s.world.emulator.issues.set('acme/widgets#12', { title: 'Bug', body: 'It breaks.', labels: ['rmapp:bug'] });
  s.world.emulator.permissions.set('acme/widgets:alice', 'write');
  const delivered = await s.deliver('issues', labelled(12, 'rmapp:bug', new Date(Date.now() - 10_000).toISOString()));
  expect(delivered.status).toBe(202);
  for (let i = 0; i < 600; i++) {
    const runs = await s.service.engine.list({});
    const delivery = runs.find((r) => r.workflow === 'GitHubDelivery');
    if (delivery?.status === 'succeeded') {
      expect(delivery.output).toMatchObject({ outcome: { action: 'started' } });
      const issueRun = runs.find((r) => r.workflow !== 'GitHubDelivery');
      expect(issueRun?.status, 'the run of a label still on the issue').not.toBe('cancelled');
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the delivery did not finish');
});
