/**
 * The service's HTTP server under a second attack: node's own error answers, a connection flood, and
 * guessing the dashboard token — each must stay bounded and carry the security headers.
 */
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { startServiceServer } from '../src/rmapp/server/http-server.ts';
import { clientAddress } from '../src/rmapp/server/login.ts';
import type { IncomingMessage } from 'node:http';

const TOKEN = 'limits-dashboard-token-0123456789';
let engine: Engine;
let server: Awaited<ReturnType<typeof startServiceServer>>;
let port: number;

beforeAll(async () => {
  engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: [] });
  server = await startServiceServer({
    engine,
    log: createLogger({ level: 'silent' }),
    host: '127.0.0.1',
    port: 0,
    dashboardToken: TOKEN,
    publicUrl: 'https://rmapp.example.com',
    webhook: null,
    limits: { maxConnections: 8 },
  });
  port = Number(new URL(server.url).port);
});
afterAll(async () => {
  await server?.close();
  await engine?.stop();
});

/** Sends raw bytes, returns what comes back before the server closes (or 3 s pass). */
function raw(bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    let got = '';
    socket.on('data', (d) => (got += d.toString('latin1')));
    const done = () => resolve(got);
    socket.on('close', done);
    socket.on('error', done);
    setTimeout(() => {
      socket.destroy();
      done();
    }, 3_000).unref();
  });
}

/**
 * A server of its own (the shared one's sign-in count for this address is spent by the guessing test),
 * with the log lines it writes at info level and up.
 */
async function ownServer(options: { publicUrl?: string } = {}) {
  const lines: string[] = [];
  const destination = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
  const own = await startServiceServer({
    engine,
    log: createLogger({ level: 'info', destination }),
    host: '127.0.0.1',
    port: 0,
    dashboardToken: TOKEN,
    webhook: null,
    ...options,
  });
  return { url: own.url, port: Number(new URL(own.url).port), lines, close: () => own.close() };
}

it("node's own error answers carry the security headers", async () => {
  const cases: [string, RegExp][] = [
    ['GET /api/runs HTTP/1.1\r\nContent-Length: abc\r\n\r\n', /^HTTP\/1\.1 400/],
    [`GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, /^HTTP\/1\.1 431/],
    ['GET /\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', /^HTTP\/1\.1 400/],
    ['BREW / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', /^HTTP\/1\.1 400/],
    [`GET / HTTP/1.1\r\nHost: 127.0.0.1:${0}\r\nExpect: tea\r\n\r\n`, /^HTTP\/1\.1 417/],
  ];
  for (const [request, status] of cases) {
    const answer = await raw(request.replace(':0\r\n', `:${port}\r\n`));
    expect(answer, JSON.stringify(request.slice(0, 40))).toMatch(status);
    expect(answer.toLowerCase(), JSON.stringify(request.slice(0, 40))).toContain('x-frame-options: deny');
    expect(answer.toLowerCase(), JSON.stringify(request.slice(0, 40))).toContain('content-security-policy:');
  }
});

it('a flood of idle connections is capped; the service still answers once they go', async () => {
  const held: Socket[] = [];
  for (let i = 0; i < 30; i += 1) {
    held.push(
      await new Promise<Socket>((resolve) => {
        const s = connect(port, '127.0.0.1', () => resolve(s));
        s.on('error', () => resolve(s));
      }),
    );
  }
  // Give the server time to drop the connections beyond its cap.
  await new Promise((r) => setTimeout(r, 500));
  const open = held.filter((s) => !s.destroyed && s.readyState === 'open');
  const closedByServer = await Promise.all(
    held.map(
      (s) =>
        new Promise<boolean>((resolve) => {
          if (s.destroyed) return resolve(true);
          s.once('close', () => resolve(true));
          setTimeout(() => resolve(false), 300).unref();
        }),
    ),
  );
  expect(closedByServer.filter(Boolean).length, 'connections beyond the cap were dropped').toBeGreaterThanOrEqual(30 - 8);
  for (const s of held) s.destroy();
  expect(open.length).toBeGreaterThan(0);
  await new Promise((r) => setTimeout(r, 200));
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
});

it('one address holding half-sent requests up to its own cap leaves connections for every other address', async () => {
  // 512 half-sent requests from one client, each held to the header timeout and opened again, kept
  // every other client out (GitHub's deliveries too): the global cap was the denial of service.
  const own = await startServiceServer({
    engine,
    log: createLogger({ level: 'silent' }),
    host: '127.0.0.1',
    port: 0,
    dashboardToken: TOKEN,
    webhook: null,
    limits: { maxConnections: 40, maxConnectionsPerAddress: 10 },
  });
  const ownPort = Number(new URL(own.url).port);
  const from = (localAddress: string) =>
    new Promise<Socket>((resolve) => {
      const s = connect({ port: ownPort, host: '127.0.0.1', localAddress }, () => {
        s.write('POST /webhooks/github HTTP/1.1\r\nHost: x\r\n');
        resolve(s);
      });
      s.on('error', () => resolve(s));
    });
  const held: Socket[] = [];
  try {
    for (let i = 0; i < 60; i += 1) held.push(await from('127.0.0.2'));
    await new Promise((r) => setTimeout(r, 300));
    const stillOpen = held.filter((s) => !s.destroyed && s.readyState === 'open').length;
    expect(stillOpen, 'connections one address keeps open').toBeLessThanOrEqual(10);
    // Another address is answered while the first one holds all it may.
    const answer = await new Promise<string>((resolve) => {
      const s = connect({ port: ownPort, host: '127.0.0.1', localAddress: '127.0.0.3' }, () =>
        s.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${ownPort}\r\nConnection: close\r\n\r\n`),
      );
      let got = '';
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    expect(answer, 'another address was refused').toMatch(/^HTTP\/1\.1 200/);
  } finally {
    for (const s of held) s.destroy();
    await own.close();
  }
});

