/**
 * The dashboard's sign-in: the token compared in constant time (as digests, so its length does not
 * show either), failed attempts limited per client address (10 a minute, then 429 with Retry-After,
 * and a log line), the token taken from a POSTed form (never left in the URL or the browser's history;
 * `GET /login?token=` still works for scripts), and the cookie `HttpOnly; SameSite=Strict`, plus
 * `Secure` when the public URL is https.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.ts';
import { readClientBody, sendText } from './http-util.ts';

/** Constant time, whatever the lengths. */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (!given) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

const WINDOW_MS = 60_000;
const MAX_FAILURES = 10;

export function loginPage(message = 'This dashboard needs its token (RMAPP_DASHBOARD_TOKEN).'): string {
  return `<!doctype html><meta charset="utf-8"><title>rmapp — sign in</title><link rel="stylesheet" href="/style.css">
<main class="login"><h1>rmapp</h1><p>${message}</p><form action="/login" method="post"><input type="password" name="token" placeholder="dashboard token" autofocus><button>Open</button></form></main>`;
}

/** The `/login` route: returns the handler. */
export function loginRoute(options: { dashboardToken: string | undefined; publicUrl?: string | undefined; log: Logger }) {
  const failures = new Map<string, { count: number; since: number }>();
  const secure = options.publicUrl?.startsWith('https:') ? '; Secure' : '';
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const client = req.socket.remoteAddress ?? 'unknown';
    const now = Date.now();
    for (const [k, v] of failures) if (now - v.since > WINDOW_MS) failures.delete(k);
    const seen = failures.get(client);
    if (seen && seen.count >= MAX_FAILURES) {
      const wait = Math.ceil((seen.since + WINDOW_MS - now) / 1000);
      res.setHeader('retry-after', String(wait));
      return sendText(res, 429, loginPage(`Too many wrong tokens from this address: try again in ${wait} s.`), 'text/html; charset=utf-8');
    }
    let token = url.searchParams.get('token') ?? '';
    if (req.method === 'POST') {
      const form = await readClientBody(req, { limit: 4096, deadlineMs: 10_000, tooLarge: 'send the form with the token field only' });
      token = new URLSearchParams(form.toString('utf8')).get('token') ?? '';
    } else if (!url.searchParams.has('token')) return sendText(res, 200, loginPage(), 'text/html; charset=utf-8');
    if (!options.dashboardToken || !tokenMatches(token, options.dashboardToken)) {
      const entry = seen ?? { count: 0, since: now };
      entry.count += 1;
      failures.set(client, entry);
      options.log.warn({ client, failures: entry.count }, 'dashboard sign-in with a wrong token');
      return sendText(res, 401, loginPage('That token is not right.'), 'text/html; charset=utf-8');
    }
    failures.delete(client);
    res.writeHead(303, {
      location: '/',
      'set-cookie': `rmapp_token=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/${secure}`,
    });
    res.end();
  };
}
