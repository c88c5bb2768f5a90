/** The one masking function (src/rmapp/masking.ts): configured values, token- and key-shaped text, URL credentials, secret keys. */
import { generateKeyPairSync } from 'node:crypto';
import { expect, it } from 'vitest';
import { createMasker, MASK } from '../src/rmapp/masking.ts';

const SECRET = 'my-webhook-secret-value';
const TOKEN = `ghp_${'Zz09'.repeat(9)}`;
const PAT = `github_pat_11ABC${'x'.repeat(70)}`;
const KEY = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString().trim();

it('masks configured values, also base64 and in the git header form, and any GitHub token or private key', () => {
  const m = createMasker([SECRET, 'short', undefined]);
  const cases: [string, string][] = [
    [`secret=${SECRET}.`, `secret=${MASK}.`],
    [`b64 ${Buffer.from(SECRET).toString('base64')}`, `b64 ${MASK}`],
    [`Authorization: Basic ${Buffer.from(`x-access-token:${SECRET}`).toString('base64')}`, `Authorization: Basic ${MASK}`],
    [`GITHUB_TOKEN=${TOKEN}\n`, `GITHUB_TOKEN=${MASK}\n`],
    [`pat: ${PAT}`, `pat: ${MASK}`],
    [`key:\n${KEY}\nafter`, `key:\n${MASK}\nafter`],
    [JSON.stringify({ k: KEY }), JSON.stringify({ k: MASK })],
    ['postgres://svc:pa55word@db.internal:5432/prod', `postgres://svc:${MASK}@db.internal:5432/prod`],
    [`https://x-access-token:${TOKEN}@github.com/a/b.git`, `https://${MASK}@github.com/a/b.git`],
    ['Authorization: Bearer abcdefghijklmnop1234', `Authorization: ${MASK}`],
    ['the word short stays, and main, and a sha 0123456789abcdef0123456789abcdef01234567', 'the word short stays, and main, and a sha 0123456789abcdef0123456789abcdef01234567'],
  ];
  for (const [input, expected] of cases) expect(m.text(input), `masking ${JSON.stringify(input.slice(0, 40))}`).toBe(expected);
});

it('masks values deep in objects, errors and cycles, and the values of secret-looking keys', () => {
  const m = createMasker([SECRET]);
  const err = new Error(`failed with ${SECRET}`);
  const cyclic: Record<string, unknown> = { note: `uses ${TOKEN}` };
  cyclic.self = cyclic;
  const out = m.value({ a: { githubToken: 'x1', apiKey: 'k', list: [{ password: 'p' }], text: `uses ${SECRET}`, count: 3 }, err, cyclic, when: new Date(0) });
  expect(out.a).toEqual({ githubToken: MASK, apiKey: MASK, list: [{ password: MASK }], text: `uses ${MASK}`, count: 3 });
  expect(out.err).toMatchObject({ type: 'Error', message: `failed with ${MASK}` });
  expect(JSON.stringify(out.err)).not.toContain(SECRET);
  expect(out.cyclic).toEqual({ note: `uses ${MASK}`, self: '[…]' });
  expect(out.when).toEqual(new Date(0));
});
