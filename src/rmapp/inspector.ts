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

/** Connects to the Inspector at `url` and keeps connecting; see the module's comment. */
export function startInspector(url: string, masker: Masker, log: Pick<Logger, 'info' | 'warn'>): InspectorConnection {
  let ws: WebSocket | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  let waitMs: number = RECONNECT_MS[0];
  let waiting: string[] = [];
  /** Events dropped since the last that went out (logged once per episode). */
  let dropped = 0;
  let connectedOnce = false;
  let lostSaid = false;

  const drop = (why: string) => {
    if (dropped++ === 0) log.warn({ url }, `inspector: ${why}; dropping events until it catches up`);
  };
  const write = (text: string) => {
    const socket = ws;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      waiting.push(text);
      if (waiting.length > MAX_WHILE_DISCONNECTED) waiting.shift();
      return;
    }
    if (socket.bufferedAmount > MAX_UNSENT_BYTES) return drop(`the endpoint is not reading (${socket.bufferedAmount} bytes unsent)`);
    if (dropped > 0) log.info({ url, dropped }, `inspector: ${dropped} events dropped while the endpoint did not read`);
    dropped = 0;
    socket.send(text);
  };
  const connect = () => {
    if (stopped) return;
    const socket = new WebSocket(url);
    ws = socket;
    socket.on('open', () => {
      if (connectedOnce || lostSaid) log.info({ url }, 'inspector: connected');
      connectedOnce = true;
      lostSaid = false;
      waitMs = RECONNECT_MS[0];
      const queued = waiting;
      waiting = [];
      for (const text of queued) write(text);
    });
    socket.on('message', () => {});
    // An error is followed by `close`, which connects again.
    socket.on('error', (err) => {
      if (!lostSaid) log.warn({ url, err: err.message }, `inspector: ${err.message}; connecting again`);
      lostSaid = true;
    });
    socket.on('close', () => {
      if (ws === socket) ws = null;
      if (stopped) return;
      if (!lostSaid) log.warn({ url }, 'inspector: the endpoint closed the connection; connecting again');
      lostSaid = true;
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
    inspect: (event) => inspector.inspect.next?.(event),
    stop() {
      stopped = true;
      clearTimeout(retry);
      ws?.close();
      ws = null;
    },
  };
}
