/**
 * A run's page shows the message of a `state.unwritable` history entry (why the run's state could not
 * be written when it was cancelled or timed out), not only its type; as text: the message may quote
 * untrusted text, so markup in it is shown, not made, and bidirectional controls are shown as their
 * code points (src/rmapp/server/dashboard/bidi-controls.js) instead of reordering the line.
 */
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow } from '../src/index.ts';
import { appendHistory } from '../src/persistence/runs.ts';
import { unwritableStateEntry } from '../src/state_machine/session-write.ts';
import { startHttpService, type HttpService } from './helpers/http-service.ts';

const waiting = defineWorkflow({
  name: 'test.unwritable-shown',
  input: z.object({}),
  machine: setup({}).createMachine({ initial: 'waiting', states: { waiting: {} } }),
});

let service: HttpService;
let browser: Browser;

beforeAll(async () => {
  service = await startHttpService({ workflows: [waiting] });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
  await service?.close();
});

it("shows a state.unwritable entry's message as text, its markup inert and its bidi controls as code points", async () => {
  const runId = await service.engine.start(waiting, {}, { runId: 'unwritable-shown' });
  const message = 'The state holds "<img src=x onerror=window.pwned=1>abc\u202egnp.exe\u061c" over limits.snapshotBytes (2048 bytes).';
  await appendHistory(
    await service.engine.db(),
    runId,
    [unwritableStateEntry({ name: 'WorkflowError', message, code: 'SIZE_LIMIT_EXCEEDED', category: 'permanent' })],
    null,
  );
  const page = await browser.newPage();
  try {
    await page.goto(`${service.url}/runs/${runId}`);
    const row = page.locator('#history tr', { hasText: 'state.unwritable' });
    await row.waitFor({ timeout: 20_000 });
    expect(await row.locator('.history-message').textContent()).toBe(
      'The state holds "<img src=x onerror=window.pwned=1>abc[U+202E]gnp.exe[U+061C]" over limits.snapshotBytes (2048 bytes).',
    );
    expect(await page.locator('#history img').count(), 'an element made from the message').toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { pwned?: number }).pwned)).toBeUndefined();
  } finally {
    await page.close();
  }
});
