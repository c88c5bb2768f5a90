/**
 * The JSON API names no file of the server: a failed run's error and its history's failed steps were
 * answered with their stacks (`at boom (/srv/app/dist/…:6:53)`), to whoever may read the dashboard. The
 * stacks stay in the store and, for a failure of the server itself (a 500), in the server's log.
 */
import { Writable } from 'node:stream';
import { afterAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step, type Engine } from '../src/index.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { withoutErrorStacks } from '../src/rmapp/server/error-stacks.ts';
import { startApiServer } from './helpers/api-server.ts';
import { ROOT } from './helpers/processes.ts';

const boom = step(
  async () => {
    throw Object.assign(new Error('the widget is broken'), { category: 'transient', code: 'WIDGET_BROKEN' });
  },
  { retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 1 } },
);
const fails = defineWorkflow({
  name: 'test.stack-fails',
  input: z.object({ n: z.number() }),
  machine: setup({ actors: { boom } }).createMachine({
    initial: 'working',
    states: { working: { invoke: { src: 'boom', onDone: 'done' } }, done: { type: 'final' } },
  }),
});

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A server of the API on `engine`, with the lines it logs at error level. */
async function serve(engine: Engine) {
  const logged: string[] = [];
  const destination = new Writable({ write: (chunk: Buffer, _enc, done) => (logged.push(chunk.toString('utf8')), done()) });
  const server = await startApiServer(engine, undefined, [], createLogger({ level: 'error', destination }));
  cleanups.push(() => server.close());
  return { url: server.url, logged };
}

/** Where an answer would show the server's files: its absolute paths, and stack frames. */
const SERVER_FILES = new RegExp(`${ROOT.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}|\\n\\s+at |"stack"`);

it("answers a failed run, its list and its history without the errors' stacks; a 500 names no file, the log has the stack", async () => {
  const engine = createEngine({ workflows: [fails], database: { url: '', dataDir: 'memory://' }, pollMs: 50 });
  cleanups.push(() => engine.stop());
  await engine.startWorker();
  const server = await serve(engine);
  const id = await engine.start(fails, { n: 1 });
  expect((await engine.waitFor(id, { timeoutMs: 30_000 })).status).toBe('failed');
  // The store keeps it: the engine on the server, `rmapp runs show --json`.
  expect((await engine.get(id)).error?.stack).toMatch(/\n\s+at /);

  const get = async (path: string, init?: RequestInit) => {
    const res = await fetch(`${server.url}${path}`, init);
    return { status: res.status, text: await res.text() };
  };
  for (const path of ['/api/runs', `/api/runs/${id}`, `/api/runs/${id}/history`]) {
    const answer = await get(path);
    expect(answer.status, path).toBe(200);
    expect(answer.text, path).not.toMatch(SERVER_FILES);
    expect(answer.text, path).toContain('"message":"the widget is broken"');
  }
  const run = JSON.parse((await get(`/api/runs/${id}`)).text) as {
    run: { error: Record<string, unknown> };
    history: { type: string; data: { error?: Record<string, unknown> } }[];
  };
  expect(run.run.error).toEqual({
    name: 'Error',
    message: 'the widget is broken',
    code: 'WIDGET_BROKEN',
    category: 'transient',
    details: { step: 'boom' },
  });
  expect(run.history.filter((e) => e.data?.error).map((e) => e.type)).toEqual(['step.retrying', 'step.failed', 'run.failed']);

  // A client's mistakes: the message only.
  const post = (path: string, body: string) =>
    get(path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-rmapp-request': '1' }, body });
  for (const [path, body, status] of [
    ['/api/runs', '{"workflow":"test.stack-fails","input":{"n":"x"}}', 400],
    ['/api/runs', '{"workflow":"nope"}', 400],
    [`/api/runs/${id}/events`, '{"type":"go"}', 409],
    ['/api/runs', 'not json', 400],
  ] as const) {
    const answer = await post(path, body);
    expect(answer.status, `${path} ${body}`).toBe(status);
    expect(Object.keys(JSON.parse(answer.text) as object), `${path} ${body}`).toEqual(['error']);
    expect(answer.text, `${path} ${body}`).not.toMatch(SERVER_FILES);
  }

  // The server's own failure (a list that throws, as a database's outage would): a 500 that names
  // nothing; the log has the stack.
  const broken = Object.create(engine, {
    list: { value: () => Promise.reject(new Error(`the store at ${ROOT}db is gone`)) },
  }) as typeof engine;
  const brokenServer = await serve(broken);
  const res = await fetch(`${brokenServer.url}/api/runs`);
  expect({ status: res.status, text: await res.text() }).toEqual({
    status: 500,
    text: JSON.stringify({ error: 'Internal error; see the server log.' }),
  });
  const line = brokenServer.logged.find((l) => l.includes('request failed'));
  expect(line, brokenServer.logged.join('')).toMatch(/"stack":"[^"]*\\n\s+at /);
});

it('leaves out the stacks of stored errors only, in a copy', () => {
  const stored = { name: 'Error', message: 'm', code: 'E', category: 'permanent', stack: 'Error: m\n    at /srv/x.js:1:1' };
  const answer = { run: { error: stored, output: { stack: ['a', 'b'] }, at: new Date(0) }, history: [{ data: { previousError: stored } }] };
  const { stack: _stack, ...kept } = stored;
  expect(withoutErrorStacks(answer)).toEqual({
    run: { error: kept, output: { stack: ['a', 'b'] }, at: new Date(0) },
    history: [{ data: { previousError: kept } }],
  });
  expect(answer.run.error.stack, 'the value given').toBe(stored.stack);
});
