/**
 * The dashboard's sign-in: the token compared in constant time (as digests, so its length does not
 * show either), wrong tokens limited per client address (10 a minute, then 429 with Retry-After, and a
 * log line) — at `/login` and in every request's `Authorization: Bearer` header or cookie alike — the
 * token taken from a POSTed form (never left in the URL or the browser's history; `GET /login?token=`
 * still works for scripts), and the cookie `HttpOnly; SameSite=Strict`, plus `Secure` when the public
 * URL is https.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.ts';
import { readClientBody, sendJson, sendText } from './http-util.ts';

/** Constant time, whatever the lengths. */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (!given) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

const WINDOW_MS = 60_000;
const MAX_FAILURES = 10;

/**
 * Wrong tokens per client address, over a minute from the first. A guess is a token not tried before
 * from that address in the window: the same wrong token sent again — a browser whose cookie outlived a
 * token change, reloading and polling the API — is one failure, not one per request, so it cannot lock
 * the address (and whoever shares it) out. Past {@link MAX_FAILURES} every token from the address is
 * refused until the window ends, the right one too: answering it would tell a guesser it is right. A
 * right token resets nothing: a user signing in from the same address (a proxy, a NAT) would otherwise
 * give a guesser a new allowance each time.
 */
export class SignInLimiter {
  private readonly failures = new Map<string, { tried: Set<string>; since: number }>();
  /** When every address's window was last looked at: the map is swept once a window, not per request. */
  private sweptAt = 0;

  /** Seconds until `client` may try a token again; 0 when it may now. */
  blockedFor(client: string, now = Date.now()): number {
    if (now - this.sweptAt > WINDOW_MS) {
      this.sweptAt = now;
      for (const [k, v] of this.failures) if (now - v.since > WINDOW_MS) this.failures.delete(k);
    }
    const seen = this.failures.get(client);
    if (!seen) return 0;
    if (now - seen.since > WINDOW_MS) {
      this.failures.delete(client);
      return 0;
    }
    return seen.tried.size >= MAX_FAILURES ? Math.max(1, Math.ceil((seen.since + WINDOW_MS - now) / 1000)) : 0;
  }

  /**
   * Judges one `token` from `client` against `expected` (none: every token is wrong), while the address
   * may still try: a wrong one is counted (once per distinct token) and logged, never its value.
   */
  judge(
    client: string,
    token: string,
    expected: string | undefined,
    log: Logger,
    where: Record<string, unknown>,
  ): { is: 'ok' } | { is: 'wrong' } | { is: 'blocked'; wait: number } {
    const wait = this.blockedFor(client);
    if (wait > 0) return { is: 'blocked', wait };
    if (expected && tokenMatches(token, expected)) return { is: 'ok' };
    const entry = this.failures.get(client) ?? { tried: new Set<string>(), since: Date.now() };
    entry.tried.add(createHash('sha256').update(token).digest('base64'));
    this.failures.set(client, entry);
    log.warn({ client, failures: entry.tried.size, ...where }, 'request with a wrong dashboard token');
    return { is: 'wrong' };
  }
}

/** The 429 of an address that sent too many wrong tokens: JSON for the API, the sign-in page otherwise. */
export function sendTooMany(res: ServerResponse, wait: number, json: boolean): void {
  res.setHeader('retry-after', String(wait));
  const message = `Too many wrong tokens from this address: try again in ${wait} s.`;
  if (json) sendJson(res, 429, { error: message });
  else sendText(res, 429, loginPage(message), 'text/html; charset=utf-8');
}

/**
 * The address a request came from, as the limiter counts it: an IPv4 address, or an IPv6 one's /64
 * prefix — one host commonly holds a whole /64, and counting its addresses one by one gave it 10
 * guesses each. An IPv4 address mapped into IPv6 (`::ffff:1.2.3.4`) is the IPv4 one.
 */
export function clientAddress(req: IncomingMessage): string {
  return addressKey(req.socket.remoteAddress);
}

