/**
 * The HTTP side of `rmapp serve`: webhooks, the dashboard and its JSON API, `/metrics`, `/healthz`.
 *
 * Who may do what:
 * - The dashboard and API need the dashboard token (Bearer header, or the cookie `/login` sets) when
 *   one is configured — always when bound beyond localhost. State-changing API calls also need the
 *   `X-Rmapp-Request` header, which a cross-site form cannot send (CSRF), and a browser's Origin must
 *   be the service's own.
 * - Requests must name the service in `Host` (DNS-rebinding defence, see `host-guard.ts`; answered
 *   421 otherwise) — except `/webhooks/github`, which its HMAC signature authenticates (a rebinding
 *   page cannot sign, and a proxy or tunnel that rewrites Host must not lose GitHub's deliveries), and
 *   `/healthz`, which tells nothing and is probed by IP (Kubernetes sends the pod's address as Host).
 * - `GET /api/stream` (Server-Sent Events, `stream.ts`) is an API route like the others: same token,
 *   same Host check, masked.
 * - Every response carries {@link SECURITY_HEADERS} (CSP, frame denial, nosniff, no referrer to another origin).
 * - Malformed request targets, percent-escapes, cookies and NUL bytes are a 400 naming the problem,
 *   never a 500; header size, header time, request time and idle time are bounded ({@link HttpLimits}).
 *
 * Plain node:http rather than hono: the limits and the Host check that matter here are node:http server
 * options or have no hono middleware, the security headers are one constant, and the webhook and
 * Prometheus handlers take node's request and response — so hono would add two dependencies and an
 * adapter without making this smaller.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { Engine } from '../../state_machine/engine.ts';
import { isDatabaseUnavailable } from '../../state_machine/errors.ts';
import { FINAL_STATUSES, RUN_STATUSES } from '../../persistence/run-status.ts';
import type { Logger } from '../logger.ts';
import { createMasker, type Masker } from '../masking.ts';
import { apiRouteMethods, handleApi } from './api.ts';
import { hostPolicy, type HostPolicy } from './host-guard.ts';
import { answerClientErrors } from './node-answers.ts';
import { ClientError, SECURITY_HEADERS, sendJson, sendText } from './http-util.ts';
import { addressKey, clientAddress, loginPage, loginRoute, logoutRoute, sendTooMany, SIGN_OUT_FORM, SignInLimiter } from './login.ts';
import { runStream } from './stream.ts';

/** Seconds a client is told to wait (`Retry-After`) when the database does not answer a request. */
const RETRY_AFTER_S = 5;

/** Bounds on what one connection may hold; node's defaults are looser (60 s for headers, 300 s per request). */
export interface HttpLimits {
  /** Largest request head (request line and headers); larger → 431. Default 16 KiB. */
  maxHeaderBytes: number;
  /** Time to receive the request head; then the connection is closed (408). Default 10 s. */
  headersTimeoutMs: number;
  /** Time to receive a whole request, body included. Default 30 s (the webhook route's own body deadline is shorter). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. Default 5 s. */
  keepAliveTimeoutMs: number;
  /** A connection with no traffic either way (a client that stopped reading, say) is closed after this. Default 60 s. */
  idleTimeoutMs: number;
  /** Open connections at most; more are refused at once. Default 512 (well under the usual 1,024 file descriptors). */
  maxConnections: number;
  /**
   * Open connections from one address (an IPv6 /64) at most; more are closed at once. Default 128: one
   * client opening 512 half-sent requests, each held to the header timeout and opened again, kept
   * every other client out — GitHub's deliveries too. Behind a reverse proxy every client shares its address.
   */
  maxConnectionsPerAddress: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 60_000,
  maxConnections: 512,
  maxConnectionsPerAddress: 128,
};

