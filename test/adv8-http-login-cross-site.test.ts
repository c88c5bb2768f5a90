/**
 * Another site cannot lock the operator out of the dashboard. `GET /login?token=` (kept for scripts)
 * counted every wrong token toward the address's 10 a minute, and a page on any other site could send
 * it: eleven `<img src="http://127.0.0.1:3000/login?token=guess-N">` on a page the operator visits, and
 * Chromium's requests from their address made the right token answer 429 for a minute, again on every
 * visit (behind a reverse proxy, for everyone). A browser names where a request comes from
 * (`Sec-Fetch-Site`): a sign-in from another site or origin is refused (403) and counts as nothing; a
 * script (no such header), an address typed by hand (`none`) and the service's own pages
 * (`same-origin`) sign in as before.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpService, type HttpService } from './helpers/http-service.ts';

const TOKEN = 'the-right-token-0123456789';
let service: HttpService | undefined;

/** A server of its own per test: each has its own count of wrong tokens. */
async function start(): Promise<string> {
  service = await startHttpService({ server: { dashboardToken: TOKEN } });
  return service.url;
}
afterEach(() => service?.close());

const signIn = (url: string, token: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/login?token=${encodeURIComponent(token)}`, { redirect: 'manual', headers });
const withRightToken = (url: string) => fetch(`${url}/api/workflows`, { headers: { authorization: `Bearer ${TOKEN}` } });

describe('sign-in from another site', () => {
  for (const site of ['cross-site', 'same-site']) {
    it(`eleven wrong tokens sent ${site} (Sec-Fetch-Site: ${site}) are refused and lock nobody out`, async () => {
      const url = await start();
      for (let i = 0; i < 11; i++) {
        const res = await signIn(url, `guess-${i}`, { 'sec-fetch-site': site, 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' });
        expect(res.status).toBe(403);
        expect(await res.text()).toContain('another site');
      }
      expect((await withRightToken(url)).status).toBe(200);
    });
  }

  it('the right token sent from another site signs nobody in (no cookie set)', async () => {
    const url = await start();
    const res = await signIn(url, TOKEN, { 'sec-fetch-site': 'cross-site' });
    expect(res.status).toBe(403);
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('typed by hand (none) or from its own pages (same-origin), the right token signs in', async () => {
    const url = await start();
    for (const site of ['none', 'same-origin']) {
      const res = await signIn(url, TOKEN, { 'sec-fetch-site': site });
      expect(res.status).toBe(303);
      expect(res.headers.get('set-cookie')).toContain('rmapp_token=');
    }
  });

  it('a script (no Sec-Fetch-Site) guessing is still limited: the 11th try gets 429', async () => {
    const url = await start();
    for (let i = 0; i < 10; i++) expect((await signIn(url, `guess-${i}`)).status).toBe(401);
    expect((await signIn(url, 'guess-10')).status).toBe(429);
  });
});
