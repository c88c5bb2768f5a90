/**
 * A request the service has already answered gets no second answer. The server's `clientError`
 * handler (src/rmapp/server/http-server.ts) wrote its 400/408 straight into the socket whenever the
 * parser failed or a request ran out of time — also after the request had been answered (a 404 given
 * before its chunked body was complete, then a malformed chunk: two responses to one request), and in
 * the middle of a response still being written: a malformed request pipelined behind `GET /api/stream`
 * put `HTTP/1.1 400 Bad Request…` inside the event stream's chunked body. node's own handler guards
 * against the second; neither should happen (RFC 9112 §9.3: one response per request, in order).
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpService, type HttpService } from './helpers/http-service.ts';

let service: HttpService;
let port: number;

beforeAll(async () => {
  service = await startHttpService({ server: { limits: { requestTimeoutMs: 1_500, headersTimeoutMs: 1_500 } } });
  port = service.port;
});
afterAll(() => service?.close());

/** Sends `parts` (each after `gapMs`) on one connection; resolves with everything read until it closes or `waitMs` passes. */
function exchange(parts: string[], gapMs: number, waitMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (d) => (got += d.toString('latin1')));
    socket.on('close', done);
    socket.on('error', () => {});
    socket.once('connect', async () => {
      for (const part of parts) {
        if (socket.destroyed) break;
        socket.write(part);
        await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

const responses = (text: string) => text.match(/HTTP\/1\.1 \d{3}/g) ?? [];

describe('an answered request gets no second answer', () => {
  it('a malformed chunk after the answer: one response (the 404), not a 400 after it', async () => {
    const text = await exchange(
      [`POST /nothing HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nTransfer-Encoding: chunked\r\n\r\n`, 'zz\r\nhello\r\n'],
      300,
      2_000,
    );
    expect(responses(text), text).toEqual(['HTTP/1.1 404']);
  });

  it('a body still incomplete at the request timeout, after its answer: no 408 after the 403', async () => {
    const text = await exchange(
      [`POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 1000\r\n\r\n{`, ' ', ' ', ' ', ' ', ' ', ' ', ' '],
      400,
      4_000,
    );
    expect(responses(text), text).toEqual(['HTTP/1.1 403']);
  });

  it('a malformed request pipelined behind the event stream: nothing written inside the stream', async () => {
    const text = await exchange([`GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`, 'GARBAGE\r\n\r\n'], 700, 2_000);
    expect(text).toContain('retry: 2000');
    expect(responses(text), text).toEqual(['HTTP/1.1 200']);
  });

  it('a malformed request on an idle connection is still answered 400, with the security headers', async () => {
    const text = await exchange([`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`, 'GARBAGE\r\n\r\n'], 300, 2_000);
    expect(responses(text), text).toEqual(['HTTP/1.1 200', 'HTTP/1.1 400']);
    expect(text.slice(text.indexOf('HTTP/1.1 400'))).toContain('x-frame-options: DENY');
  });

  it('a request head too slow is still answered 408', async () => {
    const text = await exchange(
      ['GET /healthz HTTP/1.1\r\n', 'X-A: 1\r\n', 'X-B: 1\r\n', 'X-C: 1\r\n', 'X-D: 1\r\n', 'X-E: 1\r\n'],
      500,
      4_000,
    );
    expect(responses(text), text).toEqual(['HTTP/1.1 408']);
  });
});