/** A peer's address as limits count it: an IPv4 address as it is, an IPv6 one as its /64. */
export function addressKey(remoteAddress: string | undefined): string {
  const address = remoteAddress ?? 'unknown';
  if (!address.includes(':')) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  const [head = '', tail] = address.split('%')[0]!.split('::') as [string, string | undefined];
  const groups = head ? head.split(':') : [];
  if (tail !== undefined) {
    const rest = tail ? tail.split(':') : [];
    while (groups.length + rest.length < 8) groups.push('0');
    groups.push(...rest);
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export function loginPage(message = 'This dashboard needs its token (RMAPP_DASHBOARD_TOKEN).'): string {
  return `<!doctype html><meta charset="utf-8"><title>rmapp — sign in</title><link rel="stylesheet" href="/style.css">
<main class="login"><h1>rmapp</h1><p>${message}</p><form action="/login" method="post"><input type="password" name="token" placeholder="dashboard token" autofocus><button>Open</button></form></main>`;
}

/** The sign-out button the dashboard's pages carry when a token guards them (a form: no script needed). */
export const SIGN_OUT_FORM = '<form class="signout" action="/logout" method="post"><button>Sign out</button></form>';

/**
 * `POST /logout`: forgets this browser's sign-in (the cookie expires at once) and goes back to the
 * sign-in page. A POST only (the service's origin check applies), so a link or a prefetch cannot sign
 * anyone out. The cookie holds the token itself: to revoke it everywhere, change RMAPP_DASHBOARD_TOKEN.
 */
export function logoutRoute(options: { publicUrl?: string | undefined }) {
  const secure = options.publicUrl?.startsWith('https:') ? '; Secure' : '';
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'POST')
      return sendJson(res, 405, { error: "Sign out with POST /logout (the dashboard's Sign out button)." }, { allow: 'POST' });
    res.writeHead(303, {
      location: '/login',
      'set-cookie': `rmapp_token=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/${secure}`,
      'cache-control': 'no-store',
    });
    res.end();
  };
}

/**
 * Whether a browser says the request comes from a page of another site or origin (`Sec-Fetch-Site`:
 * `cross-site`, `same-site`). Such a sign-in is refused before its token is judged: a page the operator
 * visits could otherwise send ten wrong tokens from their address (`<img src=".../login?token=…">`, a
 * GET no Origin check sees) and lock them out for a minute, on every visit — behind a proxy, everyone.
 * A script sends no such header, an address typed by hand sends `none`, the sign-in form `same-origin`.
 */
export function fromAnotherSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  return site !== undefined && site !== 'none' && site !== 'same-origin';
}

/** The `/login` route: returns the handler. */
export function loginRoute(options: {
  dashboardToken: string | undefined;
  publicUrl?: string | undefined;
  log: Logger;
  limiter: SignInLimiter;
}) {
  const { limiter } = options;
  const secure = options.publicUrl?.startsWith('https:') ? '; Secure' : '';
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (fromAnotherSite(req))
      return sendText(
        res,
        403,
        loginPage('A sign-in sent from another site is refused: open this address yourself and sign in here.'),
        'text/html; charset=utf-8',
      );
    const client = clientAddress(req);
    const wait = limiter.blockedFor(client);
    if (wait > 0) return sendTooMany(res, wait, false);
    let token = url.searchParams.get('token') ?? '';
    if (req.method === 'POST') {
      const form = await readClientBody(req, { limit: 4096, deadlineMs: 10_000, tooLarge: 'send the form with the token field only' });
      token = new URLSearchParams(form.toString('utf8')).get('token') ?? '';
    } else if (!url.searchParams.has('token')) return sendText(res, 200, loginPage(), 'text/html; charset=utf-8');
    // Judged once the form is in, the limit asked again: forms sent together all passed the check above
    // before any was counted (an adversarial pass made 39 guesses in one window, 40 connections whose
    // bodies came late).
    const verdict = limiter.judge(client, token, options.dashboardToken, options.log, { path: '/login' });
    if (verdict.is === 'blocked') return sendTooMany(res, verdict.wait, false);
    if (verdict.is === 'wrong') return sendText(res, 401, loginPage('That token is not right.'), 'text/html; charset=utf-8');
    res.writeHead(303, {
      location: '/',
      'set-cookie': `rmapp_token=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/${secure}`,
    });
    res.end();
  };
}
