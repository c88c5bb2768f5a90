/**
 * The dashboard in a real browser (Debian's Chromium via playwright-core): the runs list shows a
 * running and a failed run, the run page draws the statechart with the current state marked, and
 * Cancel cancels. Plus the token rule of the API when the dashboard has a token.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../src/rmapp/config.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { startService, type Service } from '../src/rmapp/service.ts';
import { hangingWorkflow } from './helpers/durability-workflows.ts';
import { failingWorkflow } from './helpers/workflows.ts';
import { until } from './helpers/processes.ts';

let service: Service;
let browser: Browser;
const TOKEN = 'dashboard-token-0123456789';

async function serve(env: Record<string, string>): Promise<Service> {
  const config = await loadConfig({ env: { PORT: '0', ...env }, cwd: mkdtempSync(join(tmpdir(), 'rmapp-dash-')) });
  return startService({
    config,
    extraWorkflows: [hangingWorkflow(), failingWorkflow()],
    database: { url: '', dataDir: 'memory://' },
    engine: { pollMs: 50 },
    log: createLogger({ level: 'silent' }),
  });
}

beforeAll(async () => {
  service = await serve({});
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
  await service?.stop({ graceMs: 1_000 });
});

it('lists a running and a failed run, draws the statechart with the current state, and cancels', async () => {
  const running = await service.engine.start('test.hanging', {}, { runId: 'demo-running' });
  const failed = await service.engine.start('test.fails', {}, { runId: 'demo-failed' });
  await until(async () => (await service.engine.get(running)).status === 'running', 20_000, 'the hanging run to run');
  expect((await service.engine.waitFor(failed, { timeoutMs: 20_000 })).status).toBe('failed');

  const page = await browser.newPage();
  await page.goto(`${service.url}/`);
  await page.locator('tr[data-id="demo-running"] [data-status="running"]').waitFor();
  await page.locator('tr[data-id="demo-failed"] [data-status="failed"]').waitFor();
  expect(await page.locator('tr[data-id="demo-failed"] .error').textContent()).toContain('the widget is broken');

  await page.locator('button[data-filter="failed"]').click();
  await page.locator('tr[data-id="demo-running"]').waitFor({ state: 'detached' });
  expect(await page.locator('#runs tbody tr').count()).toBe(1);

  await page.goto(`${service.url}/runs/demo-running`);
  const current = page.locator('#chart g.st.current');
  await current.first().waitFor();
  expect(await current.getAttribute('data-state')).toBe('hanging.working');
  expect(await page.locator('#chart g.st[data-state="hanging.done"]').count()).toBe(1);
  expect(await page.locator('#chart path.edge').count()).toBeGreaterThan(0);

  await page.locator('#cancel').click();
  await page.locator('#run-title [data-status="cancelled"]').waitFor({ timeout: 20_000 });
  expect((await service.engine.get(running)).status).toBe('cancelled');

  await page.goto(`${service.url}/runs/demo-failed`);
  await page.locator('#run-error').waitFor();
  expect(await page.locator('#run-error').textContent()).toMatch(/permanent.*WIDGET_BROKEN.*the widget is broken/);
  expect(await page.locator('#chart g.st.failed').count()).toBeGreaterThan(0);
  await page.close();
});

it('with a dashboard token, the API and pages need it; state changes need the CSRF header', async () => {
  const guarded = await serve({ RMAPP_DASHBOARD_TOKEN: TOKEN });
  try {
    expect((await fetch(`${guarded.url}/api/runs`)).status).toBe(401);
    expect((await fetch(`${guarded.url}/`)).status).toBe(401);
    expect((await fetch(`${guarded.url}/api/runs`, { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
    expect((await fetch(`${guarded.url}/api/runs`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    const id = await guarded.engine.start('test.hanging', {});
    const noCsrf = await fetch(`${guarded.url}/api/runs/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(noCsrf.status).toBe(403);
    const ok = await fetch(`${guarded.url}/api/runs/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'x-rmapp-request': '1' } });
    expect(ok.status).toBe(200);
    expect((await guarded.engine.get(id)).status).toBe('cancelled');
    const login = await fetch(`${guarded.url}/login?token=${TOKEN}`, { redirect: 'manual' });
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')?.split(';')[0] as string;
    expect((await fetch(`${guarded.url}/api/runs`, { headers: { cookie } })).status).toBe(200);
  } finally {
    await guarded.stop({ graceMs: 500 });
  }
});
