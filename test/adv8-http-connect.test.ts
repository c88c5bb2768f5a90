/**
 * A CONNECT request (a client taking the service for a proxy) is a client's mistake: answered 405 with
 * the security headers and a message. node's server, with no `connect` listener, closed the connection
 * without a word — the one request the fuzzing of every method got no answer to.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { startServiceServer } from '../src/rmapp/server/http-server.ts';

let engine: Engine;
let server: Awaited<ReturnType<typeof startServiceServer>>;
let port: number;

beforeAll(async () => {
  engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: [] });
  server = await startServiceServer({ engine, log: createLogger({ level: 'silent' }), host: '127.0.0.1', port: 0, webhook: null });
  port = Number(new URL(server.url).port);
});
afterAll(async () => {
  await server?.close();
  await engine?.stop({ graceMs: 0 });
});

function raw(request: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let got = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, 3_000);
    socket.on('data', (d) => (got += d.toString('latin1')));
    socket.on('close', done);
    socket.on('error', () => {});
  });
}

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
