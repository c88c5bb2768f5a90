/**
 * `rmapp serve --inspect <ws-url>`: every run's actors, events and snapshots to a Stately Inspector
 * endpoint. The events are made by `@statelyai/inspect` (`createInspector`, the Inspector's own
 * format); the connection is rmapp's, because the library's WebSocket adapter (measured, an adversarial
 * pass): kept writing to an endpoint that stopped reading (92 MB held after 20 runs, never released),
 * never connected again once the endpoint closed the connection (only after an error), and said
 * nothing either time. A machine's definition travels as JSON text, which masking by key did not see
 * into (a context default `apiKey: '…'` went out whole).
 */
import { createInspector } from '@statelyai/inspect';
import type { InspectionEvent } from 'xstate';
import { WebSocket } from 'ws';
import type { Logger } from './logger.ts';
import type { Masker } from './masking.ts';

/**
 * What may wait unsent in the connection before events are dropped: an endpoint that does not read
 * costs at most this much memory, however long it stalls.
 */
export const MAX_UNSENT_BYTES = 4 * 1024 * 1024;
/** Events kept while there is no connection (the oldest go first), as the library kept them. */
const MAX_WHILE_DISCONNECTED = 200;
/** The wait before connecting again: doubling from the first, at most the last. */
const RECONNECT_MS = [1_000, 30_000] as const;

/** One inspection event as the Inspector takes it, masked: its definition (JSON text) parsed, masked and written again. */
export function maskedInspectorEvent(event: Record<string, unknown>, masker: Masker): Record<string, unknown> {
  const masked = masker.value(event);
  const definition = masked.definition;
  if (typeof definition === 'string') {
    try {
      masked.definition = JSON.stringify(masker.value(JSON.parse(definition) as unknown));
    } catch {
      masked.definition = masker.text(definition);
    }
  }
  return masked;
}

/** The inspector's connection: `inspect` is the engine's `inspect` option. */
export interface InspectorConnection {
  inspect(event: InspectionEvent): void;
  stop(): void;
}

/** A connection that stayed open this long was a real one: the next loss starts the backoff again. */
const STEADY_MS = 10_000;
/** A handshake the endpoint does not finish by then fails, and the connection is made again. */
const HANDSHAKE_MS = 10_000;

/** Connects to the Inspector at `url` and keeps connecting; see the module's comment. */
export function startInspector(url: string, masker: Masker, log: Pick<Logger, 'info' | 'warn'>): InspectorConnection {
  let ws: WebSocket | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  let waitMs: number = RECONNECT_MS[0];
  let waiting: string[] = [];
  let waitingBytes = 0;
  /** Events dropped since the last that went out (logged once per episode). */
  let dropped = 0;
  /** The endpoint was lost (said once until a connection holds for {@link STEADY_MS}). */
  let lost = false;
  let openedAt = 0;
  let unwritableSaidAt = 0;

  const drop = (why: string) => {
    if (dropped++ === 0) log.warn({ url }, `inspector: ${why}; dropping events until it catches up`);
  };
  const write = (text: string) => {
    const socket = ws;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      // Kept while there is no connection: the newest, at most 200 events and MAX_UNSENT_BYTES.
      waiting.push(text);
      waitingBytes += text.length;
      while (waiting.length > MAX_WHILE_DISCONNECTED || (waitingBytes > MAX_UNSENT_BYTES && waiting.length > 1))
        waitingBytes -= (waiting.shift() as string).length;
      return;
    }
    if (socket.bufferedAmount + text.length > MAX_UNSENT_BYTES)
      return drop(`the endpoint is not reading (${socket.bufferedAmount} bytes unsent)`);
    // The episode ends when the endpoint has caught up, not when a small event still fits (the two
    // lines alternated for ever while it read nothing).
    if (dropped > 0 && socket.bufferedAmount < MAX_UNSENT_BYTES / 4) {
      log.info({ url, dropped }, `inspector: ${dropped} events dropped while the endpoint did not read`);
      dropped = 0;
    }
    socket.send(text);
  };
  const lose = (why: string) => {
    // A connection that held for a while was a real one; one closed at once keeps the backoff growing.
    if (openedAt && Date.now() - openedAt >= STEADY_MS) {
      waitMs = RECONNECT_MS[0];
      lost = false;
    }
    openedAt = 0;
    if (!lost) log.warn({ url }, `inspector: ${why}; connecting again (every ${RECONNECT_MS[0] / 1000}–${RECONNECT_MS[1] / 1000} s)`);
    lost = true;
  };
  const connect = () => {
    if (stopped) return;
    const socket = new WebSocket(url, { handshakeTimeout: HANDSHAKE_MS });
    ws = socket;
    socket.on('open', () => {
      if (lost) log.info({ url }, 'inspector: connected');
      openedAt = Date.now();
      const queued = waiting;
      waiting = [];
      waitingBytes = 0;
      for (const text of queued) write(text);
    });
    socket.on('message', () => {});
    // An error (a refused connection, a handshake not finished in time) is followed by `close`.
    socket.on('error', (err) => {
      if (!stopped) lose(err.message);
    });
    socket.on('close', () => {
      if (ws === socket) ws = null;
      if (stopped) return;
      lose('the endpoint closed the connection');
      retry = setTimeout(connect, waitMs);
      retry.unref();
      waitMs = Math.min(waitMs * 2, RECONNECT_MS[1]);
    });
  };

  const inspector = createInspector(
    { start: connect, stop: () => {}, send: (event: unknown) => write(JSON.stringify(event)) },
    { serialize: (event) => maskedInspectorEvent(event as unknown as Record<string, unknown>, masker) as never },
  );
  inspector.start();
  return {
    // Converted, masked and written after the macrostep (an actor's snapshot exists only once it is
    // made), in a try: the library did that in a timer of its own, where a context it could not write
    // (a BigInt, a getter that throws) ended the process.
    inspect: (event) => void setImmediate(() => convert(event)),
    stop() {
      stopped = true;
      clearTimeout(retry);
      ws?.close();
      ws = null;
    },
  };

  function convert(event: InspectionEvent): void {
    if (stopped) return;
    try {
      if (event.type === '@xstate.actor') inspector.actor(event.actorRef, event.actorRef.getSnapshot(), { rootId: event.rootId });
      else if (event.type === '@xstate.event')
        inspector.event(event.actorRef, event.event, { source: event.sourceRef?.sessionId ?? undefined });
      else if (event.type === '@xstate.snapshot') inspector.snapshot(event.actorRef, event.snapshot, { event: event.event });
    } catch (err) {
      // Left out, said at most once a minute: the run goes on (an inspector never breaks a run).
      if (Date.now() - unwritableSaidAt >= 60_000) {
        unwritableSaidAt = Date.now();
        log.warn({ url, type: event.type }, `inspector: an event could not be written (${(err as Error).message}); left out`);
      }
    }
  }
}
