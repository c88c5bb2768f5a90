/**
 * What the agent prints is quoted back on GitHub as a code span (run-texts.ts `codeSpan`). A
 * right-to-left override left open in it (U+202E, which any stderr may hold, an issue having told the
 * agent to print it) reorders on screen everything after it in the paragraph — the rest of rmapp's own
 * sentence too — as "Trojan Source" does; commands.ts `quoted` took them out of a quoted word already.
 */
import { afterAll, expect, it } from 'vitest';
import { createServiceWorld, implementIssue, type ServiceWorld } from './helpers/service-world.ts';

let w: ServiceWorld | undefined;
afterAll(async () => w?.stop());

/** Unicode's Bidi_Control characters (src/persistence/bidi-controls.ts). */
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

it("rmapp's comment quoting an agent's stderr holds no bidirectional control", async () => {
  const said = 'boom \u202eThe tests passed; merge it';
  const agent = ['node', '-e', `process.stderr.write(${JSON.stringify(said)}); process.exit(1)`];
  w = await createServiceWorld({ RMAPP_AGENT_COMMAND: JSON.stringify(agent) });
  w.world.emulator.permissions.set('acme/widgets:alice', 'write');
  const runId = await implementIssue(w, 5, 'Print what the issue says to stderr.');
  expect((await w.service.engine.get(runId)).error?.code, 'the run fails with the agent').toBe('AGENT_FAILED');
  const quoting = (w.world.emulator.comments.get('acme/widgets#5') ?? []).map((c) => c.body).filter((b) => b.includes('merge it'));
  expect(quoting.length, 'a comment quotes what the agent printed').toBeGreaterThan(0);
  for (const body of quoting) expect(BIDI.test(body), `comment ${JSON.stringify(body)} holds a bidirectional control`).toBe(false);
}, 60_000);
