/**
 * `GET /api/stream`: Server-Sent Events telling the dashboard which run changed, so it re-renders at
 * once instead of polling. Each change is an event `run` whose data is the run's id, workflow,
 * status, state, status message, parent, wake-up time and timestamps (masked like every API answer).
 *
 * The changes come from the database: migration 0010 announces every change of a run's row on the
 * channel `rmapp_run_changed`, and the server LISTENs there. Since migration 0011 only while a stream
 * watches (src/persistence/run-changes.ts): the server renews the watch every
 * {@link RUN_CHANGE_WATCH_MS}/3 while it has clients, every 2 s after a failed renewal, and ends the
 * clients' streams (they reconnect and redraw) when the watch ran out meanwhile. On Postgres that
 * covers the writes of every worker process; on PGlite (one process) the notification is delivered
 * in-process by PGlite itself. When the LISTEN connection is lost and made again, the clients' streams
 * are ended too (changes announced meanwhile were missed). Notifications of one run within
 * {@link COALESCE_MS} become one event. A comment line every {@link HEARTBEAT_MS} keeps the connection
 * alive through proxies and the server's idle timeout.
 * `?run=<id>` limits the stream to that run and its children.
 *
 * Runs deleted (retention, src/persistence/retention.ts) are announced on `rmapp_run_removed` by
 * migration 0018's trigger, under the same watch, and sent as an event `removed` whose data is
 * `{ ids }` (the runs removed within {@link COALESCE_MS}; with `more: true` when some run's notification
 * could not carry its id — redraw everything): the dashboard drops them instead of showing runs that are
 * gone. A `?run=` client is told of its run and of that run's children.
 *
 * Artifacts a step saves while it runs (an agent's transcript, every second or so) change no run row:
 * each save is announced on `rmapp_artifact_changed` (src/persistence/artifacts.ts) and sent as an
 * event `artifact` whose data is `{ runId, name }`, so the run page fetches the artifact again.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ARTIFACT_CHANGED_CHANNEL } from '../../persistence/artifacts.ts';
import { RUN_CHANGE_WATCH_MS, watchRunChanges } from '../../persistence/run-changes.ts';
import type { Engine } from '../../state_machine/engine.ts';
import { RunNotFoundError } from '../../state_machine/errors.ts';
import type { Logger } from '../logger.ts';
import type { Masker } from '../masking.ts';
import { queryParam } from './http-util.ts';

/** What a stream's answer says of it; proxies are asked not to buffer it. */
const STREAM_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' };
/** The channel migration 0010's trigger notifies, with the run id as payload. */
export const RUN_CHANGED_CHANNEL = 'rmapp_run_changed';
/** The channel migration 0018's trigger notifies for each deleted run: `{"id": …, "parent": …}`, or `{}`. */
export const RUN_REMOVED_CHANNEL = 'rmapp_run_removed';
const COALESCE_MS = 100;
const HEARTBEAT_MS = 15_000;
/**
 * What a client may leave unread, in bytes, before its stream is cut (it reconnects and redraws from
 * the API, as after any drop). A frame is a few hundred bytes; a client that does not read — a stalled
 * tab, a script holding the connection open — would otherwise grow the server's memory by every frame
 * of every run for as long as it stays connected.
 */
export const MAX_UNREAD_BYTES = 1024 * 1024;

/** What a `run` event carries. */
export interface RunChange {
  id: string;
  workflow: string;
  status: string;
  state: unknown;
  statusMessage: string | null;
  parentRunId: string | null;
  wakeAt: Date | null;
  updatedAt: Date;
  finishedAt: Date | null;
}

interface Client {
  res: ServerResponse;
  run: string | null;
}

/** Writes a frame to a client, or cuts its stream when it has left {@link MAX_UNREAD_BYTES} unread. */
function send(c: Client, frame: string): void {
  if (c.res.writableLength > MAX_UNREAD_BYTES) return void c.res.destroy();
  c.res.write(frame);
}

