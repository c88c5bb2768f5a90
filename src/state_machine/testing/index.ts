/**
 * `rmapp/testing`: what workflow authors need to test their own machines, and what rmapp's own
 * tests use. An engine on an in-process PGlite, a {@link TestClock} that fires timers and backoffs
 * without waiting, and crash/resume at a chosen step.
 *
 * @example
 * import { createTestKit } from 'rmapp/testing';
 * const kit = await createTestKit({ workflows: [order] });
 * const id = await kit.engine.start('order', { id: 'A-1' });
 * await kit.until(async () => (await kit.engine.get(id)).state === 'awaitingApproval');
 * await kit.clock.advance(24 * 3600_000);           // the approval timeout fires now
 * expect((await kit.engine.waitFor(id)).state).toBe('expired');
 * await kit.close();
 */
export { createTestKit, type CrashPoint, type TestKit, type TestKitOptions } from './test-kit.ts';
export { TestClock } from './test-clock.ts';
export { createPathKit, type PathCheck, type PathKit, type PathKitOptions, type PathPoint } from './path-kit.ts';
export { modelPaths, workflowPaths, type ModelPathOptions, type ModelPaths, type PathOptions, type WorkflowPath } from './paths.ts';
export { restoreProblems } from './restore-check.ts';