it('guessing the token is limited: after 10 wrong tokens a minute, 429; the right one signs in with a Secure cookie, by POST', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 12; i += 1)
    statuses.push(
      (await fetch(`${server.url}/login`, { method: 'POST', body: new URLSearchParams({ token: `guess-${i}` }), redirect: 'manual' }))
        .status,
    );
  expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
  expect(statuses.slice(10)).toEqual([429, 429]);
  // Even the right token waits out the window from this address.
  expect(
    (await fetch(`${server.url}/login`, { method: 'POST', body: new URLSearchParams({ token: TOKEN }), redirect: 'manual' })).status,
  ).toBe(429);
});

it('the right token signs in by POST with a Secure, HttpOnly, SameSite=Strict cookie; the form never puts it in the URL', async () => {
  const other = await ownServer({ publicUrl: 'https://rmapp.example.com' });
  try {
    const page = await (await fetch(`${other.url}/login`)).text();
    expect(page).toContain('method="post"');
    const res = await fetch(`${other.url}/login`, { method: 'POST', body: new URLSearchParams({ token: TOKEN }), redirect: 'manual' });
    expect(res.status).toBe(303);
    const cookie = res.headers.get('set-cookie') ?? '';
    for (const flag of ['HttpOnly', 'SameSite=Strict', 'Secure']) expect(cookie, flag).toContain(flag);
  } finally {
    await other.close();
  }
});

it("a sign-in form too large or cut off is the client's mistake: 413 or nothing, never a 500 or an error in the log", async () => {
  // An adversarial pass: a POST /login body over 4 KB was answered 500 and logged as a failed request.
  const other = await ownServer();
  const { lines } = other;
  try {
    const res = await fetch(`${other.url}/login`, { method: 'POST', body: new URLSearchParams({ token: 'a'.repeat(5_000) }) });
    expect(res.status).toBe(413);
    expect(await res.text()).toMatch(/larger than 4096 bytes/);
    // A body announced longer than what comes before the client goes away.
    const otherPort = Number(new URL(other.url).port);
    await new Promise<void>((resolve) => {
      const socket = connect(otherPort, '127.0.0.1', () => {
        socket.write(
          `POST /login HTTP/1.1\r\nHost: 127.0.0.1:${otherPort}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntoken=ab`,
        );
        setTimeout(() => socket.destroy(), 100);
      });
      socket.on('close', () => resolve());
      socket.on('error', () => {});
    });
    await new Promise((r) => setTimeout(r, 200));
    const errors = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 50);
    expect(errors, 'error-level log lines').toEqual([]);
  } finally {
    await other.close();
  }
});

it('an API write whose body is refused unread (too large) is answered and its connection closed, not kept for the rest of the body', async () => {
  // An adversarial pass: the 413/408 of an API write kept the connection alive, so what followed on it
  // was the rest of the refused body (read as a next request) or a wait for it; the webhook route closes.
  const other = await ownServer();
  const { port } = other;
  const answer = await new Promise<{ text: string; closedByServer: boolean }>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        `POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\nX-Rmapp-Request: 1\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n{"pad":"`,
      );
    });
    let text = '';
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closedByServer: false });
    }, 5_000);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closedByServer: true });
    });
  });
  await other.close();
  expect(answer.text.split('\r\n')[0]).toBe('HTTP/1.1 413 Payload Too Large');
  expect(answer.text.toLowerCase()).toContain('connection: close');
  expect(answer.closedByServer, 'the server closed the connection').toBe(true);
});

