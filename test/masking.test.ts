/** The one masking function (src/rmapp/masking.ts): configured values, token- and key-shaped text, URL credentials, secret keys. */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { expect, it } from 'vitest';
import { connectionStringSecrets, createMasker, MASK } from '../src/rmapp/masking.ts';

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
    ['Authorization: Bearer abcdefghijklmnop1234', `Authorization: Bearer ${MASK}`],
    [
      'the word short stays, and main, and a sha 0123456789abcdef0123456789abcdef01234567',
      'the word short stays, and main, and a sha 0123456789abcdef0123456789abcdef01234567',
    ],
  ];
  for (const [input, expected] of cases) expect(m.text(input), `masking ${JSON.stringify(input.slice(0, 40))}`).toBe(expected);
});

it('masks values deep in objects, errors and cycles, and the values of secret-looking keys', () => {
  const m = createMasker([SECRET]);
  const err = new Error(`failed with ${SECRET}`);
  const cyclic: Record<string, unknown> = { note: `uses ${TOKEN}` };
  cyclic.self = cyclic;
  const out = m.value({
    a: { githubToken: 'x1', apiKey: 'k', list: [{ password: 'p' }], text: `uses ${SECRET}`, count: 3 },
    err,
    cyclic,
    when: new Date(0),
  });
  expect(out.a).toEqual({ githubToken: MASK, apiKey: MASK, list: [{ password: MASK }], text: `uses ${MASK}`, count: 3 });
  expect(out.err).toMatchObject({ type: 'Error', message: `failed with ${MASK}` });
  expect(JSON.stringify(out.err)).not.toContain(SECRET);
  expect(out.cyclic).toEqual({ note: `uses ${MASK}`, self: '[…]' });
  expect(out.when).toEqual(new Date(0));
});

it('masks the other forms secrets travel in, and leaves ordinary text alone', () => {
  const db = 'p@ss:w/rd!secret';
  const m = createMasker([SECRET, db, encodeURIComponent(db)]);
  const cases: [string, string][] = [
    [`url ${encodeURIComponent(SECRET)}`, `url ${MASK}`],
    [`hex ${Buffer.from(SECRET).toString('hex')}`, `hex ${MASK}`],
    [`…tail ${SECRET.slice(0, 12)}`, `…tail ${MASK}`],
    [`${SECRET.slice(-10)} head…`, `${MASK} head…`],
    [`pw ${db} and postgres://svc:${encodeURIComponent(db)}@db/x`, `pw ${MASK} and postgres://svc:${MASK}@db/x`],
    ['https://api.example.com/cb?code=1&access_token=abc123def&x=2', `https://api.example.com/cb?code=1&access_token=${MASK}&x=2`],
    [`keys sk-ant-api03-${'a'.repeat(40)} npm_${'b'.repeat(36)} AKIA${'C'.repeat(16)}`, `keys ${MASK} ${MASK} ${MASK}`],
    [`-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\nAAAA`, MASK],
    ['Fix #12: Add basic internationalization support', 'Fix #12: Add basic internationalization support'],
    [
      'The bearer of responsibilities, a uuid 1b4e28ba-2fa1-11d2-883f-0016d3cca427',
      'The bearer of responsibilities, a uuid 1b4e28ba-2fa1-11d2-883f-0016d3cca427',
    ],
  ];
  for (const [input, expected] of cases) expect(m.text(input), `masking ${JSON.stringify(input.slice(0, 40))}`).toBe(expected);
  expect(m.value({ maxTokens: '4096', tokens_used: '12', secretary: 'Ann', apiToken: 42, [SECRET]: 1 })).toEqual({
    maxTokens: '4096',
    tokens_used: '12',
    secretary: 'Ann',
    apiToken: MASK,
    [MASK]: 1,
  });
});

it('stays linear on text shaped to make regular expressions backtrack', () => {
  const m = createMasker([SECRET]);
  for (const hostile of [
    'a.'.repeat(200_000),
    '-----BEGIN RSA PRIVATE KEY-----'.repeat(10_000),
    '-----BEGIN PRIVATE KEY-----\n'.repeat(38_000),
    'https://'.repeat(50_000),
    'Bearer '.repeat(50_000),
    `${'A'.repeat(2_000_000)}\n`,
    `${'A'.repeat(257)}\n`.repeat(8_000),
    `${'A'.repeat(76)}\n`.repeat(26_000),
  ]) {
    const started = process.hrtime.bigint();
    m.text(hostile);
    // Not a timing assertion of speed: a quadratic pattern takes minutes here, a linear one well under the limit.
    expect(Number(process.hrtime.bigint() - started) / 1e9, `masking ${hostile.slice(0, 20)}…`).toBeLessThan(20);
  }
});