export interface ServiceServerOptions {
  engine: Engine;
  log: Logger;
  host: string;
  port: number;
  dashboardToken?: string | undefined;
  /** The URL the service is reached at (`server.publicUrl`): its host is one of the service's names. */
  publicUrl?: string | undefined;
  /** More Host values (`name[:port]`) to answer to, e.g. a proxy's upstream name. */
  allowedHosts?: readonly string[] | undefined;
  /** The webhook route, or null when GitHub is not configured (503 with the fix). */
  webhook: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | null;
  prometheus?: PrometheusExporter | undefined;
  limits?: Partial<HttpLimits> | undefined;
  /** The service's masker, applied to every API answer (and so to the dashboard). */
  masker?: Masker | undefined;
}

const asset = (name: string) => readFileSync(fileURLToPath(new URL(`./dashboard/${name}`, import.meta.url)), 'utf8');

/** The cookie's value; a {@link ClientError} when it is not valid percent-encoding. */
function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k !== name) continue;
    try {
      return decodeURIComponent(v.join('='));
    } catch {
      throw new ClientError(400, `The ${name} cookie is not valid percent-encoding: sign in again at /login (or clear the cookie).`);
    }
  }
  return undefined;
}

/** The request target as a URL on this server: only origin-form (`/path?query`) is accepted. */
function requestUrl(req: IncomingMessage): URL {
  const target = req.url ?? '';
  if (!target.startsWith('/'))
    throw new ClientError(400, `Request target "${target.slice(0, 200)}" is not a path: send a path such as /api/runs.`);
  try {
    return new URL(`http://localhost${target}`);
  } catch {
    throw new ClientError(400, `Request target "${target.slice(0, 200)}" is not a valid URL path.`);
  }
}

