/**
 * The live stream keeps run changes announced while it has clients (src/rmapp/server/stream.ts,
 * src/persistence/run-changes.ts): a client must never be served while nothing is announced, and a
 * watch that ran out while renewals failed, or a LISTEN connection lost and made again, must not leave
 * connected dashboards stale.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, expect, it, vi } from 'vitest';
import { RUN_CHANGE_WATCH_MS } from '../src/persistence/run-changes.ts';
import type { Engine } from '../src/state_machine/engine.ts';
import { createMasker } from '../src/rmapp/masking.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { ARTIFACT_CHANGED_CHANNEL } from '../src/persistence/artifacts.ts';
import { MAX_UNREAD_BYTES, runStream } from '../src/rmapp/server/stream.ts';

afterEach(() => vi.useRealTimers());

/** A database whose watch statements answer as the test says; LISTEN always works. */
function fakeEngine() {
  const watches: { resolve: () => void; reject: (e: Error) => void }[] = [];
  const reconnectHooks: (() => void)[] = [];
  let mode: 'ok' | 'fail' | 'manual' = 'ok';
  const listeners = new Map<string, (payload: string) => void>();
  const db = {
    listen: async (channel: string, onPayload: (payload: string) => void, options?: { onReconnect?: () => void }) => {
      listeners.set(channel, onPayload);
      if (options?.onReconnect) reconnectHooks.push(options.onReconnect);
      return async () => {};
    },
    query: (sql: string) => {
      if (!sql.includes('rmapp_run_change_watch')) throw new Error(`unexpected statement ${sql}`);
      if (mode === 'ok') return Promise.resolve({ rows: [] });
      if (mode === 'fail') return Promise.reject(new Error('connection refused'));
      return new Promise((resolve, reject) => watches.push({ resolve: () => resolve({ rows: [] }), reject }));
    },
  };
  const engine = { db: async () => db } as unknown as Engine;
  /** The LISTEN connection was lost and made again. */
  const reconnect = () => reconnectHooks.forEach((hook) => hook());
  /** A notification on `channel`, as Postgres would deliver it. */
  const notify = (channel: string, payload: string) => listeners.get(channel)?.(payload);
  return { engine, watches, reconnect, notify, setMode: (m: typeof mode) => (mode = m), calls: () => watches.length };
}

function fakeResponse() {
  const r = { headers: 0, ended: 0, listeners: [] as (() => void)[] };
  const res = {
    writeHead: () => (r.headers++, res),
    write: () => true,
    end: () => {
      r.ended++;
      for (const l of r.listeners) l();
    },
    once: (_: string, l: () => void) => r.listeners.push(l),
  } as unknown as ServerResponse;
  return { res, r };
}

const url = new URL('http://localhost/api/stream');
const log = createLogger({ level: 'silent' });

it('a client arriving while the first watch is being set waits for it, and fails with it', async () => {
  const db = fakeEngine();
  db.setMode('manual');
  const stream = runStream(db.engine, createMasker(), log);
  const a = fakeResponse();
  const b = fakeResponse();
  const first = stream.handle({} as never, a.res, url);
  await vi.waitFor(() => expect(db.watches.length).toBe(1));
  const second = stream.handle({} as never, b.res, url);
  await new Promise((r) => setImmediate(r));
  expect(b.r.headers, 'second client served before run changes were announced').toBe(0);
  db.watches[0]?.reject(new Error('connection refused'));
  await expect(first).rejects.toThrow('connection refused');
  await expect(second, 'second client connected with no watch and no renewal').rejects.toThrow('connection refused');
  expect(b.r.headers).toBe(0);
  await stream.close();
});

it('renewals that failed are retried within seconds, and clients reconnect when the watch ran out meanwhile', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] });
  const db = fakeEngine();
  const stream = runStream(db.engine, createMasker(), log);
  const a = fakeResponse();
  await stream.handle({} as never, a.res, url);
  expect(a.r.headers).toBe(1);
  // The database goes away just before the first renewal and stays away past the watch's end.
  db.setMode('fail');
  await vi.advanceTimersByTimeAsync(RUN_CHANGE_WATCH_MS + 5_000);
  expect(a.r.ended, 'the stream ended while it could not know what it missed').toBe(0);
  db.setMode('manual');
  await vi.advanceTimersByTimeAsync(2_000);
  expect(db.calls(), 'a failed renewal is retried within 2 s, not at the next 20-second interval').toBe(1);
  db.watches[0]?.resolve();
  await vi.advanceTimersByTimeAsync(0);
  expect(a.r.ended, 'a client connected while the watch had run out is not told to reconnect and refresh').toBe(1);
  await stream.close();
});

