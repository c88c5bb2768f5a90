/**
 * The failing tests' names and first assertions are quoted inline in rmapp's own sentences on GitHub
 * (test-report.ts `escapeMarkdown`, `failingTestLine`): "I stopped: the tests still fail after 1 attempts
 * (1 failing: *name*). The draft … keeps what was done." A right-to-left override in a name (the agent
 * writes the tests, and an issue can tell it what to name them) reordered on screen the rest of rmapp's
 * sentence, as "Trojan Source" does.
 */
import { afterAll, expect, it } from 'vitest';
import { textsAfterFailingTests } from './helpers/failing-tests-world.ts';
import type { ServiceWorld } from './helpers/service-world.ts';

let w: ServiceWorld | undefined;
afterAll(async () => w?.stop());

/** Unicode's Bidi_Control characters (src/persistence/bidi-controls.ts). */
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

it('a failing test named with a bidirectional override reorders none of what rmapp writes on GitHub', async () => {
  const tap = 'TAP version 13\nnot ok 1 - sums \u202eits input\n  ---\n  message: "wrong \u2067sum"\n  ...\n1..1\n';
  const written = await textsAfterFailingTests(tap, 'its input', (world) => (w = world));
  for (const body of written) expect(BIDI.test(body), `${JSON.stringify(body)} holds a bidirectional control`).toBe(false);
}, 90_000);
