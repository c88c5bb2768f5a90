/**
 * An HTTP/1.1 request without a Host header is a client's mistake, answered like every other: a 400
 * with the security headers and a message naming the fix. node answered it itself (its
 * `requireHostHeader` check, which no `clientError` handler sees) with a bare `400 Bad Request`: no
 * Content-Security-Policy, X-Frame-Options or nosniff (README, "The HTTP side": every answer carries
 * them, "also node's own 400/408/431 answers") and no word of what was wrong.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange, startHttpService, type HttpService } from './helpers/http-service.ts';

let service: HttpService;
let port: number;

beforeAll(async () => {
  service = await startHttpService();
  port = service.port;
});
afterAll(() => service?.close());

const raw = (request: string) => rawExchange(port, request);

describe('HTTP/1.1 without Host', () => {
  for (const [what, request] of [
    ['no Host', 'GET /api/runs HTTP/1.1\r\nConnection: close\r\n\r\n'],
    ['an empty Host', 'GET /healthz HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n'],
    ['no Host on the webhook route', 'POST /webhooks/github HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}'],
  ] as const) {
    it(`${what}: a 400 with the security headers and a message`, async () => {
      const answer = await raw(request);
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      expect(head.toLowerCase()).toContain('content-security-policy:');
      expect(head.toLowerCase()).toContain('x-frame-options: deny');
      expect(head.toLowerCase()).toContain('x-content-type-options: nosniff');
      expect(JSON.parse(body)).toEqual({ error: expect.stringContaining('Host') });
    });
  }

  it('HTTP/1.0 needs no Host: judged by the Host check as before (421 on loopback)', async () => {
    const answer = await raw('GET /api/runs HTTP/1.0\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 421 /);
  });

  it('with its Host, the same request is served', async () => {
    const answer = await raw(`GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
  });
});
