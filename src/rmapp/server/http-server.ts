/**
 * The HTTP side of `rmapp serve`: webhooks, the dashboard and its JSON API, `/metrics`, `/healthz`.
 * The dashboard and API need the dashboard token (Bearer header, or the cookie `/login` sets) when
 * one is configured — always when bound beyond localhost. State-changing API calls also need the
 * `X-Rmapp-Request` header, which a cross-site form cannot send (CSRF).
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { Engine } from '../../state_machine/engine.ts';
import type { Logger } from '../logger.ts';
import { handleApi } from './api.ts';
import { sendJson, sendText } from './http-util.ts';

export interface ServiceServerOptions {
  engine: Engine;
  log: Logger;
  host: string;
  port: number;
  dashboardToken?: string | undefined;
  /** The webhook route, or null when GitHub is not configured (503 with the fix). */
  webhook: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | null;
  prometheus?: PrometheusExporter | undefined;
}

const asset = (name: string) => readFileSync(fileURLToPath(new URL(`./dashboard/${name}`, import.meta.url)), 'utf8');

function tokenMatches(given: string | undefined, expected: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

/** Starts listening; resolves with the server and its URL. */
export async function startServiceServer(options: ServiceServerOptions): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const page = asset('index.html');
  const script = asset('app.js');
  const style = asset('style.css');
  const { log, engine } = options;

  const authorized = (req: IncomingMessage, url: URL): boolean => {
    if (!options.dashboardToken) return true;
    const bearer = req.headers.authorization?.replace(/^Bearer\s+/i, '');
    return tokenMatches(bearer, options.dashboardToken) || tokenMatches(cookie(req, 'rmapp_token'), options.dashboardToken) || url.pathname === '/login';
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (path === '/webhooks/github') {
      if (req.method !== 'POST') return sendJson(res, 405, { error: 'Use POST.' });
      if (!options.webhook) return sendJson(res, 503, { error: 'GitHub is not configured: set GITHUB_WEBHOOK_SECRET and the GitHub credentials (see the README).' });
      return options.webhook(req, res);
    }
    if (path === '/healthz') return sendJson(res, 200, { ok: true, worker: engine.workerId });
    // Static code and style hold no data: served without the token (the login page needs the style).
    if (path === '/app.js') return sendText(res, 200, script, 'text/javascript; charset=utf-8');
    if (path === '/style.css') return sendText(res, 200, style, 'text/css; charset=utf-8');
    if (!authorized(req, url)) {
      if (path.startsWith('/api/') || path === '/metrics') return sendJson(res, 401, { error: 'Dashboard token required: send Authorization: Bearer <RMAPP_DASHBOARD_TOKEN>.' });
      return sendText(res, 401, loginPage(), 'text/html; charset=utf-8');
    }
    if (path === '/login') {
      const token = url.searchParams.get('token') ?? '';
      if (!options.dashboardToken || !tokenMatches(token, options.dashboardToken)) return sendText(res, 401, loginPage('That token is not right.'), 'text/html; charset=utf-8');
      res.writeHead(303, { location: '/', 'set-cookie': `rmapp_token=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/` });
      return res.end();
    }
    if (path === '/metrics') {
      if (!options.prometheus) return sendText(res, 404, 'Metrics are off: start with --metrics.\n');
      return options.prometheus.getMetricsRequestHandler(req, res);
    }
    if (path.startsWith('/api/')) {
      if (req.method === 'POST' && req.headers['x-rmapp-request'] !== '1') return sendJson(res, 403, { error: 'Missing X-Rmapp-Request: 1 header.' });
      if (await handleApi(engine, req, res, url)) return;
      return sendJson(res, 404, { error: `No API route ${req.method} ${path}.` });
    }
    if (req.method === 'GET' && (path === '/' || path.startsWith('/runs/'))) return sendText(res, 200, page, 'text/html; charset=utf-8');
    return sendJson(res, 404, { error: `Not found: ${path}` });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err, url: req.url }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'Internal error; see the server log.' });
      else res.destroy();
    });
  });
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function loginPage(message = 'This dashboard needs its token (RMAPP_DASHBOARD_TOKEN).'): string {
  return `<!doctype html><meta charset="utf-8"><title>rmapp — sign in</title><link rel="stylesheet" href="/style.css">
<main class="login"><h1>rmapp</h1><p>${message}</p><form action="/login" method="get"><input type="password" name="token" placeholder="dashboard token" autofocus><button>Open</button></form></main>`;
}
