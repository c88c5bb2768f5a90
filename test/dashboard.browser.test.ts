/**
 * The dashboard in a real browser (Debian's Chromium via playwright-core): the runs list shows a
 * running and a failed run, the run page draws the statechart with the current state marked, and
 * Cancel cancels. Plus the token rule of the API when the dashboard has a token. A run started from
 * the form (fields from the workflow's zod schema) waits with its wake-up time shown and an `after`
 * edge in its chart, takes an event from the events form and finishes; the API's writes refuse a
 * client's mistakes with a 4xx naming them. Runs the retention deletes leave the list, and an open
 * page of one says it is gone (told by the stream, or by the API's 404 when it polls); a page keeps the
 * one stream it opened across its navigations. The run page's screenshot goes to docs/ (the list's and
 * the demo's: test/demo.test.ts, which watches `rmapp demo` live).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, step } from '../src/index.ts';
import { pruneRuns } from '../src/persistence/retention.ts';
import { terminalSafe } from '../src/rmapp/cli/format.ts';
import { loadConfig } from '../src/rmapp/config.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { startService, type Service } from '../src/rmapp/service.ts';
import { approvalWorkflow, hangingWorkflow } from './helpers/durability-workflows.ts';
import { failingWorkflow } from './helpers/workflows.ts';
import { until } from './helpers/processes.ts';
import { screenshotPath } from './helpers/screenshots.ts';

/** Throws on an event without `ok`: a poison event the page offers to retry without. */
const picky = defineWorkflow({
  name: 'test.picky',
  input: z.object({}),
  machine: setup({ types: {} as { events: { type: 'poke'; ok?: boolean } | { type: 'done' } } }).createMachine({
    initial: 'waiting',
    states: {
      waiting: {
        on: {
          poke: {
            actions: ({ event }) => {
              if (!event.ok) throw new Error('a poke needs ok');
            },
          },
          done: 'finished',
        },
      },
      finished: { type: 'final' },
    },
  }),
});

/**
 * Fails in its step once an event sent to it is in its inbox (kept there: its state does not take it):
 * a failed run whose error names no signal, with one queued.
 */
const failsWithQueued = defineWorkflow({
  name: 'test.fails-with-queued',
  input: z.object({}),
  machine: setup({
    actors: {
      work: step(
        async ({ runId }) => {
          await until(async () => (await service.engine.queuedSignals(runId)).signals.length > 0, 20_000, 'an event in the inbox');
          throw new Error('the step gave up');
        },
        { retry: { maxAttempts: 1 } },
      ),
    },
  }).createMachine({ initial: 'working', states: { working: { invoke: { src: 'work', onDone: 'done' } }, done: { type: 'final' } } }),
});

let service: Service;
let browser: Browser;
const TOKEN = 'dashboard-token-0123456789';