it('guessing the token in the API’s Authorization header or cookie is limited as at /login, and logged; a stale cookie sent again does not lock anyone out', async () => {
  // An adversarial pass: wrong bearer and cookie tokens were answered 401 without limit or log line.
  const other = await ownServer();
  const { lines } = other;
  try {
    const get = (headers: Record<string, string>) => fetch(`${other.url}/api/runs`, { headers });
    // A browser whose cookie outlived a token change, polling: one wrong token, however often.
    for (let i = 0; i < 30; i++)
      expect((await get({ cookie: 'rmapp_token=the-old-token-0123456789' })).status, `stale cookie, request ${i + 1}`).toBe(401);
    expect((await get({ authorization: `Bearer ${TOKEN}` })).status, 'the right token after a stale cookie').toBe(200);
    // Guessing: with the stale cookie, 10 distinct wrong tokens (a right one in between resets nothing: a
    // client polling from the same address must not reset a guesser's count); then every token from
    // the address waits, the right one too.
    const guesses = [];
    for (let i = 0; i < 10; i++) guesses.push((await get({ authorization: `Bearer guess-${i}-0123456789abcdef` })).status);
    expect(guesses).toEqual([...Array(9).fill(401), 429]);
    const blocked = await get({ authorization: `Bearer ${TOKEN}` });
    expect(blocked.status, 'the right token while the address is blocked').toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await blocked.json()) as { error: string }).error).toMatch(/Too many wrong tokens from this address/);
    expect((await fetch(`${other.url}/login?token=${TOKEN}`, { redirect: 'manual' })).status, '/login shares the count').toBe(429);
    const warnings = lines
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .filter((l) => l.msg === 'request with a wrong dashboard token');
    expect(warnings.length, 'wrong tokens logged').toBe(39);
    expect(lines.join('').includes('guess-'), 'a wrong token is never logged itself').toBe(false);
  } finally {
    await other.close();
  }
});

it('sign-in forms sent together cannot pass the limit: their bodies are counted as they come, the 11th on is refused', async () => {
  // An adversarial pass: 40 POST /login whose bodies came late had all passed the check made before the
  // body was read — 39 guesses in one window, and the right token after them signed in.
  const other = await ownServer();
  try {
    const body = (i: number) => `token=guess-${i}-${'x'.repeat(20)}`;
    const sockets = await Promise.all(
      Array.from(
        { length: 15 },
        (_, i) =>
          new Promise<Socket>((resolve) => {
            const socket = connect(other.port, '127.0.0.1', () => {
              socket.write(
                `POST /login HTTP/1.1\r\nHost: 127.0.0.1:${other.port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body(i).length}\r\n\r\n`,
              );
              resolve(socket);
            });
          }),
      ),
    );
    // Every request is in (its headers read) before any body comes.
    await new Promise((r) => setTimeout(r, 300));
    const statuses = await Promise.all(
      sockets.map(
        (socket, i) =>
          new Promise<string>((resolve) => {
            let got = '';
            socket.on('data', (d) => {
              got += d.toString('latin1');
              if (got.includes('\r\n\r\n')) {
                resolve(got.split(' ')[1] ?? '');
                socket.destroy();
              }
            });
            socket.write(body(i));
          }),
      ),
    );
    expect(statuses.filter((s) => s === '401').length, `statuses ${statuses.join(' ')}`).toBe(10);
    expect(statuses.filter((s) => s === '429').length, `statuses ${statuses.join(' ')}`).toBe(5);
  } finally {
    await other.close();
  }
});

it('the sign-in count is per IPv4 address and per IPv6 /64 (one host holds a whole /64)', () => {
  const of = (remoteAddress: string | undefined) => clientAddress({ socket: { remoteAddress } } as unknown as IncomingMessage);
  expect(of('203.0.113.7')).toBe('203.0.113.7');
  expect(of('::ffff:203.0.113.7')).toBe('203.0.113.7');
  expect(of('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
  expect(of('2001:0db8:0001:0002:ffff::1')).toBe('2001:db8:1:2::/64');
  expect(of('2001:db8:1:2::9')).toBe(of('2001:db8:1:2:aaaa:bbbb:cccc:dddd'));
  expect(of('2001:db8:1:3::9')).not.toBe(of('2001:db8:1:2::9'));
  expect(of('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  expect(of(undefined)).toBe('unknown');
});

it('a request with a wrong bearer token and a wrong cookie is two tries, the second judged only while the address may still try', async () => {
  // An adversarial pass: both were judged together, so at 9 failures one request made the count 11.
  const other = await ownServer();
  try {
    const get = (headers: Record<string, string>) => fetch(`${other.url}/api/runs`, { headers });
    for (let i = 0; i < 9; i++) expect((await get({ authorization: `Bearer guess-${i}-0123456789abcdef` })).status).toBe(401);
    const both = await get({ authorization: 'Bearer guess-9-0123456789abcdef', cookie: 'rmapp_token=guess-10-0123456789abcdef' });
    expect(both.status, 'the header is the 10th try; the cookie would be the 11th').toBe(429);
    const counts = other.lines
      .map((l) => JSON.parse(l) as { msg: string; failures?: number })
      .filter((l) => l.msg === 'request with a wrong dashboard token')
      .map((l) => l.failures);
    expect(Math.max(...(counts as number[])), 'wrong tokens judged').toBe(10);
  } finally {
    await other.close();
  }
});
