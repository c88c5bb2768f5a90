/**
 * An issue run whose tests fail with the given TAP output, in a service world (test/helpers/service-world.ts):
 * what rmapp then wrote on GitHub — the issue's comments and the draft's body — for tests of how failing
 * tests' names and reasons are quoted there.
 */
import { expect } from 'vitest';
import { createServiceWorld, implementIssue, type ServiceWorld } from './service-world.ts';

/** Starts the world (the caller stops it: `afterAll(() => w?.stop())`), runs issue 5, and returns the texts holding `marker`. */
export async function textsAfterFailingTests(tap: string, marker: string, started: (w: ServiceWorld) => void): Promise<string[]> {
  const tests = ['node', '-e', `process.stdout.write(${JSON.stringify(tap)}); process.exit(1)`];
  const w = await createServiceWorld({ RMAPP_TEST_COMMAND: JSON.stringify(tests), RMAPP_MAX_TEST_ATTEMPTS: '1' });
  started(w);
  w.world.emulator.permissions.set('acme/widgets:alice', 'write');
  const runId = await implementIssue(w, 5, 'WRITE impl.txt wrong');
  expect((await w.service.engine.get(runId)).error?.code, 'the run fails with its tests').toBe('TESTS_FAILED');
  const written = [
    ...(w.world.emulator.comments.get('acme/widgets#5') ?? []).map((c) => c.body),
    ...(w.world.emulator.pulls.get('acme/widgets') ?? []).map((p) => p.body ?? ''),
  ].filter((b) => b.includes(marker));
  expect(written.length, 'a comment or the pull request names the failing test').toBeGreaterThan(0);
  return written;
}
