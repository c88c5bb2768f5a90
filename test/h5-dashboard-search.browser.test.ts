/**
 * The runs list's search box asks the server (`GET /api/runs?idPrefix=`) rather than filtering only the
 * runs the page loaded (the newest 200): a run older than those is found by the start of its id, matched
 * as typed (`_` is no wildcard). What is typed reaches the API URL-encoded (an `&` in it adds no
 * parameter) and never the page's markup.
 */
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow } from '../src/index.ts';
import { startHttpService, type HttpService } from './helpers/http-service.ts';

const waiting = defineWorkflow({
  name: 'test.h5-search',
  input: z.object({ note: z.string() }),
  machine: setup({}).createMachine({ initial: 'waiting', states: { waiting: {} } }),
});

/** More runs than the list loads (its `limit=200`), all newer than the two searched for. */
const NEWER = 210;

let service: HttpService;
let browser: Browser;

beforeAll(async () => {
  service = await startHttpService({ workflows: [waiting] });
  const db = await service.engine.db();
  for (const id of ['zz_old-target', 'zzxold-decoy']) {
    await service.engine.start(waiting, { note: 'old' }, { runId: id });
    await db.query(`update rmapp_runs set created_at = '2020-01-01T00:00:00Z' where id = $1`, [id]);
  }
  for (let i = 0; i < NEWER; i++) await service.engine.start(waiting, { note: `newer ${i}` }, { runId: `newer-${i}` });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox'] });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await service?.close();
});

/** The ids of the runs the list shows. */
const shownIds = (page: Page) => page.locator('#runs tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));

/** Types `text` into the search box and waits until the list shows exactly `ids` (sorted). */
async function search(page: Page, text: string, ids: string[]): Promise<void> {
  await page.locator('#search').fill(text);
  await expect
    .poll(async () => [...(await shownIds(page))].sort(), {
      timeout: 20_000,
      message: `the runs shown for the search ${JSON.stringify(text)}`,
    })
    .toEqual(ids);
}

it(
  'finds a run older than the newest 200 by the start of its id, asking the server with the text encoded',
  { timeout: 120_000 },
  async () => {
    const page = await browser.newPage();
    const asked: string[] = [];
    page.on('request', (req) => {
      if (new URL(req.url()).pathname === '/api/runs') asked.push(new URL(req.url()).search);
    });
    try {
      await page.goto(service.url);
      await page.locator('#runs tbody tr').first().waitFor({ timeout: 20_000 });
      const first = await shownIds(page);
      expect(first.length, 'the runs the list loads').toBe(200);
      expect(first, 'an old run among the newest 200 (the test would prove nothing)').not.toContain('zz_old-target');

      await search(page, 'zz', ['zz_old-target', 'zzxold-decoy']);
      // `_` stands for itself: the decoy (zzx…) would match it as a LIKE wildcard.
      await search(page, 'zz_', ['zz_old-target']);
      expect(asked, 'the prefix as the API was asked for it').toContain('?limit=200&idPrefix=zz_');
      // The subject (and the rest of an id) still match over the runs loaded.
      await search(page, 'newer 209', ['newer-209']);
      await search(page, '', [...(first as string[])].sort());

      // Markup and query syntax in the search: encoded into the request, shown nowhere, matching nothing.
      const hostile = '"><img src=x onerror=window.pwned=1>&status=failed#';
      await page.locator('#search').fill(hostile);
      await expect.poll(() => asked.some((q) => q.includes(`&idPrefix=${encodeURIComponent(hostile)}`)), { timeout: 20_000 }).toBe(true);
      await page.locator('#runs-box p', { hasText: 'No run matches.' }).waitFor({ timeout: 20_000 });
      expect(
        asked.filter((q) => q.includes('status=failed')),
        'a parameter added by the typed text',
      ).toEqual([]);
      expect(await page.locator('img').count(), 'an element made from the search').toBe(0);
      expect(await page.evaluate(() => (globalThis as unknown as { pwned?: number }).pwned)).toBeUndefined();
    } finally {
      await page.close();
    }
  },
);

it('a search in the page address is shown in the box as text and finds the old run', { timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${service.url}/?q=${encodeURIComponent('zz_')}`);
    await expect.poll(async () => [...(await shownIds(page))].sort(), { timeout: 20_000 }).toEqual(['zz_old-target']);
    const markup = '"><img src=x onerror=window.pwned=2>';
    await page.goto(`${service.url}/?q=${encodeURIComponent(markup)}`);
    await page.locator('#runs-box p', { hasText: 'No run matches.' }).waitFor({ timeout: 20_000 });
    expect(await page.locator('#search').inputValue()).toBe(markup);
    expect(await page.locator('img').count(), 'an element made from the address').toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { pwned?: number }).pwned)).toBeUndefined();
  } finally {
    await page.close();
  }
});
