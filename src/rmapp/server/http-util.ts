/** Small HTTP helpers for the service's node:http server (no framework: a handful of routes). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { storableText } from '../webhooks/event.ts';

/** The body is larger than the route accepts (answered 413). */
export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`Body larger than ${limit} bytes.`);
  }
}

/** The body did not arrive within its deadline (answered 408, connection closed): a slow or stalled client. */
export class BodyTimeoutError extends Error {
  constructor(readonly deadlineMs: number) {
    super(`Body not received within ${deadlineMs} ms.`);
  }
}

/** The client went away before its body was complete: nobody is left to answer. */
export class BodyAbortedError extends Error {}

/**
 * A mistake in the request, answered with `status` and `message` (never a 5xx). Thrown by routes and
 * parsers; the server turns it into `{ error: message }`.
 */
export class ClientError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /**
     * The request's body was not read to its end (too large, too slow): the connection is closed after
     * the answer, as the webhook route does, instead of kept for a next request that would begin with
     * the rest of this body, or wait for it.
     */
    readonly closesConnection = false,
  ) {
    super(message);
  }
}

/**
 * Reads the body, refusing more than `limit` bytes (by Content-Length first, then as it streams) and
 * a body still incomplete after `deadlineMs` — so a client trickling bytes cannot hold the route open.
 * On a refusal the caller answers; the rest of the body is the caller's to {@link discardBody}.
 */
export function readBody(req: IncomingMessage, options: { limit: number; deadlineMs: number }): Promise<Buffer> {
  const { limit, deadlineMs } = options;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLargeError(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: Error | null) => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onClose).off('close', onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) finish(new BodyTooLargeError(limit));
      else chunks.push(chunk);
    };
    const onEnd = () => finish(null);
    const onClose = () => finish(new BodyAbortedError('The client closed the connection before the body was complete.'));
    const timer = setTimeout(() => finish(new BodyTimeoutError(deadlineMs)), deadlineMs);
    req.on('data', onData).on('end', onEnd).on('error', onClose).on('close', onClose);
  });
}

/**
 * {@link readBody} for a route whose refusals are the client's: a body too large is a 413 (`tooLarge`
 * says what to send instead), one still incomplete at the deadline a 408, one cut off a 400 — each a
 * {@link ClientError}, never the 500 and error log of an unexpected failure.
 */
export async function readClientBody(
  req: IncomingMessage,
  options: { limit: number; deadlineMs: number; tooLarge: string },
): Promise<Buffer> {
  try {
    return await readBody(req, options);
  } catch (err) {
    if (err instanceof BodyTooLargeError)
      throw new ClientError(413, `The body is larger than ${options.limit} bytes: ${options.tooLarge}.`, true);
    if (err instanceof BodyTimeoutError) throw new ClientError(408, `The body did not arrive within ${options.deadlineMs / 1000} s.`, true);
    if (err instanceof BodyAbortedError) throw new ClientError(400, 'The body was cut off.');
    throw err;
  }
}

/**
 * Throws away whatever of the body is still to come without buffering it, and closes the connection
 * if it has not all arrived within `deadlineMs` — so an early answer (401, 413) neither buffers an
 * unbounded body nor lets a slow client keep the socket.
 */
export function discardBody(req: IncomingMessage, deadlineMs: number): void {
  if (req.complete) return;
  const timer = setTimeout(() => req.socket.destroy(), deadlineMs);
  const done = () => clearTimeout(timer);
  req.once('end', done).once('close', done);
  req.on('error', () => {});
  req.resume();
}

/**
 * Sent with every response the server writes: the dashboard loads its script, style and data from its
 * own origin only (no inline code), may not be framed (clickjacking), and no response is sniffed into
 * another type or leaks its URL as a referrer to another origin. `same-origin`, not `no-referrer`: under
 * `no-referrer` a browser sends `Origin: null` with a form's POST, which the Origin check refuses, and
 * the sign-in form answered 403 in every browser (only `GET /login?token=` worked, leaving the token in
 * the browser's history).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/**
 * A percent-decoded path segment or query value that the database can take: malformed escapes
 * (`%ZZ`, `%E0%A4%A`) and NUL bytes are a {@link ClientError} (400) naming `what`.
 */
export function decodeParam(raw: string, what: string): string {
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    throw new ClientError(
      400,
      `The ${what} "${raw}" is not valid percent-encoding (UTF-8 escaped as %XX): encode it with encodeURIComponent.`,
    );
  }
  return checkText(value, what);
}

/**
 * The value of query parameter `name` (its first), decoded strictly: `URLSearchParams` reads a bad
 * escape (`%ZZ`) as text and invalid UTF-8 (`%C0%AF`) as U+FFFD, so a filter quietly matched nothing
 * where the client had made a mistake — a {@link ClientError} naming the parameter instead.
 */
export function queryParam(url: URL, name: string): string | null {
  for (const pair of url.search.slice(1).split('&')) {
    const eq = pair.indexOf('=');
    const rawKey = eq < 0 ? pair : pair.slice(0, eq);
    const key = decodeParam(rawKey.replace(/\+/g, ' '), 'query parameter name');
    if (key !== name) continue;
    return decodeParam(eq < 0 ? '' : pair.slice(eq + 1).replace(/\+/g, ' '), `query parameter "${name}"`);
  }
  return null;
}

/** Returns `value` when it has no NUL byte and no lone surrogate (text Postgres refuses); else a 400 naming `what`. */
export function checkText(value: string, what: string): string {
  if (value.includes('\0')) throw new ClientError(400, `The ${what} contains a NUL byte (%00), which no run id, name or filter can hold.`);
  if (storableText(value) !== value) throw new ClientError(400, `The ${what} contains a lone UTF-16 surrogate, which is not text.`);
  return value;
}