async function serve(env: Record<string, string>): Promise<Service> {
  const config = await loadConfig({ env: { PORT: '0', ...env }, cwd: mkdtempSync(join(tmpdir(), 'rmapp-dash-')) });
  return startService({
    config,
    extraWorkflows: [hangingWorkflow(), failingWorkflow(), approvalWorkflow(), picky, failsWithQueued],
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
  // The list is drawn again from the filtered answer: wait for that answer's row, not just for the old
  // row to go (a CI run counted the rows in between and found none).
  await page.locator('tr[data-id="demo-failed"]').waitFor();
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
    const ok = await fetch(`${guarded.url}/api/runs/${id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'x-rmapp-request': '1' },
    });
    expect(ok.status).toBe(200);
    expect((await guarded.engine.get(id)).status).toBe('cancelled');
    // Signed in through the page's own form, in the browser: it answered 403 (the browser sent
    // `Origin: null` under the old `no-referrer` policy), so only the token in the URL worked.
    const page = await browser.newPage();
    await page.goto(`${guarded.url}/`);
    await page.fill('input[name=token]', TOKEN);
    const [answer] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/login')), page.click('form button')]);
    expect(answer.status(), 'the sign-in form').toBe(303);
    await page.waitForURL(`${guarded.url}/`);
    expect((await page.context().cookies()).map((c) => c.name)).toContain('rmapp_token');
    expect(await page.evaluate(() => fetch('/api/runs').then((r) => r.status)), 'the API with the session cookie').toBe(200);
    // Signed out through the page's own button: the browser forgets the token and is back at the sign-in page.
    const [out] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/logout')), page.click('form.signout button')]);
    expect(out.status(), 'the sign-out button').toBe(303);
    await page.waitForURL(`${guarded.url}/login`);
    expect(await page.locator('input[name=token]').count(), 'the sign-in page after signing out').toBe(1);
    expect((await page.context().cookies()).map((c) => c.name)).not.toContain('rmapp_token');
    expect(await page.evaluate(() => fetch('/api/runs').then((r) => r.status)), 'the API after signing out').toBe(401);
    // Not by a link or a prefetch: GET signs nobody out.
    expect((await fetch(`${guarded.url}/logout`, { redirect: 'manual' })).status).toBe(405);
    await page.close();
    const login = await fetch(`${guarded.url}/login?token=${TOKEN}`, { redirect: 'manual' });
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')?.split(';')[0] as string;
    expect((await fetch(`${guarded.url}/api/runs`, { headers: { cookie } })).status).toBe(200);
  } finally {
    await guarded.stop({ graceMs: 500 });
  }
});

const post = (path: string, body: string, headers: Record<string, string> = { 'x-rmapp-request': '1' }) =>
  fetch(`${service.url}/api${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body }).then(
    async (r) => ({ status: r.status, body: (await r.json()) as { error?: string; id?: string } }),
  );

it('refuses bad starts and events with a 4xx that names the mistake', async () => {
  expect(await post('/runs', '{"workflow":"test.approval","input":{"timeoutMs":1}}', {})).toMatchObject({
    status: 403,
    body: { error: 'Missing X-Rmapp-Request: 1 header.' },
  });
  expect(await post('/runs', 'not json')).toMatchObject({
    status: 400,
    body: { error: expect.stringMatching(/^The body is not JSON: send a JSON object such as/) },
  });
  expect(await post('/runs', '[1]')).toMatchObject({
    status: 400,
    body: { error: expect.stringMatching(/^The body must be a JSON object/) },
  });
  expect(await post('/runs', '{"input":{}}')).toMatchObject({
    status: 400,
    body: { error: expect.stringMatching(/^Bad request to start a run \(workflow: /) },
  });
  expect(await post('/runs', '{"workflow":"nope"}')).toMatchObject({
    status: 400,
    body: { error: expect.stringMatching(/^Unknown workflow "nope"\. Registered workflows: .*test\.approval/) },
  });
  expect(await post('/runs', '{"workflow":"test.approval","input":{"timeoutMs":"soon"}}')).toMatchObject({
    status: 400,
    body: { error: expect.stringMatching(/^Invalid input for workflow "test\.approval": timeoutMs: /) },
  });
  expect(await post('/runs/nope/events', '{"type":"approve"}')).toMatchObject({ status: 404 });
  const { body } = await post('/runs', '{"workflow":"test.approval","input":{"timeoutMs":600000},"idempotencyKey":"k-1"}');
  expect((await post('/runs', '{"workflow":"test.approval","input":{"timeoutMs":600000},"idempotencyKey":"k-1"}')).body.id).toBe(body.id);
  expect(await post(`/runs/${body.id}/events`, '{"by":"ada"}')).toMatchObject({
    status: 400,
    body: { error: expect.stringMatching(/needs a non-empty string "type"/) },
  });
  expect(await post(`/runs/${body.id}/events`, '{"type":"xstate.init"}')).toMatchObject({
    status: 400,
    body: { error: expect.stringMatching(/is reserved/) },
  });
  expect(await post(`/runs/${body.id}/events?waitMs=abc`, '{"type":"approve"}')).toMatchObject({
    status: 400,
    body: { error: expect.stringMatching(/^waitMs must be a whole number of milliseconds from 0 to 10000, not "abc"/) },
  });
  // An event the waiting state does not accept: the answer says the run ignored it, not that it was "sent".
  await until(async () => (await service.engine.get(body.id as string)).status === 'waiting');
  expect(await post(`/runs/${body.id}/events?waitMs=10000`, '{"type":"nonsense"}')).toMatchObject({
    status: 202,
    body: { delivered: true, outcome: 'ignored' },
  });
  await service.engine.cancel(body.id as string, 'test over');
});

it('a run that failed handling an event offers a retry without it, which resumes the run', async () => {
  const id = await service.engine.start('test.picky', {}, { runId: 'demo-poisoned' });
  const { id: signal } = await service.engine.send(id, { type: 'poke' });
  expect((await service.engine.waitFor(id, { timeoutMs: 20_000 })).error?.code).toBe('MACHINE_ERROR');
  const page = await browser.newPage();
  await page.goto(`${service.url}/runs/demo-poisoned`);
  const button = page.locator('#retry-drop');
  await button.waitFor();
  expect(await button.textContent()).toBe(`Retry without signal #${signal} poke`);
  await button.click();
  await page.locator('#action-result', { hasText: `without signal ${signal} ("poke")` }).waitFor();
  await until(async () => (await service.engine.get(id)).status !== 'failed', 20_000, 'the run to resume');
  await service.engine.send(id, { type: 'done' });
  expect((await service.engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
  // A run that failed in a step, not on an event, has no such button; the signals queued meanwhile can
  // be left out by choice.
  const stepFailed = await service.engine.start('test.fails-with-queued', {}, { runId: 'demo-failed-queued' });
  const { id: queued } = await service.engine.send(stepFailed, { type: 'poke' }, { buffer: true });
  expect((await service.engine.waitFor(stepFailed, { timeoutMs: 20_000 })).error?.message).toMatch(/the step gave up/);
  await page.goto(`${service.url}/runs/demo-failed-queued`);
  await page.locator('#run-error').waitFor();
  expect(await page.locator('#retry-drop').count()).toBe(0);
  expect(await page.locator('#drop-choice option').allTextContents()).toEqual([`#${queued} poke`]);
  await page.locator('#retry-drop-chosen').click();
  await page.locator('#action-result', { hasText: `without signal ${queued} ("poke")` }).waitFor();
  expect((await service.engine.queuedSignals(stepFailed)).signals, 'the chosen signal left out').toEqual([]);
  await page.close();
});

it('starts a run from the form; the waiting run shows its wake-up, an `after` edge, and takes an event from the form', async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(`${service.url}/`);
  await page.locator('#start summary').click();
  await page.locator('#start-workflow').selectOption('test.approval');
  await page.locator('#start-fields input[name="timeoutMs"]').fill('3600000');
  await page.locator('#start-form button[type="submit"]').click();
  await page.waitForURL(/\/runs\//);
  const id = decodeURIComponent(new URL(page.url()).pathname.slice('/runs/'.length));
  expect((await service.engine.get(id)).input).toEqual({ timeoutMs: 3_600_000 });

  await page.locator('#wake-up').waitFor();
  expect(await page.locator('#wake-up').textContent()).toMatch(/wakes up at/);
  expect(await page.locator('#chart path.edge.after').count()).toBeGreaterThan(0);
  expect(await page.locator('#chart [data-initial]').count()).toBeGreaterThan(0);
  expect(await page.locator('#timeline [data-kind="attempt"]').count()).toBeGreaterThan(0);
  await page.screenshot({ path: screenshotPath('dashboard-run.png'), fullPage: true });

  await page.locator('#event-type').selectOption('approve');
  await page.locator('#event-payload').fill('{"by":"ada"}');
  await page.locator('#event-form button[type="submit"]').click();
  await page.locator('#event-result', { hasText: 'The run took approve.' }).waitFor();
  await page.locator('#run-title [data-status="succeeded"]').waitFor();
  expect((await service.engine.get(id)).output).toEqual({ approvals: 1, approvedBy: 'ada' });
  expect(await page.locator('#signals').textContent()).toContain('"by": "ada"');
  await page.close();
});

it('a run the retention deletes leaves the list and its open page says so, over the one live stream the page keeps', async () => {
  for (const runId of ['dash-pruned', 'dash-polled']) {
    const id = await service.engine.start('test.fails', {}, { runId });
    expect((await service.engine.waitFor(id, { timeoutMs: 20_000 })).status, runId).toBe('failed');
  }
  const list = await browser.newPage();
  const streams: string[] = [];
  list.on('request', (r) => {
    if (new URL(r.url()).pathname === '/api/stream') streams.push(r.url());
  });
  await list.goto(`${service.url}/`);
  await list.locator('tr[data-id="dash-pruned"]').waitFor();
  // Navigations inside the page (filters, a run's link, back) keep the stream it opened.
  await list.locator('button[data-filter="failed"]').click();
  await list.locator('a[data-run="dash-pruned"]').click();
  await list.locator('#run-title').waitFor();
  await list.goBack();
  await list.locator('button[data-filter=""]').click();
  await list.locator('tr[data-id="dash-pruned"]').waitFor();
  await list.locator('#live[data-mode="stream"]').waitFor();
  expect(streams, 'requests of /api/stream by one page').toHaveLength(1);

  const runPage = await browser.newPage();
  await runPage.goto(`${service.url}/runs/dash-pruned`);
  await runPage.locator('#run-title [data-status="failed"]').waitFor();
  await runPage.locator('#live[data-mode="stream"]').waitFor();

  // A page without the stream (refused here) polls: it finds its run gone by the API's 404.
  const polling = await browser.newPage();
  await polling.route('**/api/stream', (route) => route.abort());
  await polling.goto(`${service.url}/runs/dash-polled`);
  await polling.locator('#run-title [data-status="failed"]').waitFor();
  await polling.locator('#live[data-mode="polling"]').waitFor();

  const pruned = await pruneRuns(await service.engine.db(), { succeededMs: Infinity, failedMs: 0, cancelledMs: Infinity });
  expect(pruned.runs, 'failed runs the retention deleted').toBeGreaterThanOrEqual(1);
  await list.locator('tr[data-id="dash-pruned"]').waitFor({ state: 'detached' });
  await runPage.locator('#run-removed').waitFor();
  expect(await runPage.locator('#run-removed').textContent()).toMatch(/no longer exists/);
  await polling.locator('#run-removed').waitFor();
  await list.close();
  await runPage.close();
  await polling.close();
});

it('a list whose first answer comes after a run was opened from it does not draw itself over the run', async () => {
  const id = await service.engine.start('test.fails', {}, { runId: 'dash-slow-list' });
  expect((await service.engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('failed');
  const page = await browser.newPage();
  await page.goto(`${service.url}/`);
  await page.locator('a[data-run="dash-slow-list"]').waitFor();
  // From now on the list's first request is answered late.
  let answered: () => void = () => {};
  const late = new Promise<void>((resolve) => (answered = resolve));
  await page.route('**/api/workflows', async (route) => {
    await late;
    await route.continue();
  });
  await page.locator('button[data-filter="failed"]').click();
  // The run's link of the list still shown, while the filtered list waits for its answer.
  await page.locator('a[data-run="dash-slow-list"]').click();
  await page.locator('#run-title [data-status="failed"]').waitFor();
  answered();
  await page.waitForResponse('**/api/workflows');
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(await page.locator('#run-title').count(), 'the run page after the list’s late answer').toBe(1);
  await page.close();
});

it('a run deleted while its page is still loading stays shown as gone; a run that never existed is named as not found', async () => {
  const id = await service.engine.start('test.fails', {}, { runId: 'dash-held' });
  expect((await service.engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('failed');
  const page = await browser.newPage();
  // The page's first read of the run is held until the run is gone and the page has been told.
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  let held = false;
  await page.route('**/api/runs/dash-held', async (route) => {
    if (!held) {
      held = true;
      await released;
    }
    await route.continue();
  });
  await page.goto(`${service.url}/runs/dash-held`);
  await page.locator('#live[data-mode="stream"]').waitFor();
  await service.engine.db().then((db) => db.query(`delete from rmapp_runs where id = 'dash-held'`));
  await page.locator('#run-removed').waitFor();
  release();
  // The held answer (the run as it was) arrives after the notice: it must not draw over it.
  await page.waitForLoadState('networkidle');
  // The notice says the run is gone: in the stream's words, or (when a re-render read the run after
  // the delete and before the stream's notice came, on a loaded machine) in the API's 404.
  expect(await page.locator('#run-removed').textContent(), 'the notice after the late answer').toMatch(
    /no longer exists|^No run with id "dash-held"/,
  );
  expect(await page.locator('#chart').count(), 'charts drawn after the notice').toBe(0);

  await page.goto(`${service.url}/runs/never-was-a-run`);
  await page.locator('.error').first().waitFor();
  expect(await page.locator('#app').textContent()).toContain('No run with id "never-was-a-run"');
  expect(await page.locator('#app').textContent()).not.toMatch(/retention/);
  await page.close();
});

it('the page shows bidirectional controls as the CLI does, from the one definition the server serves beside html.js', async () => {
  const controls = ['\u061c', '\u200e', '\u200f', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069'];
  const page = await browser.newPage();
  await page.goto(`${service.url}/`);
  // As a string: vitest rewrites an `import()` written in this file into a function the page does not have.
  const texts = JSON.stringify(controls.map((c) => `a${c}b`));
  const shown = (await page.evaluate(`import('/html.js').then(({ esc, plain }) => ${texts}.map((t) => [esc(t), plain(t)]))`)) as string[][];
  await page.close();
  expect(shown).toEqual(controls.map((c) => `a${c}b`).map((t) => [terminalSafe(t), terminalSafe(t)]));
  expect(shown[7]).toEqual(['a[U+202E]b', 'a[U+202E]b']);
});
