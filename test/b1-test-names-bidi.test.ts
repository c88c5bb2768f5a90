/**
 * The failing tests' names and first assertions are quoted inline in rmapp's own sentences on GitHub
 * (test-report.ts `escapeMarkdown`, `failingTestLine`): "I stopped: the tests still fail after 1 attempts
 * (1 failing: *name*). The draft … keeps what was done." A right-to-left override in a name (the agent
 * writes the tests, and an issue can tell it what to name them) reordered on screen the rest of rmapp's
 * sentence, as "Trojan Source" does.
 */
import { afterAll, expect, it } from 'vitest';
import { createServiceWorld, implementIssue, type ServiceWorld } from './helpers/service-world.ts';

let w: ServiceWorld | undefined;
afterAll(async () => w?.stop());

/** Unicode's Bidi_Control characters (src/persistence/bidi-controls.ts). */
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

it('a failing test named with a bidirectional override reorders none of what rmapp writes on GitHub', async () => {
  const tap = 'TAP version 13\nnot ok 1 - sums \u202eits input\n  ---\n  message: "wrong \u2067sum"\n  ...\n1..1\n';
  const tests = ['node', '-e', `process.stdout.write(${JSON.stringify(tap)}); process.exit(1)`];
  w = await createServiceWorld({ RMAPP_TEST_COMMAND: JSON.stringify(tests), RMAPP_MAX_TEST_ATTEMPTS: '1' });
  w.world.emulator.permissions.set('acme/widgets:alice', 'write');
  const runId = await implementIssue(w, 5, 'WRITE impl.txt wrong');
  expect((await w.service.engine.get(runId)).error?.code, 'the run fails with its tests').toBe('TESTS_FAILED');
  const written = [
    ...(w.world.emulator.comments.get('acme/widgets#5') ?? []).map((c) => c.body),
    ...(w.world.emulator.pulls.get('acme/widgets') ?? []).map((p) => p.body ?? ''),
  ].filter((b) => b.includes('its input'));
  expect(written.length, 'a comment or the pull request names the failing test').toBeGreaterThan(0);
  for (const body of written) expect(BIDI.test(body), `${JSON.stringify(body)} holds a bidirectional control`).toBe(false);
}, 90_000);
