/**
 * The agent's session on the run page in real Chromium: the transcript of a running agent step grows
 * on the page without a reload (live over /api/stream's `artifact` events), and the page's Cancel
 * stops the agent, whose transcript then says cancelled.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../src/rmapp/config.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { startService, type Service } from '../src/rmapp/service.ts';
import { agentWorkflow, fakeAgent } from './helpers/agent-workflow.ts';
import { until } from './helpers/processes.ts';
import { testSandbox } from './helpers/sandbox.ts';
import { screenshotPath } from './helpers/screenshots.ts';

let service: Service;
let browser: Browser;

beforeAll(async () => {
  const config = await loadConfig({ env: { PORT: '0' }, cwd: mkdtempSync(join(tmpdir(), 'rmapp-session-')) });
  service = await startService({
    config,
    extraWorkflows: [
      agentWorkflow({ kind: 'claude-code', command: fakeAgent('claude'), timeoutMs: 120_000, sandbox: testSandbox, saveIntervalMs: 150 }),
    ],
    database: { url: '', dataDir: 'memory://' },
    engine: { pollMs: 50 },
    log: createLogger({ level: 'silent' }),
  });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
  await service?.stop({ graceMs: 1_000 });
});

it("a running agent's transcript grows on the run page without a reload, and Cancel stops the agent", async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'rmapp-session-ws-'));
  const id = await service.engine.start('test.agent', { cwd, prompt: 'TURNS 200\nDELAY 400' }, { runId: 'session-live' });
  const page = await browser.newPage();
  await page.goto(`${service.url}/runs/${id}#logs`);
  const panel = page.locator('details.log[data-log^="transcript/"]');
  await panel.waitFor();
  // Live over the event stream (not the polling fallback): the run's row does not change while the step runs.
  await page.locator('#live[data-mode="stream"]').waitFor();
  // Marks this document: a reload would lose it.
  await page.evaluate(() => ((globalThis as unknown as { sameDocument: boolean }).sameDocument = true));
  const calls = async () => Number((await panel.locator('[data-fact="tool-calls"]').textContent())?.split(' ')[0]?.replace(/,/g, ''));
  await until(async () => (await calls()) >= 1, 30_000, 'the first tool call on the page');
  const first = await calls();
  await until(async () => (await calls()) >= first + 2, 30_000, 'the transcript to grow on the page');
  expect(await panel.getAttribute('open'), 'a running session is open').not.toBeNull();
  expect(await panel.locator('.e-call').count()).toBeGreaterThanOrEqual(first + 2);
  expect(await panel.locator('[data-status="running"]').count()).toBe(1);
  expect(await page.evaluate(() => (globalThis as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
  await panel.screenshot({ path: screenshotPath('agent-session.png') });

  await page.locator('#cancel').click();
  await page.locator('#run-title [data-status="cancelled"]').waitFor({ timeout: 20_000 });
  await panel.locator('[data-status="cancelled"]').waitFor({ timeout: 20_000 });
  // The agent is stopped: its heartbeat (a counter it writes every 50 ms) no longer moves.
  const beat = () => readFileSync(join(cwd, '.fake-agent-heartbeat'), 'utf8');
  const stopped = beat();
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(beat(), 'the agent still runs').toBe(stopped);
  await page.close();
});
