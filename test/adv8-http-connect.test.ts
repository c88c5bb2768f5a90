/**
 * A CONNECT request (a client taking the service for a proxy) is a client's mistake: answered 405 with
 * the security headers and a message. node's server, with no `connect` listener, closed the connection
 * without a word — the one request the fuzzing of every method got no answer to.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { rawExchange, startHttpService, type HttpService } from './helpers/http-service.ts';

let service: HttpService;
let port: number;

beforeAll(async () => {
  service = await startHttpService();
  port = service.port;
});
afterAll(() => service?.close());

const raw = (request: string) => rawExchange(port, request);

it.each([
  ['an authority', 'CONNECT 127.0.0.1:5432 HTTP/1.1\r\nHost: 127.0.0.1:5432\r\n\r\n'],
  ['a tunnel with data after it', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01hello'],
])('CONNECT to %s: a 405 with the security headers and a message, then the connection closed', async (_what, request) => {
  const answer = await raw(request);
  expect(answer).toMatch(/^HTTP\/1\.1 405 /);
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  expect(head.toLowerCase()).toContain('content-security-policy:');
  expect(head.toLowerCase()).toContain('x-content-type-options: nosniff');
  expect(head.toLowerCase()).toMatch(/\r\nallow: /);
  expect(JSON.parse(body)).toEqual({ error: expect.stringContaining('CONNECT') });
});
