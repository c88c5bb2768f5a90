/**
 * What the agent prints is quoted back on GitHub as a code span (run-texts.ts `codeSpan`), so that it
 * mentions no one and shows no image or link. A carriage return alone is a line ending in CommonMark,
 * which GitHub renders: two of them are a blank line, which ends the paragraph, and with it the code span.
 * An agent's stderr — told what to print by an issue's text, or a spinner's `\r` — then had rmapp's
 * comment mention `@mallory` and load a tracker's image.
 */
import { afterAll, expect, it } from 'vitest';
import { createServiceWorld, implementIssue, type ServiceWorld } from './helpers/service-world.ts';

let w: ServiceWorld | undefined;
afterAll(async () => w?.stop());

/** Markdown's paragraphs as CommonMark splits them: at a line holding nothing but blanks, a lone CR being a line ending too. */
const paragraphs = (body: string) => body.split(/(?:\r\n|\r|\n)[ \t]*(?:\r\n|\r|\n)/);

it('an agent stderr with lone carriage returns stays inside the code span of the comment that quotes it', async () => {
  const said = 'boom\r\r@mallory ![pixel](https://tracker.example/p.png)';
  const agent = ['node', '-e', `process.stderr.write(${JSON.stringify(said)}); process.exit(1)`];
  w = await createServiceWorld({ RMAPP_AGENT_COMMAND: JSON.stringify(agent) });
  w.world.emulator.permissions.set('acme/widgets:alice', 'write');
  const runId = await implementIssue(w, 5, 'Print what the issue says to stderr.');
  const run = await w.service.engine.get(runId);
  expect(run.error?.code, 'the run fails with the agent').toBe('AGENT_FAILED');
  const quoting = (w.world.emulator.comments.get('acme/widgets#5') ?? []).map((c) => c.body).filter((b) => b.includes('@mallory'));
  expect(quoting.length, 'a comment quotes what the agent printed').toBeGreaterThan(0);
  for (const body of quoting) {
    // The code span opens before `boom`: `@mallory` and the image must be in the same paragraph, or they are Markdown.
    const where = paragraphs(body).find((p) => p.includes('@mallory')) ?? '';
    expect(where.includes('boom'), `comment ${JSON.stringify(body)}: @mallory is out of the code span`).toBe(true);
  }
}, 60_000);
