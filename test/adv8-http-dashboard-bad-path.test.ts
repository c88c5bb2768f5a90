/**
 * A run page whose address is not valid percent-encoding (`/runs/%E0`, a link cut short) says so. The
 * server serves the page for any `/runs/…` path, and the dashboard decoded the id with
 * `decodeURIComponent` outside its error handling: the URIError escaped and the page stayed on
 * "Loading…" for good, with no word of what was wrong (a client's mistake gets a clear message).
 */
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHttpService, type HttpService } from './helpers/http-service.ts';

let service: HttpService;
let browser: Browser;

beforeAll(async () => {
  service = await startHttpService();
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
});
afterAll(async () => {
  await browser?.close();
  await service?.close();
});

it.each(['%E0', '%ZZ', 'abc%E2%80'])('/runs/%s: the page names the bad address instead of loading for ever', async (bad) => {
  const page = await browser.newPage();
  try {
    await page.goto(`${service.url}/runs/${bad}`);
    const error = page.locator('#app .error');
    await error.waitFor({ timeout: 10_000 });
    expect(await error.textContent()).toContain('percent-encoding');
    expect(await page.locator('#app').textContent()).not.toContain('Loading');
  } finally {
    await page.close();
  }
});

it('a well-formed address of a run that does not exist still says so', async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${service.url}/runs/${encodeURIComponent('no/such run')}`);
    await page.locator('#run-removed').waitFor({ timeout: 10_000 });
    expect(await page.locator('#run-removed').textContent()).toContain('no/such run');
  } finally {
    await page.close();
  }
});
