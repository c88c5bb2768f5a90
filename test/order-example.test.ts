/** The built-in example workflow (`example.order`): what it records identifies the run it belongs to. */
import { afterEach, expect, it } from 'vitest';
import { createTestKit, type TestKit } from 'rmapp/testing';
import { orderExample } from '../src/machines/order-example.ts';

let kit: TestKit | undefined;
afterEach(async () => {
  await kit?.close();
  kit = undefined;
});

it("each run's receipt names that run (every run's receipt was rcpt-charging)", async () => {
  kit = await createTestKit({ workflows: [orderExample] });
  const ids = [
    await kit.engine.start('example.order', { orderId: 'o-1', amountCents: 1200 }),
    await kit.engine.start('example.order', { orderId: 'o-2', amountCents: 800 }),
  ];
  for (const id of ids) {
    await kit.until(async () => (await kit!.engine.get(id)).state === 'awaitingApproval', `run ${id} to wait for approval`);
    await kit.engine.send(id, { type: 'approve', by: 'test' });
    const run = await kit.engine.waitFor(id, { timeoutMs: 10_000 });
    expect(run.status, `run ${id}: ${run.statusMessage ?? ''}`).toBe('succeeded');
    expect(run.output, `run ${id}'s output`).toMatchObject({ receipt: `rcpt-${id}` });
  }
});