it('masks a configured secret disguised: spaced, wrapped, re-cased, with ANSI codes or zero-width characters, or cut short', () => {
  const key = 'Agent-Key-Value-0123456789abcdef';
  const m = createMasker([key]);
  const disguised = [
    key.toUpperCase(),
    key.split('').join(' '),
    `${key.slice(0, 10)}\n${key.slice(10)}`,
    `${key.slice(0, 8)}\x1b[31m${key.slice(8)}\x1b[0m`,
    `${key.slice(0, 5)}\u200b${key.slice(5)}`,
    `${key.slice(0, -3)}... (cut)`,
    `(cut) ...${key.slice(5)}`,
  ];
  for (const d of disguised) {
    const out = m.text(`the key is ${d} - end`);
    expect(out, `masking ${JSON.stringify(d)}`).toContain(MASK);
    expect(out.replace(/[^A-Za-z0-9]/g, '').toLowerCase(), `masking ${JSON.stringify(d)}`).not.toContain('0123456789ab');
    expect(out, `masking ${JSON.stringify(d)}`).toMatch(/^the key is .*- end$/s);
  }
  const jwt = `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.${'s'.repeat(43)}`;
  const shapes: [string, string][] = [
    [`token ${jwt}`, `token ${MASK}`],
    ['aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', `aws_secret_access_key = ${MASK}`],
    ['//registry.npmjs.org/:_authToken=abcdef0123456789', `//registry.npmjs.org/:_authToken=${MASK}`],
    ['curl -u admin:hunter2secret https://x', `curl -u admin:${MASK} https://x`],
  ];
  for (const [input, expected] of shapes) expect(m.text(input), `masking ${JSON.stringify(input.slice(0, 30))}`).toBe(expected);
});

it("takes a database URL's password as its secret, not the whole URL", () => {
  const cases: [string | undefined, string[]][] = [
    [undefined, []],
    ['postgres://postgres@127.0.0.1:5432/test', []],
    ['postgres://app:Swordfish%2Fx9@db.internal:5432/prod', ['Swordfish%2Fx9', 'Swordfish/x9']],
    ['postgres://app@db/prod?password=Hunter2-long&sslpassword=Kp-99-zz', ['Hunter2-long', 'Kp-99-zz']],
    // Malformed (no URL parser takes it): what stands between the user's ':' and the last '@'.
    ['postgres://app:pa#ss@word@127.0.0.1:99999/x', ['pa#ss@word', 'pa#ss@word']],
    ['postgres://app@127.0.0.1:99999/x', []],
    // Not a URL at all: nothing in it can be told apart, so all of it.
    ['host=db password=abcdef123', ['host=db password=abcdef123']],
  ];
  for (const [value, secrets] of cases) expect(connectionStringSecrets(value), String(value)).toEqual(secrets);
  const m = createMasker(connectionStringSecrets('postgres://app:Swordfish%2Fx9@db.internal:5432/prod'));
  expect(m.text('on postgres://app@db.internal:5432/prod, pw Swordfish/x9')).toBe(`on postgres://app@db.internal:5432/prod, pw ${MASK}`);
});

it('masks a secret base64-encoded inside longer text, wrapped in lines or URL-safe, as `base64` and `env | base64` print it', () => {
  const key = `sk-ant-api03-${'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789'.repeat(3)}`;
  const m = createMasker([key]);
  const wrap = (b64: string, width: number) => `${b64.match(new RegExp(`.{1,${width}}`, 'g'))?.join('\n')}\n`;
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const encodings: [string, string][] = [
    ['echo "$K" | base64', wrap(b64(`${key}\n`), 76)],
    ['echo "K=$K" | base64 -w0', b64(`K=${key}\n`)],
    ['env | base64 -w0 (key at offset 1)', b64(`A=1\nK=${key}\nB=2\n`)],
    ['key at offset 2, wrapped at 60', wrap(b64(`xx${key} yy\n`), 60)],
    ['base64url', Buffer.from(`k: ${key}`).toString('base64url')],
    ['CRLF-wrapped', wrap(b64(`xyz${key}`), 64).replaceAll('\n', '\r\n')],
    ['wrapped at 12', wrap(b64(`K=${key}`), 12)],
    ['wrapped at 400', wrap(b64(`${'~'.repeat(300)}K=${key}`), 400)],
    ['indented as a YAML block', wrap(b64(`x${key}`), 60).replace(/^/gm, '    ')],
    ['inside a JSON string', JSON.stringify({ data: wrap(b64(`xy${key}`), 76) })],
    ['wrapped URL-safe', wrap(Buffer.from(`k=${key}`).toString('base64url'), 50)],
    ['lines ending in a space, CR only', wrap(b64(`abc${key}`), 40).replaceAll('\n', ' \r')],
  ];
  for (const [how, encoded] of encodings) {
    const out = m.text(`output:\n${encoded}done`);
    expect(out, how).toContain(MASK);
    // What is left decodes to at most a few characters next to the key, never a piece of it 6 long.
    const left = Buffer.from(out.replaceAll(MASK, '').replace(/\s|output:|done/g, ''), 'base64').toString('latin1');
    for (let i = 0; i + 6 <= key.length; i += 1) expect(left, `${how}: left ${JSON.stringify(left)}`).not.toContain(key.slice(i, i + 6));
  }
  // Base64 that holds no secret, wrapped or not, is left as it is.
  const other = wrap(b64('x'.repeat(300)), 76);
  expect(m.text(other)).toBe(other);
  const prose = 'The quick brown fox jumps over the lazy dog.\n  indented: yes\n\tTabbed.';
  expect(m.text(prose)).toBe(prose);
});

