/**
 * The answers node's HTTP server would write itself — to a request it cannot parse, one too slow or
 * with headers too large, an `Expect:` it does not know, a CONNECT (which it met with silence) —
 * written by the service instead, so that they carry {@link SECURITY_HEADERS} (README, "The HTTP side": "also node's own 400/408/431 answers").
 *
 * Such an answer is written straight into the socket, so it must not be written where a response is
 * already under way or given: a request answered before its body was complete (a 403 or 404 sent
 * at once) whose body then breaks or stalls, or a malformed request pipelined behind one whose response
 * is still being written (`/api/stream` writes for as long as the client stays). Written there, the 400
 * or 408 was a second response to one request, or raw text inside the event stream's chunked body
 * (RFC 9112 §9.3: responses go in the order of the requests, one each); node's own handler keeps out of
 * a response under way for the same reason. The connection is closed instead: the request was answered.
 */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { SECURITY_HEADERS } from './http-util.ts';

/** What a connection carries: its newest request and the responses not yet finished. */
interface Exchanges {
  last: { req: IncomingMessage; res: ServerResponse } | null;
  open: Set<ServerResponse>;
}

/**
 * A raw response with the security headers, for a socket node's parser gave up on or that asked for a
 * tunnel: no body, or `{ error }` as JSON with `extra` headers.
 */
function rawAnswer(status: number, error?: string, extra: Record<string, string> = {}): string {
  const body = error === undefined ? '' : JSON.stringify({ error });
  const headers = Object.entries({ ...SECURITY_HEADERS, ...extra, ...(body ? { 'content-type': 'application/json; charset=utf-8' } : {}) })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${headers}connection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/**
 * Installs the service's `clientError`, `connect` and `checkExpectation` answers on `server`, and follows each
 * connection's requests so that an error answer is written only where no response has begun.
 */
export function answerClientErrors(server: Server): void {
  const connections = new WeakMap<Duplex, Exchanges>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    let state = connections.get(req.socket);
    if (!state) connections.set(req.socket, (state = { last: null, open: new Set() }));
    const open = state.open;
    state.last = { req, res };
    open.add(res);
    const done = () => open.delete(res);
    res.once('finish', done).once('close', done);
  });
  /** Whether a response on `socket` has begun: being written, or given to a request whose body is still coming. */
  const answered = (socket: Duplex): boolean => {
    const state = connections.get(socket);
    if (!state) return false;
    for (const res of state.open) if (res.headersSent) return true;
    return !!state.last && state.last.res.headersSent && !state.last.req.complete;
  };
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || err.code === 'ECONNRESET' || answered(socket)) return void socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    socket.end(rawAnswer(status));
  });
  // CONNECT (a client taking the service for a proxy): without a listener node closed the connection
  // without a word; a client's mistake gets a 4xx naming it.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => {});
    socket.end(
      rawAnswer(405, 'CONNECT is not served here: rmapp is no proxy. Send GET, HEAD or POST with a path.', { allow: 'GET, HEAD, POST' }),
    );
  });
  // `Expect:` values node does not know get a 417 with the headers too.
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(417, SECURITY_HEADERS);
    res.end();
  });
}