/** The stream's route and its LISTEN, started with the first client and ended by {@link close}. */
export function runStream(engine: Engine, masker: Masker, log: Logger) {
  const clients = new Set<Client>();
  const pending = new Set<string>();
  let flushTimer: NodeJS.Timeout | null = null;
  let listening: Promise<() => Promise<void>> | null = null;
  let closed = false;
  // While there are clients, run changes stay announced (renewed before the watch runs out).
  let watchTimer: NodeJS.Timeout | null = null;
  let retryTimer: NodeJS.Timeout | null = null;
  // The first watch of an idle stream, shared by every client that arrives while it is being set: none
  // of them is served before changes are announced.
  let watching: Promise<void> | null = null;
  // When the last watch that succeeded was asked for (performance.now()): the watch lasts at least
  // RUN_CHANGE_WATCH_MS from then.
  let watchedAt = 0;
  const watch = async () => {
    const asked = performance.now();
    await watchRunChanges(await engine.db());
    const lapsed = watchTimer !== null && asked - watchedAt >= RUN_CHANGE_WATCH_MS;
    watchedAt = asked;
    // Renewals failed for so long that the watch ran out while clients were connected: changes were
    // committed unannounced. Ending their streams makes each browser reconnect and redraw from the API
    // (app.js refreshes on `open`), instead of showing a stale run until its next change.
    if (lapsed) {
      log.warn('live stream: the run-change watch ran out while renewals failed; clients reconnect to catch up');
      for (const c of clients) c.res.end();
    }
  };
  const renewWatch = () => {
    if (closed || clients.size === 0) {
      if (watchTimer) clearInterval(watchTimer);
      watchTimer = null;
      return;
    }
    watch().catch((err: unknown) => {
      log.warn({ err }, 'live stream: renewing the run-change watch failed; retried in 2 s');
      // Not only at the next interval: the watch may run out meanwhile.
      retryTimer ??= setTimeout(() => {
        retryTimer = null;
        renewWatch();
      }, 2_000);
      retryTimer.unref();
    });
  };
  const startWatch = () => {
    watching ??= watch()
      .then(() => {
        watchTimer ??= setInterval(renewWatch, RUN_CHANGE_WATCH_MS / 3);
        watchTimer.unref();
      })
      .finally(() => (watching = null));
    return watching;
  };

  const flush = async () => {
    flushTimer = null;
    const ids = [...pending];
    pending.clear();
    for (const id of ids) {
      const run = await engine.get(id).catch((err: unknown) => {
        if (err instanceof RunNotFoundError) return null; // pruned or deleted since
        throw err;
      });
      if (!run) continue;
      const change: RunChange = {
        id: run.id,
        workflow: run.workflow,
        status: run.status,
        state: run.state,
        statusMessage: run.statusMessage,
        parentRunId: run.parentRunId,
        wakeAt: run.wakeAt,
        updatedAt: run.updatedAt,
        finishedAt: run.finishedAt,
      };
      const frame = `event: run\ndata: ${JSON.stringify(masker.value(change))}\n\n`;
      for (const c of clients) if (!c.run || c.run === run.id || c.run === run.parentRunId) send(c, frame);
    }
  };
  // Artifact saves: coalesced like run changes (a run id and a name per event).
  const pendingArtifacts = new Set<string>();
  let artifactTimer: NodeJS.Timeout | null = null;
  const flushArtifacts = () => {
    artifactTimer = null;
    const keys = [...pendingArtifacts];
    pendingArtifacts.clear();
    for (const key of keys) {
      const at = key.indexOf(' ');
      if (at <= 0) continue;
      const change = { runId: key.slice(0, at), name: key.slice(at + 1) };
      const frame = `event: artifact\ndata: ${JSON.stringify(masker.value(change))}\n\n`;
      for (const c of clients) if (!c.run || c.run === change.runId) send(c, frame);
    }
  };
  const onArtifact = (payload: string) => {
    if (clients.size === 0) return;
    pendingArtifacts.add(payload);
    artifactTimer ??= setTimeout(flushArtifacts, COALESCE_MS);
  };
  // Deleted runs: coalesced like changes; nothing to read (the run is gone), so no reads for a batch of 500.
  const removed = new Map<string, string | null>(); // id → parent
  let removedUnnamed = false;
  let removedTimer: NodeJS.Timeout | null = null;
  const flushRemoved = () => {
    removedTimer = null;
    const gone = [...removed];
    const more = removedUnnamed;
    removed.clear();
    removedUnnamed = false;
    // Each id masked once per flush, not once per client: a large batch of removals (50,000 runs in
    // one statement: ~0.3 s of masking) held the event loop that long per open stream.
    const named = gone.map(([id, parent]) => ({ id, parent, shown: masker.value(id) }));
    const frame = (ids: string[]) => `event: removed\ndata: ${JSON.stringify(more ? { ids, more } : { ids })}\n\n`;
    let all: string | null = null; // the frame of the clients that follow every run, built once
    for (const c of clients) {
      const ids = c.run ? named.filter((r) => c.run === r.id || c.run === r.parent).map((r) => r.shown) : null;
      if (ids?.length === 0 && !more) continue;
      send(c, ids ? frame(ids) : (all ??= frame(named.map((r) => r.shown))));
    }
  };
  const onRemoved = (payload: string) => {
    if (clients.size === 0) return;
    let run: { id?: unknown; parent?: unknown } | null = null;
    try {
      run = JSON.parse(payload) as { id?: unknown; parent?: unknown } | null;
    } catch {
      // not the trigger's payload: treated as a run that could not be named
    }
    if (typeof run?.id === 'string') removed.set(run.id, typeof run.parent === 'string' ? run.parent : null);
    else removedUnnamed = true;
    removedTimer ??= setTimeout(flushRemoved, COALESCE_MS);
  };
  const onChange = (id: string) => {
    if (clients.size === 0) return;
    pending.add(id);
    flushTimer ??= setTimeout(
      () => void flush().catch((err: unknown) => log.warn({ err }, 'live stream: reading a changed run failed')),
      COALESCE_MS,
    );
  };
  // The LISTEN connection was lost and made again: changes (and artifact saves) announced meanwhile were
  // not heard. As when the watch ran out: the clients reconnect and redraw from the API.
  const catchUp = () => {
    if (clients.size === 0) return;
    log.warn('live stream: the LISTEN connection was made again; clients reconnect to catch up on changes missed meanwhile');
    for (const c of clients) c.res.end();
  };
  const listen = () => {
    listening ??= engine.db().then(async (db) => {
      const stopRuns = await db.listen(RUN_CHANGED_CHANNEL, onChange, { onReconnect: catchUp });
      const stops = [stopRuns];
      const stopAll = async () => {
        for (const stop of stops.splice(0)) await stop();
      };
      try {
        stops.push(await db.listen(RUN_REMOVED_CHANNEL, onRemoved));
        stops.push(await db.listen(ARTIFACT_CHANGED_CHANNEL, onArtifact));
      } catch (err) {
        await stopAll();
        throw err;
      }
      return stopAll;
    });
    listening.catch(() => (listening = null)); // tried again with the next client
    return listening;
  };

  return {
    /** Serves one client until it goes away or the server closes. */
    async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
      const run = queryParam(url, 'run');
      // HEAD: the answer's headers, no stream (nothing is listened for or watched).
      if (req.method === 'HEAD') return void res.writeHead(200, STREAM_HEADERS).end();
      // Listened for before anything is awaited: a client that goes away while the stream is set up (its
      // LISTEN, the first watch) is never served — kept, it held the watch renewed, and every commit
      // announced, for as long as the server ran (an adversarial pass).
      let gone = false;
      let leave = () => void (gone = true);
      res.once('close', () => leave());
      await listen();
      // The first client since the stream went idle: changes from now on are announced (the watch may
      // have run out while nobody watched), and stay announced while it is connected.
      if (!watchTimer && !gone) await startWatch();
      if (gone) return;
      if (closed) return void res.end();
      res.writeHead(200, { ...STREAM_HEADERS, connection: 'keep-alive' });
      // The browser reconnects after 2 s when the connection drops (EventSource's `retry`).
      res.write('retry: 2000\n: connected\n\n');
      const client: Client = { res, run };
      clients.add(client);
      const heartbeat = setInterval(() => send(client, ': heartbeat\n\n'), HEARTBEAT_MS);
      leave = () => {
        clearInterval(heartbeat);
        clients.delete(client);
      };
    },
    /** Ends every stream and stops listening. */
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (flushTimer) clearTimeout(flushTimer);
      if (artifactTimer) clearTimeout(artifactTimer);
      if (removedTimer) clearTimeout(removedTimer);
      if (watchTimer) clearInterval(watchTimer);
      if (retryTimer) clearTimeout(retryTimer);
      for (const c of clients) c.res.end();
      clients.clear();
      const stop = await listening?.catch(() => null);
      await stop?.().catch(() => {});
    },
  };
}