it('renewals that keep the watch alive leave clients connected', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] });
  const db = fakeEngine();
  const stream = runStream(db.engine, createMasker(), log);
  const a = fakeResponse();
  await stream.handle({} as never, a.res, url);
  db.setMode('fail');
  await vi.advanceTimersByTimeAsync(RUN_CHANGE_WATCH_MS / 3 + 1_000); // one renewal fails
  db.setMode('ok');
  await vi.advanceTimersByTimeAsync(5 * RUN_CHANGE_WATCH_MS);
  expect(a.r.ended).toBe(0);
  await stream.close();
});

it('clients reconnect when the LISTEN connection was lost and made again (changes announced meanwhile were missed)', async () => {
  const db = fakeEngine();
  const stream = runStream(db.engine, createMasker(), log);
  const a = fakeResponse();
  const b = fakeResponse();
  await stream.handle({} as never, a.res, url);
  await stream.handle({} as never, b.res, url);
  expect([a.r.ended, b.r.ended]).toEqual([0, 0]);
  db.reconnect();
  expect([a.r.ended, b.r.ended], 'streams ended so that each browser reconnects and redraws').toEqual([1, 1]);
  await stream.close();
});

it('a client gone while the stream was being set up is never served and does not keep run changes announced', async () => {
  // An adversarial pass: 100 clients that disconnected 1–40 ms after asking left some of them in the
  // stream for good — the watch was renewed every 20 s with no connection open.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] });
  const db = fakeEngine();
  db.setMode('manual');
  const stream = runStream(db.engine, createMasker(), log);
  const a = fakeResponse();
  const handled = stream.handle({} as never, a.res, url);
  await vi.waitFor(() => expect(db.watches.length).toBe(1));
  // The client goes away while the first watch is being set.
  for (const l of a.r.listeners) l();
  db.watches[0]?.resolve();
  await handled;
  expect(a.r.headers, 'a client that had gone was served').toBe(0);
  await vi.advanceTimersByTimeAsync(3 * RUN_CHANGE_WATCH_MS);
  expect(db.calls(), 'watch renewals with no client connected').toBe(1);
  await stream.close();
});

it('a client that leaves a megabyte unread is cut off; the others keep their frames', async () => {
  // An adversarial pass: frames were written to a client that never read, kept in the server's memory.
  const db = fakeEngine();
  const stream = runStream(db.engine, createMasker(), log);
  const stalled = fakeResponse();
  let unread = 0;
  let destroyed = 0;
  Object.assign(stalled.res, {
    write: (frame: string) => ((unread += frame.length), false),
    destroy: () => (destroyed++, stalled.res.end()),
  });
  Object.defineProperty(stalled.res, 'writableLength', { get: () => unread });
  const reading = fakeResponse();
  let read = 0;
  Object.assign(reading.res, { write: () => (read++, true), writableLength: 0 });
  await stream.handle({} as never, stalled.res, url);
  await stream.handle({} as never, reading.res, url);
  // Artifact saves of 1,000 runs per flush, each frame ~100 bytes, until a megabyte is left unread.
  for (let round = 0; round < 40 && destroyed === 0; round++) {
    for (let i = 0; i < 1_000; i++) db.notify(ARTIFACT_CHANGED_CHANNEL, `run-${round}-${i} ${'n'.repeat(40)}`);
    await new Promise((r) => setTimeout(r, 110));
  }
  expect(destroyed, 'the stalled client was cut off').toBe(1);
  expect(unread, 'bytes left unread when it was cut').toBeLessThan(MAX_UNREAD_BYTES + 10_000);
  const before = read;
  db.notify(ARTIFACT_CHANGED_CHANNEL, 'run-after plan');
  await vi.waitFor(() => expect(read, 'the reading client still gets frames').toBe(before + 1));
  await stream.close();
}, 120_000);
