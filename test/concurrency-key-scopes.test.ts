/**
 * A `scope: 'global'` concurrency key and a workflow's own keys are different limits, whatever the key
 * says: a global key `Deploy:prod` is not workflow `Deploy`'s key `prod`, and a global key `Deploy` is
 * not the per-workflow limit of workflow `Deploy` (no key function). Both were stored in one column as
 * the same text, so such runs queued behind one another (and shared one slot) though no limit joined
 * them. Runs of the same key and scope still queue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';
import { deploy, shared, sharedToo, whole } from './helpers/concurrency-key-workflows.ts';

describe.each(['pglite', 'postgres'] as const)('global and workflow-scoped concurrency keys never share a slot (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  let engine: Engine;
  // No worker: a run admitted at its start holds its key's slot (pending, admitted) until it ends, and
  // the start of the next run of that key finds the slot taken and queues it.
  beforeAll(async () => {
    engine = createEngine({ workflows: [deploy, whole, shared, sharedToo], database: await engineDatabaseFor(kind, cleanups) });
  });
  afterAll(async () => {
    await engine?.stop();
    for (const c of cleanups.reverse()) await c();
  });

  async function queued(id: string): Promise<boolean> {
    return (await engine.get(id)).queue !== undefined;
  }

  it('a global key "<workflow>:<key>" is not that workflow’s key', async () => {
    const own = await engine.start(deploy, { key: 'prod' });
    const global = await engine.start(shared, { key: 'ck.deploy:prod' });
    expect(await queued(own), `ck.deploy run ${own} of key prod`).toBe(false);
    expect(
      await queued(global),
      `ck.shared run ${global} of global key "ck.deploy:prod" queued behind ck.deploy's key prod (run ${own})`,
    ).toBe(false);
  });

  it('a global key "<workflow>" is not that workflow’s own limit', async () => {
    const own = await engine.start(whole, { key: 'x' });
    const global = await engine.start(shared, { key: 'ck.whole' });
    expect(await queued(own), `ck.whole run ${own}`).toBe(false);
    expect(
      await queued(global),
      `ck.shared run ${global} of global key "ck.whole" queued behind workflow ck.whole's limit (run ${own})`,
    ).toBe(false);
  });

  it('runs of one key and scope still queue: workflow-scoped, per workflow, global across workflows', async () => {
    // The runs started above hold ck.deploy's prod, ck.whole's limit and the global keys.
    const deploySecond = await engine.start(deploy, { key: 'prod' });
    const wholeSecond = await engine.start(whole, { key: 'y' });
    const globalSecond = await engine.start(sharedToo, { key: 'ck.deploy:prod' });
    expect(await queued(deploySecond), `second ck.deploy run ${deploySecond} of key prod`).toBe(true);
    expect(await queued(wholeSecond), `second ck.whole run ${wholeSecond}`).toBe(true);
    expect(await queued(globalSecond), `ck.shared-too run ${globalSecond} of global key "ck.deploy:prod"`).toBe(true);
  });

  it('a queued run shows the key as its workflow gave it, and which scope', async () => {
    const global = await engine.start(shared, { key: 'issue:o/r#7' });
    const behind = await engine.start(sharedToo, { key: 'issue:o/r#7' });
    const deployed = await engine.start(deploy, { key: 'stage' });
    const deployBehind = await engine.start(deploy, { key: 'stage' });
    expect(await queued(global), `first run ${global} of global key issue:o/r#7`).toBe(false);
    expect(await queued(deployed), `first run ${deployed} of ck.deploy key stage`).toBe(false);
    const info = await engine.get(behind);
    expect(info.queue, `queued run ${behind}`).toEqual({ key: 'issue:o/r#7', scope: 'global', position: 1 });
    expect(info.statusMessage).toBe('Queued: position 1 for global concurrency key issue:o/r#7.');
    const own = await engine.get(deployBehind);
    expect(own.queue, `queued run ${deployBehind}`).toEqual({ key: 'ck.deploy:stage', scope: 'workflow', position: 1 });
    expect(own.statusMessage).toBe('Queued: position 1 for concurrency key ck.deploy:stage.');
  });
});
