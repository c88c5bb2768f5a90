/**
 * A mapped label added to a closed issue — triage of old issues, often many at once — starts nothing:
 * each had started a run and opened a pull request. The same label on an open issue still does.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServiceWorld, labelled, type ServiceWorld } from './helpers/service-world.ts';

let sw: ServiceWorld | undefined;
afterEach(async () => {
  await sw?.stop();
  sw = undefined;
});

describe('a mapped label on a closed issue', () => {
  it('starts no run', async () => {
    sw = await createServiceWorld({ RMAPP_LABELS: JSON.stringify({ bug: 'bugfix' }) });
    sw.world.emulator.permissions.set('acme/widgets:alice', 'write');
    const closed = labelled(3, 'bug');
    closed.issue.state = 'closed';
    const answer = await sw.deliver('issues', closed);
    expect(answer.status).toBeLessThan(300);
    expect(await sw.service.engine.list({}), 'src/rmapp/webhooks/event.ts started a run for a label on a closed issue').toEqual([]);
    const open = labelled(4, 'bug');
    open.issue.state = 'open';
    expect((await sw.deliver('issues', open)).status).toBe(202);
    expect((await sw.service.engine.list({})).length).toBe(1);
    await sw.service.engine.cancel((await sw.service.engine.list({}))[0]!.id);
  }, 60_000);
});