it('masks a secret hex-encoded inside longer text, wrapped or spaced as hex dumps print it', () => {
  // An adversarial pass: `env | xxd -p` (60-column lines) and `xxd -g1`-style pairs came out whole.
  const secret = 'Xq7PwdSecretZeta91';
  const m = createMasker([secret]);
  const hex = (text: string) => Buffer.from(text).toString('hex');
  const wrap = (h: string, width: number) => `${h.match(new RegExp(`.{1,${width}}`, 'g'))?.join('\n')}\n`;
  const encodings: [string, string][] = [
    ['env | xxd -p', wrap(hex(`HOME=/root\nDATABASE_PASSWORD=${secret}\n`), 60)],
    ['xxd -p -c 8', wrap(hex(`K=${secret}`), 16)],
    ['pairs spaced', hex(`K=${secret}\n`).replace(/(..)(?!$)/g, '$1 ')],
    ['upper case, wrapped', wrap(hex(`${secret} tail`).toUpperCase(), 32)],
    ['inside a JSON string', JSON.stringify({ out: wrap(hex(`x${secret}`), 60) })],
  ];
  for (const [how, encoded] of encodings) {
    const out = m.text(`dump:\n${encoded}end`);
    expect(out, how).toContain(MASK);
    const left = Buffer.from(out.replaceAll(MASK, '').replace(/\s|\\n|dump:|end|[{}":]|out/g, ''), 'hex').toString('latin1');
    for (let i = 0; i + 6 <= secret.length; i += 1)
      expect(left, `${how}: left ${JSON.stringify(left)}`).not.toContain(secret.slice(i, i + 6));
  }
  // Hex that holds no secret is left as it is.
  const other = wrap(hex('y'.repeat(100)), 60);
  expect(m.text(other)).toBe(other);
});

it('masks a short secret (8 bytes and more) base64-encoded at any alignment', () => {
  for (const secret of ['hunter2x', 'Pa55w0rd9', 'pässwörd', '🔑🔑🔑']) {
    const m = createMasker([secret]);
    for (const before of ['', 'K', 'K=', 'xyK=']) {
      const encoded = Buffer.from(`${before}${secret}\n`).toString('base64');
      expect(m.text(`v: ${encoded}`), `${secret} after ${JSON.stringify(before)}`).toContain(MASK);
    }
  }
});

it('masks a long secret cut at either edge of a text exactly as trying every cut length would', () => {
  // 1,024 hex characters, as long as a private key: only the edge search can mask a piece of it.
  let secret = '';
  for (let h = 'seed'; secret.length < 1024;) secret += h = createHash('sha512').update(h).digest('hex');
  const m = createMasker([secret]);
  // The reference: every length from the longest down, as the masker did before it searched by the
  // edge's first and last 8 characters.
  const reference = (piece: string): string => {
    for (let n = secret.length - 1; n >= 8; n -= 1)
      if (piece.startsWith(secret.slice(-n))) {
        piece = MASK + piece.slice(n);
        break;
      }
    for (let n = secret.length - 1; n >= 8; n -= 1)
      if (piece.endsWith(secret.slice(0, n))) {
        piece = piece.slice(0, piece.length - n) + MASK;
        break;
      }
    return piece;
  };
  let seed = 7;
  const next = (n: number) => (seed = (seed * 48271) % 2147483647) % n;
  let masked = 0;
  for (let i = 0; i < 300; i += 1) {
    const cut = 1 + next(secret.length - 1);
    for (const piece of [
      `${secret.slice(cut)} and text after`,
      `text before ${secret.slice(0, cut)}`,
      `${secret.slice(cut)}\n${secret.slice(0, 1 + next(secret.length - 1))}`,
      secret.slice(cut, cut + 7),
    ]) {
      const out = m.text(piece);
      expect(out, `cut at ${cut}: ${piece.slice(0, 40)}…`).toBe(reference(piece));
      if (out.includes(MASK)) masked += 1;
    }
  }
  expect(masked, 'pieces masked by their edges').toBeGreaterThan(500);
});
