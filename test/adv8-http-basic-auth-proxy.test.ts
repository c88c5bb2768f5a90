/**
 * An `Authorization` header of another scheme is not a dashboard token. Behind a reverse proxy that
 * asks for HTTP Basic auth (nginx's `auth_basic`, which forwards the header), every request carried
 * `Authorization: Basic <user:password>`, which the service took whole as a wrong token: each user's
 * credential counted as a guess from the proxy's address, so ten users signed in to the proxy (each
 * also holding the right cookie) made every request from it answer 429 for a minute — and each
 * request logged a warning. The token is sent as `Authorization: Bearer <token>` (README); other
 * schemes are left alone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpService, type HttpService } from './helpers/http-service.ts';

const TOKEN = 'the-right-token-0123456789';
let service: HttpService | undefined;

async function start(): Promise<string> {
  service = await startHttpService({ server: { dashboardToken: TOKEN } });
  return service.url;
}
afterEach(() => service?.close());

const basic = (user: string) => `Basic ${Buffer.from(`${user}:their-proxy-password`).toString('base64')}`;

describe('Authorization of another scheme, from a proxy in front', () => {
  it('twelve users with their Basic credentials and the right cookie: every request served', async () => {
    const url = await start();
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${url}/api/workflows`, { headers: { authorization: basic(`user${i}`), cookie: `rmapp_token=${TOKEN}` } });
      expect(res.status, `user${i}`).toBe(200);
    }
    expect((await fetch(`${url}/api/workflows`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  it('a Basic credential without the cookie: asked for the token, not told a token is wrong', async () => {
    const url = await start();
    const res = await fetch(`${url}/api/workflows`, { headers: { authorization: basic('someone') } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toContain('required');
  });

  it('wrong Bearer tokens are still counted: the 11th distinct one gets 429', async () => {
    const url = await start();
    for (let i = 0; i < 10; i++)
      expect((await fetch(`${url}/api/workflows`, { headers: { authorization: `Bearer guess-${i}` } })).status).toBe(401);
    expect((await fetch(`${url}/api/workflows`, { headers: { authorization: 'bearer guess-10' } })).status).toBe(429);
  });
});
