/**
 * The test kit runs a workflow path by path: every path `xstate/graph` finds over step outcomes,
 * delays and signals is driven through the real engine and ends in the state it predicts.
 */
import { expect, it } from 'vitest';
import { createPathKit, workflowPaths } from 'rmapp/testing';
import { approvalWorkflow, parentWorkflow } from './helpers/durability-workflows.ts';
import { orderExample } from '../src/machines/order-example.ts';

it('runs every path of the approval workflow (steps done/failed, approve, reject, timeout)', async () => {
  const def = approvalWorkflow();
  const paths = workflowPaths(def, {
    input: { timeoutMs: 60_000 },
    events: [{ type: 'approve', by: 'octocat' }, { type: 'reject' }],
    kind: 'simple',
  });
  const descriptions = paths.map((p) => p.description);
  expect(descriptions).toContain('xstate.done.actor.0.approval.preparing → approve → xstate.done.actor.0.approval.finishing');
  expect(descriptions).toContain('xstate.done.actor.0.approval.preparing → xstate.after.approvalTimeout.approval.awaitingApproval');
  expect(descriptions).toContainEqual(expect.stringContaining('xstate.error.actor.0.approval.preparing'));
  const kit = await createPathKit(def);
  try {
    for (const path of paths) {
      const run = await kit.run(path);
      expect({ path: path.description, state: run.state }).toEqual({ path: path.description, state: path.state });
      const expectedStatus = path.status === 'done' ? 'succeeded' : path.status === 'error' ? 'failed' : run.status;
      expect({ path: path.description, status: run.status }).toEqual({ path: path.description, status: expectedStatus });
    }
  } finally {
    await kit.close();
  }
  expect(paths.length).toBeGreaterThanOrEqual(6);
});

it('runs the shortest paths of the example order workflow with scripted step outputs', async () => {
  const paths = workflowPaths(orderExample, {
    input: { orderId: 'A-1', amountCents: 100, approvalTimeoutMs: 5_000 },
    events: [{ type: 'approve', by: 'octocat' }, { type: 'reject' }],
    outputs: { reserve: { reservation: 'res-1' }, charge: { receipt: 'rcpt-1' } },
  });
  const kit = await createPathKit(orderExample);
  try {
    for (const path of paths) expect((await kit.run(path)).state).toEqual(path.state);
  } finally {
    await kit.close();
  }
  expect(paths.map((p) => p.state)).toEqual(expect.arrayContaining(['done', 'rejected', 'charging', 'awaitingApproval']));
});

it('enumerates paths through child workflows too', () => {
  const paths = workflowPaths(parentWorkflow(), { input: {} });
  expect(paths.length).toBeGreaterThan(0);
});
