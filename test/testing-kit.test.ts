/** The test kit for workflow authors (`rmapp/testing`): simulated time and crash/resume at a chosen step. */
import { afterEach, expect, it } from 'vitest';
import { createTestKit, type TestKit } from 'rmapp/testing';
import { approvalWorkflow, attempts, flakyWorkflow } from './helpers/durability-workflows.ts';
import { executions, sequenceWorkflow } from './helpers/workflows.ts';

const HOUR = 3_600_000;
let kit: TestKit | undefined;
afterEach(async () => {
  await kit?.close();
  kit = undefined;
});

it("the kit's clock drives a 1-hour backoff in milliseconds", async () => {
  kit = await createTestKit({
    workflows: [flakyWorkflow('test.hourly', { initialDelayMs: HOUR, maxDelayMs: HOUR, jitter: 0, maxAttempts: 2 })],
  });
  const id = await kit.engine.start('test.hourly', { failTimes: 1 });
  await kit.until(async () => (await kit!.engine.history(id)).some((h) => h.type === 'step.retrying'), 'the retry');
  const retry = (await kit.engine.history(id)).find((h) => h.type === 'step.retrying');
  expect((retry?.data as { delayMs: number }).delayMs).toBe(HOUR);

  await kit.advance(HOUR - 60_000);
  expect(attempts.filter((a) => a.runId === id)).toHaveLength(1);
  await kit.advance(60_000);
  const run = await kit.engine.waitFor(id, { timeoutMs: 10_000 });
  expect(run.status).toBe('succeeded');
  const times = attempts.filter((a) => a.runId === id);
  expect(times).toHaveLength(2);
});

it('refuses an invalid retry policy where the step is declared', () => {
  expect(() => flakyWorkflow('test.bad', { initialDelayMs: HOUR, jitter: 0 })).toThrow(/maxDelayMs must be ≥ initialDelayMs/);
});

it('drives a 1-hour `after` wait (an approval timeout) in milliseconds', async () => {
  kit = await createTestKit({ workflows: [approvalWorkflow()] });
  const id = await kit.engine.start('test.approval', { timeoutMs: HOUR });
  await kit.until(async () => (await kit!.engine.get(id)).state === 'awaitingApproval', 'the approval wait');
  await kit.advance(HOUR / 2);
  expect((await kit.engine.get(id)).state).toBe('awaitingApproval');
  await kit.advance(HOUR / 2);
  expect((await kit.engine.waitFor(id, { timeoutMs: 10_000 })).state).toBe('expired');
});

it('crashes after a step ran but before it was recorded, and resumes: only that step runs again', async () => {
  executions.clear();
  kit = await createTestKit({ workflows: [sequenceWorkflow(6)] });
  const crashed = kit.crashAt({ step: 'add', path: '0.sequence.step4', when: 'succeeded' });
  const id = await kit.engine.start('test.sequence', {});
  expect((await crashed).runId).toBe(id);
  expect((await kit.engine.get(id)).status).toBe('running');
  const engine = await kit.resume();
  const run = await engine.waitFor(id, { timeoutMs: 10_000 });
  expect(run.status).toBe('succeeded');
  expect(run.output).toEqual({ sum: 21 });
  expect([1, 2, 3, 4, 5, 6].map((i) => executions.get(`step${i}`))).toEqual([1, 1, 1, 2, 1, 1]);
  expect((await engine.history(id)).filter((h) => h.type === 'run.resumed')).toHaveLength(1);
});

it('crashes when a step starts (before its work) and resumes: the step runs once', async () => {
  executions.clear();
  kit = await createTestKit({ workflows: [sequenceWorkflow(6)] });
  const crashed = kit.crashAt({ step: 'add', path: '0.sequence.step2' });
  const id = await kit.engine.start('test.sequence', {});
  await crashed;
  const run = await (await kit.resume()).waitFor(id, { timeoutMs: 10_000 });
  expect(run.status).toBe('succeeded');
  expect([1, 2, 3, 4, 5, 6].map((i) => executions.get(`step${i}`))).toEqual([1, 1, 1, 1, 1, 1]);
});