/** Starts listening; resolves with the server and its URL. */
export async function startServiceServer(options: ServiceServerOptions): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  // A page guarded by the token carries a way to forget it in this browser.
  const page = options.dashboardToken ? asset('index.html').replace('</header>', `${SIGN_OUT_FORM}</header>`) : asset('index.html');
  // Static code, style and icon hold no data: served without the token (the login page needs the style).
  const statics = new Map<string, [string, string]>([
    ['/app.js', [asset('app.js'), 'text/javascript; charset=utf-8']],
    ['/forms.js', [asset('forms.js'), 'text/javascript; charset=utf-8']],
    ['/timeline.js', [asset('timeline.js'), 'text/javascript; charset=utf-8']],
    ['/chart.js', [asset('chart.js'), 'text/javascript; charset=utf-8']],
    ['/statechart.js', [asset('statechart.js'), 'text/javascript; charset=utf-8']],
    ['/html.js', [asset('html.js'), 'text/javascript; charset=utf-8']],
    // Imported by html.js; the CLI's terminal text imports the same file (src/rmapp/cli/format.ts).
    ['/bidi-controls.js', [asset('bidi-controls.js'), 'text/javascript; charset=utf-8']],
    ['/logs.js', [asset('logs.js'), 'text/javascript; charset=utf-8']],
    // The statuses as a module, from their one definition, so the dashboard's filters and its notion of
    // a finished run cannot drift from the engine's.
    [
      '/statuses.js',
      [
        `export const RUN_STATUSES = ${JSON.stringify(RUN_STATUSES)};\nexport const FINAL_STATUSES = ${JSON.stringify(FINAL_STATUSES)};\n`,
        'text/javascript; charset=utf-8',
      ],
    ],
    ['/style.css', [asset('style.css'), 'text/css; charset=utf-8']],
    ['/favicon.svg', [asset('favicon.svg'), 'image/svg+xml']],
  ]);
  const { log, engine } = options;
  const limits = { ...DEFAULT_HTTP_LIMITS, ...options.limits };
  const limiter = new SignInLimiter();
  const login = loginRoute({ dashboardToken: options.dashboardToken, publicUrl: options.publicUrl, log, limiter });
  const logout = logoutRoute({ publicUrl: options.publicUrl });
  let policy: HostPolicy | undefined; // known once listening
  const stream = runStream(engine, options.masker ?? createMasker(), log);

  /**
   * Whether the request may go on: `ok`; `none` when it carries no token; `wrong`; `blocked` with the
   * seconds to wait when its address sent too many wrong tokens (login.ts {@link SignInLimiter}). A
   * wrong bearer or cookie token counts as a wrong sign-in: otherwise the API let anyone guess the
   * token without limit or trace.
   */
  const authorized = (req: IncomingMessage, url: URL): { is: 'ok' | 'none' | 'wrong' } | { is: 'blocked'; wait: number } => {
    if (!options.dashboardToken || url.pathname === '/login' || url.pathname === '/logout') return { is: 'ok' };
    // Only the Bearer scheme carries the token: a proxy in front asking for Basic auth forwards every
    // user's `Authorization: Basic …`, which taken whole counted each user as a wrong guess (ten locked
    // the proxy's address out).
    const bearer = /^Bearer\s+(.*)$/is.exec(req.headers.authorization ?? '')?.[1];
    const fromCookie = cookie(req, 'rmapp_token');
    if (!bearer && !fromCookie) return { is: 'none' };
    const client = clientAddress(req);
    // Both may be sent (a script's header and a browser's old cookie): each is a try, judged only while
    // the address may still try (the two of one request made the count 11).
    for (const token of [bearer, fromCookie]) {
      if (!token) continue;
      const verdict = limiter.judge(client, token, options.dashboardToken, log, { path: url.pathname });
      if (verdict.is !== 'wrong') return verdict;
    }
    return { is: 'wrong' };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    const url = requestUrl(req);
    const path = url.pathname;
    const method = req.method ?? 'GET';
    // Two Host lines: Node keeps the first, a proxy in front may have routed by the other (RFC 9112 §3.2
    // asks for a 400), so the host check would judge a name the request was not sent to.
    if ((req.headersDistinct.host?.length ?? 0) > 1) {
      return sendJson(res, 400, { error: 'The request has more than one Host header; send exactly one.' });
    }
    // RFC 9112 §3.2 again: HTTP/1.1 needs a Host. node's own check (requireHostHeader, off below) wrote a
    // bare 400 without the security headers or a word of what was wrong.
    if (!req.headers.host && req.httpVersion === '1.1') {
      return sendJson(res, 400, { error: 'An HTTP/1.1 request needs a Host header naming the server (Host: name:port).' });
    }
    if (path === '/webhooks/github') {
      if (method !== 'POST') return sendJson(res, 405, { error: 'Use POST.' }, { allow: 'POST' });
      if (!options.webhook)
        return sendJson(res, 503, {
          error: 'GitHub is not configured: set GITHUB_WEBHOOK_SECRET and the GitHub credentials (see the README).',
        });
      return options.webhook(req, res);
    }
    if (path === '/healthz') return sendJson(res, 200, { ok: true, worker: engine.workerId });
    if (policy && !policy.allowsHost(req.headers.host)) {
      return sendJson(res, 421, {
        error: `Host "${req.headers.host ?? ''}" is not a name of this service (${policy.names.join(', ')}); refused as a DNS-rebinding defence. Open the dashboard at one of those names, or set RMAPP_PUBLIC_URL to the URL it is reached at.`,
      });
    }
    if (method !== 'GET' && method !== 'HEAD' && policy && !policy.allowsOrigin(req.headers.origin, req.headers.host)) {
      return sendJson(res, 403, {
        error: `Origin "${req.headers.origin}" is not this service's: state changes come only from its own dashboard (${policy.names.join(', ')}).`,
      });
    }
    const fixed = statics.get(path);
    if (fixed && (method === 'GET' || method === 'HEAD')) return sendText(res, 200, fixed[0], fixed[1]);
    const access = authorized(req, url);
    if (access.is !== 'ok') {
      const api = path.startsWith('/api/') || path === '/metrics';
      if (access.is === 'blocked') return sendTooMany(res, access.wait, api);
      if (api) {
        const error =
          access.is === 'wrong'
            ? 'The dashboard token sent (Authorization: Bearer, or the rmapp_token cookie) is not right: send RMAPP_DASHBOARD_TOKEN.'
            : 'Dashboard token required: send Authorization: Bearer <RMAPP_DASHBOARD_TOKEN>.';
        return sendJson(res, 401, { error });
      }
      return sendText(res, 401, loginPage(access.is === 'wrong' ? 'That token is not right.' : undefined), 'text/html; charset=utf-8');
    }
    if (path === '/login') return login(req, res, url);
    if (path === '/logout') return logout(req, res);
    if (path === '/metrics') {
      if (!options.prometheus) return sendText(res, 404, 'Metrics are off: start with --metrics.\n');
      return options.prometheus.getMetricsRequestHandler(req, res);
    }
    if (path === '/api/stream' && (method === 'GET' || method === 'HEAD')) return stream.handle(req, res, url);
    if (path.startsWith('/api/')) {
      if (method === 'POST' && req.headers['x-rmapp-request'] !== '1')
        return sendJson(res, 403, { error: 'Missing X-Rmapp-Request: 1 header.' });
      if (await handleApi(engine, req, res, url, options.masker)) return;
      const allow = apiRouteMethods(path);
      if (allow && !allow.includes(method))
        return sendJson(res, 405, { error: `${path} does not take ${method}: use ${allow.join(' or ')}.` }, { allow: allow.join(', ') });
      return sendJson(res, 404, { error: `No API route ${method} ${path}.` });
    }
    if ((method === 'GET' || method === 'HEAD') && (path === '/' || path.startsWith('/runs/')))
      return sendText(res, 200, page, 'text/html; charset=utf-8');
    return sendJson(res, 404, { error: `Not found: ${path}` });
  };

  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      // Checked by `handle`, which answers with the security headers and a message.
      requireHostHeader: false,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often node looks for connections past headersTimeout/requestTimeout (default 30 s, coarser than the limits).
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, limits.headersTimeoutMs / 2)),
    },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (err instanceof ClientError) {
          if (!res.headersSent) {
            if (!err.closesConnection) return sendJson(res, err.status, { error: err.message });
            res.once('finish', () => req.socket.destroy());
            return sendJson(res, err.status, { error: err.message }, { connection: 'close' });
          }
        } else log.error({ err, url: req.url }, 'request failed');
        if (res.headersSent) return res.destroy();
        // The database not answering (refused, cut, shutting down: errors.ts `isDatabaseUnavailable`) is
        // no fault of the request, and passes: 503 with when to ask again, as a client retries it.
        if (isDatabaseUnavailable(err))
          return sendJson(
            res,
            503,
            { error: `The service cannot reach its database just now; try again in ${RETRY_AFTER_S} seconds (the server log says why).` },
            { 'retry-after': String(RETRY_AFTER_S) },
          );
        sendJson(res, 500, { error: 'Internal error; see the server log.' });
      });
    },
  );
  server.timeout = limits.idleTimeoutMs;
  // Beyond this many open connections new ones are refused: slow or idle clients cannot take every
  // file descriptor (EMFILE would also stop the service reaching GitHub and Postgres).
  server.maxConnections = limits.maxConnections;
  const openFrom = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const from = addressKey(socket.remoteAddress);
    const open = (openFrom.get(from) ?? 0) + 1;
    if (open > limits.maxConnectionsPerAddress) return void socket.destroy();
    openFrom.set(from, open);
    socket.once('close', () => {
      const left = (openFrom.get(from) ?? 1) - 1;
      if (left > 0) openFrom.set(from, left);
      else openFrom.delete(from);
    });
  });
  // Answers node writes itself (a malformed request, headers too large, too slow, an unknown Expect:)
  // carry the security headers too, and none is written where a response has begun (node-answers.ts).
  answerClientErrors(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  policy = hostPolicy({
    host: options.host,
    port: address.port,
    publicUrl: options.publicUrl,
    allowedHosts: options.allowedHosts,
    dashboardToken: options.dashboardToken,
  });
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${host}:${address.port}`,
    close: async () => {
      await stream.close();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
