/**
 * Four workflows, one per kind of concurrency limit, for the tests of how keys are stored
 * (test/concurrency-key-scopes.test.ts, test/concurrency-key-migration.test.ts): each run waits in
 * `open` (holding its slot) until it is sent `close`.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow } from '../../src/index.ts';

const machine = setup({}).createMachine({
  id: 'held',
  initial: 'open',
  states: { open: { on: { close: 'closed' } }, closed: { type: 'final' } },
});
const input = z.object({ key: z.string() });
/** Workflow-scoped: its key `prod` is stored for workflow `ck.deploy`. */
export const deploy = defineWorkflow({ name: 'ck.deploy', machine, input, concurrency: { limit: 1, key: (i) => i.key } });
/** No key function: one limit for the whole workflow. */
export const whole = defineWorkflow({ name: 'ck.whole', machine, input, concurrency: { limit: 1 } });
/** Global keys, shared with every workflow that uses the same key with `scope: 'global'`. */
export const shared = defineWorkflow({ name: 'ck.shared', machine, input, concurrency: { limit: 1, scope: 'global', key: (i) => i.key } });
/** A second workflow with the same global keys. */
export const sharedToo = defineWorkflow({
  name: 'ck.shared-too',
  machine,
  input,
  concurrency: { limit: 1, scope: 'global', key: (i) => i.key },
});
