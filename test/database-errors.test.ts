/** Connection problems name the server (never its password) and the likely fix; no Postgres needed. */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { closedPort } from './helpers/ports.ts';
import { expect, it } from 'vitest';
import { createEngine, openDatabase, toErrorData } from '../src/index.ts';
import { driverConnectionString, redactUrl } from '../src/persistence/database.ts';
import { runRmapp } from './helpers/processes.ts';
import { createMasker, MASK } from '../src/rmapp/masking.ts';

/** `text` matched literally in a regular expression. */
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

it('a connection string that is not a Postgres URL says what it should look like', async () => {
  await expect(openDatabase({ url: 'notaurl' })).rejects.toThrow(
    `openDatabase's url option is not a Postgres connection string: got "notaurl". Use postgres://USER@HOST:5432/DATABASE (USER:PASSWORD@ when the server asks for a password), or unset it to use the embedded PGlite store.`,
  );
  await expect(openDatabase({ url: 'mysql://me:hunter2@db/x' })).rejects.toThrow(`got "mysql://me:${MASK}@db/x"`);
  // The CLI prints it through its masker: the advice must not look like a URL holding a password.
  const advice = await openDatabase({ url: 'notaurl' }).catch((e: unknown) => (e as Error).message);
  expect(createMasker([]).text(String(advice))).toBe(advice);
});

it('a wrong connection string is named where it was given: the option of createEngine or openDatabase, DATABASE_URL, --database-url', async () => {
  // Given to the library, it was named "DATABASE_URL (or --database-url)", which the caller had not set.
  const opened = (database: string | { url: string }) => {
    const engine = createEngine({ database, workflows: [] });
    return engine.list().finally(() => engine.stop());
  };
  await expect(opened('mysql://nope')).rejects.toThrow(
    /^createEngine's database option is not a Postgres connection string: got "mysql:\/\/nope"/,
  );
  await expect(opened({ url: 'mysql://nope' })).rejects.toThrow(/^createEngine's database\.url option is not a Postgres connection string/);
  await expect(opened('postgres://u@h/db?sslmode=bogus')).rejects.toThrow(
    /sslmode="bogus" is not an SSL mode — use one of .* in createEngine's database option\.$/,
  );
  await expect(openDatabase({ url: 'postgres://u@h/db?sslmode=bogus', urlSource: 'REPORTS_DB' })).rejects.toThrow(/ in REPORTS_DB\.$/);
  const before = process.env.DATABASE_URL;
  process.env.DATABASE_URL = 'mysql://nope';
  try {
    await expect(openDatabase()).rejects.toThrow(/^DATABASE_URL is not a Postgres connection string/);
    await expect(opened({} as { url: string })).rejects.toThrow(/^DATABASE_URL is not a Postgres connection string/);
  } finally {
    if (before === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = before;
  }
  const cli = await runRmapp(['--database-url', 'mysql://nope', 'runs', 'list'], { DATABASE_URL: undefined });
  expect(cli.stderr).toMatch(/^rmapp: --database-url is not a Postgres connection string: got "mysql:\/\/nope"/);
  const env = await runRmapp(['runs', 'list'], { DATABASE_URL: 'mysql://nope' });
  expect(env.stderr).toMatch(/^rmapp: DATABASE_URL is not a Postgres connection string: got "mysql:\/\/nope"/);
});

it.each([
  ['host=127.0.0.1 user=postgres password=S3cretPw dbname=x', `host=127.0.0.1 user=postgres password=${MASK} dbname=x`],
  ["password='S3cret Pw' host=x", `password=${MASK} host=x`],
  ['postgres:S3cretPw@127.0.0.1/x', `postgres:${MASK}@127.0.0.1/x`],
])('a password in a DATABASE_URL that is not a URL with a host is masked too: %s', async (url, shown) => {
  const err = await openDatabase({ url }).then(
    () => new Error('opened'),
    (e: unknown) => e as Error,
  );
  expect(err.message).toContain(`got "${shown}"`);
  expect(err.message).not.toMatch(/S3cret/);
});

it('a closed port names the URL with the password masked and the fix, and stays retryable', async () => {
  const port = await closedPort();
  const db = await openDatabase({ url: `postgres://rmapp:hunter2@127.0.0.1:${port}/app` });
  try {
    const err = (await db.query('select 1').catch((e: unknown) => e)) as Error & { code?: string };
    expect(err.message).toMatch(
      new RegExp(`^Cannot use Postgres at postgres://rmapp:${escapeRegExp(MASK)}@127\\.0\\.0\\.1:${port}/app: connect ECONNREFUSED`),
    );
    expect(err.message).toMatch(
      /is Postgres running there\? .*pg_ctlcluster .*host and port in openDatabase's url option, or unset openDatabase's url option to use the embedded PGlite store/,
    );
    expect(err.message).not.toMatch(/hunter2/);
    expect(err.code).toBe('ECONNREFUSED');
    expect(toErrorData(err).category).toBe('transient');
  } finally {
    await db.close();
  }
});

it('a password given as a query parameter of the URL is masked too', async () => {
  const port = await closedPort();
  const db = await openDatabase({ url: `postgres://rmapp@127.0.0.1:${port}/app?password=hunter2&sslpassword=hunter3` });
  try {
    const err = (await db.query('select 1').catch((e: unknown) => e)) as Error;
    expect(err.message).toContain(`postgres://rmapp@127.0.0.1:${port}/app?password=${MASK}&sslpassword=${MASK}`);
    expect(err.message, 'the query-string password in the error').not.toMatch(/hunter/);
    expect(db.description, 'the database description').not.toMatch(/hunter/);
  } finally {
    await db.close();
  }
});

it('the store marks a password it takes out with the marker the service masks with', () => {
  // The store wrote `***`, the service's masker `[REDACTED]`: one error read `postgres://app:***@db` in
  // the library and `postgres://app:[REDACTED]@db` through the CLI, and an operator searching the logs
  // for the marker missed half of them. Masked again by the service, the store's text is unchanged.
  for (const url of [
    'postgres://app:hunter2@db/x',
    'postgres://u@h/db?password=hunter2',
    'host=h password=hunter2 user=u',
    'postgres:hunter2@h/db',
  ]) {
    const shown = redactUrl(url);
    expect(shown, `redactUrl(${JSON.stringify(url)})`).toContain(MASK);
    expect(shown).not.toContain('***');
    expect(createMasker([]).text(shown), `${shown} masked again`).toBe(shown);
  }
});

it('a URL without a host keeps its passwords masked, whatever their escapes', () => {
  const cases: [string, string][] = [
    ['postgres:secret@host/db', `postgres:${MASK}@host/db`],
    ['postgres:///db?password=a%26secret&x=1', `postgres:///db?password=${MASK}&x=1`],
    ['postgres:///db?password=a secret\nsecret&x=1', `postgres:///db?password=${MASK}&x=1`],
    ['postgres:///db?pass%77ord=secret%zz&x=1', `postgres:///db?pass%77ord=${MASK}&x=1`],
    ['postgres:///db?password=100%secret', `postgres:///db?password=${MASK}`],
    ['postgres://u:se/cret@/db', `postgres://u:${MASK}@/db`],
    ['//u:secret@/db', `//u:${MASK}@/db`],
    ["host=h password='a secret' user=u", `host=h password=${MASK} user=u`],
    // Passwords `URL` cannot parse, or reads as a host and port: masked as their author meant them.
    ['postgres://app:Zq9?secret@db.example.com:5432/prod', `postgres://app:${MASK}@db.example.com:5432/prod`],
    ['postgres://app:2024?secret@db.example.com/prod', `postgres://app:${MASK}@db.example.com/prod`],
    ['postgres://app:2024#secret@db.example.com/prod', `postgres://app:${MASK}@db.example.com/prod`],
    ['postgres://app:2024/secret@db.example.com/prod', `postgres://app:${MASK}@db.example.com/prod`],
    ['postgres://app:se@cret@db.example.com/prod?password=secret', `postgres://app:${MASK}@db.example.com/prod?password=${MASK}`],
    // A query-string password followed by an `@` in a later value (or in its own).
    ['postgres://u@h/db?password=secret&application_name=w@h1', `postgres://u@h/db?password=${MASK}&application_name=w@h1`],
    ['postgres://h/db?password=se#c@ret', `postgres://h/db?password=${MASK}`],
    ['host=h password=a\\ secret user=u', `host=h password=${MASK} user=u`],
  ];
  for (const [url, masked] of cases) expect(redactUrl(url), `redactUrl(${JSON.stringify(url)})`).toBe(masked);
});

/** A server that answers an SSL request as a Postgres without SSL does ('N'), then drops the connection. */
async function serverWithoutSsl(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', () => socket.end('N'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

it.each([
  ['a port out of range', 'postgres://rmapp:hunter2@127.0.0.1:99999/app', /check the port \(1–65535\)/],
  ['an unclosed IPv6 bracket', 'postgres://rmapp:hunter2@[::1/app', /the brackets around an IPv6 host/],
  [
    'an SSL root certificate that does not exist',
    'postgres://rmapp:hunter2@127.0.0.1/app?sslrootcert=/nonexistent/root.crt',
    /sslrootcert names a file rmapp cannot read \(ENOENT\)/,
  ],
  ['a port that is not a number (?port=)', 'postgres://rmapp:hunter2@127.0.0.1/app?port=abc', /the port is not a number from 1 to 65535/],
  ['a port out of range (?port=)', 'postgres://rmapp:hunter2@127.0.0.1/app?port=99999', /the port is not a number from 1 to 65535/],
  // It was taken for SSL with full verification and answered "the server does not accept SSL connections".
  [
    'an sslmode that is no SSL mode',
    'postgres://rmapp:hunter2@127.0.0.1/app?sslmode=bogus',
    /sslmode="bogus" is not an SSL mode — use one of disable, prefer, require, verify-ca, verify-full, no-verify/,
  ],
  // The driver keeps the last value (a second pass: the first was checked).
  [
    'an sslmode given twice, the last no SSL mode',
    'postgres://rmapp:hunter2@127.0.0.1/app?sslmode=disable&sslmode=bogus',
    /sslmode="bogus" is not an SSL mode/,
  ],
  [
    'no-verify, which libpq compatibility does not take',
    'postgres://rmapp:hunter2@127.0.0.1/app?uselibpqcompat=true&sslmode=no-verify',
    /sslmode="no-verify" is not an SSL mode with uselibpqcompat=true — use one of disable, prefer, require, verify-ca, verify-full in/,
  ],
  [
    'an SSL root certificate that is a directory',
    'postgres://rmapp:hunter2@127.0.0.1/app?sslrootcert=/tmp',
    /sslrootcert names a file rmapp cannot read \(EISDIR\)/,
  ],
  [
    'an SSL root certificate given twice, the last missing',
    'postgres://rmapp:hunter2@127.0.0.1/app?sslrootcert=/dev/null&sslrootcert=/nonexistent/root.crt',
    /sslrootcert names a file rmapp cannot read \(ENOENT\)/,
  ],
  [
    'an SSL client key that does not exist',
    'postgres://rmapp:hunter2@127.0.0.1/app?sslkey=/nonexistent/client.key&sslcert=/dev/null',
    /sslkey names a file rmapp cannot read \(ENOENT\)/,
  ],
])('a connection string with %s is refused when the database is opened, as a set-up mistake with its fix', async (_what, url, fix) => {
  const err = (await openDatabase({ url }).then(
    () => new Error('opened'),
    (e: unknown) => e,
  )) as Error & { code?: string };
  expect(err.code, err.message).toBe('DATABASE_CONFIG');
  expect(err.message.startsWith(`Cannot use Postgres at postgres://rmapp:${MASK}@`), err.message).toBe(true);
  expect(err.message).toMatch(fix);
  expect(err.message, 'the password in the error').not.toMatch(/hunter2/);
  expect(toErrorData(err).category, 'retrying cannot fix it').toBe('validation');
});

it('sslmode=require against a server without SSL fails as a set-up mistake, and a worker start does not retry it', async () => {
  const server = await serverWithoutSsl();
  const url = `postgres://rmapp:hunter2@127.0.0.1:${server.port}/app?sslmode=verify-full`;
  const db = await openDatabase({ url });
  try {
    const err = (await db.query('select 1').catch((e: unknown) => e)) as Error & { code?: string };
    expect(err.code, err.message).toBe('DATABASE_CONFIG');
    // Said once: "… does not support SSL connections — the server does not accept SSL connections: stop …" said it twice.
    expect(err.message).toMatch(
      /: The server does not support SSL connections — stop asking for SSL \(sslmode=… or ssl=… in openDatabase's url option/,
    );
    expect(err.message.match(/SSL connections/g), 'the refusal said twice').toHaveLength(1);
    expect(err.message).not.toMatch(/hunter2/);
  } finally {
    await db.close();
  }
  // Before, this was a transient error: startWorker({ retry }) tried it again every 5 s for ever.
  const engine = createEngine({ database: url, workflows: [] });
  const retries: unknown[] = [];
  try {
    const err = (await engine.startWorker({ retry: { onRetry: (e) => retries.push(e) } }).catch((e: unknown) => e)) as Error & {
      code?: string;
    };
    expect(err.code, err.message).toBe('DATABASE_CONFIG');
    expect(retries, 'retries of a set-up mistake').toEqual([]);
  } finally {
    await engine.stop();
    await server.close();
  }
});

it.each([
  ['a "/"', 'postgres://rmapp:2024/hunter2@127.0.0.1:5432/app'],
  ['a "?"', 'postgres://rmapp:12?hunter2@127.0.0.1/app'],
  ['a "#"', 'postgres://rmapp:12#hunter2@127.0.0.1/app'],
])('a password holding %s that is not percent-encoded is refused at open, before the server can quote it back', async (_what, url) => {
  // Before, URL read the password as the host and port and the rest as the database name: the server
  // answered `database "hunter2@127.0.0.1:5432/app" does not exist`, printed on every retry, for ever.
  const err = (await openDatabase({ url }).then(
    () => new Error('opened'),
    (e: unknown) => e,
  )) as Error & { code?: string };
  expect(err.code, err.message).toBe('DATABASE_CONFIG');
  expect(err.message).toMatch(/percent-encode them \(\/ as %2F, \? as %3F, # as %23\)/);
  expect(err.message, 'the password in the error').not.toMatch(/hunter2/);
});

it('an "@" in a query value or after a user@host part is not taken for a password cut short', async () => {
  for (const url of ['postgres://u@127.0.0.1/app?application_name=w@h1', 'postgres://u:p@127.0.0.1/my@db']) {
    const db = await openDatabase({ url });
    await db.close();
  }
});

it('sslmode=prefer|require|verify-ca reach the driver as verify-full, what it makes of them, so no nine-line SECURITY WARNING precedes the one-line error', async () => {
  expect(driverConnectionString('postgres://u@h/db?application_name=x&sslmode=require#f')).toBe(
    'postgres://u@h/db?application_name=x&sslmode=verify-full#f',
  );
  expect(driverConnectionString('postgres://u@h/db?sslmode=prefer&sslmode=verify-ca')).toBe(
    'postgres://u@h/db?sslmode=verify-full&sslmode=verify-full',
  );
  for (const kept of ['postgres://u@h/db', 'postgres://u@h/db?sslmode=disable', 'postgres://u@h/db?uselibpqcompat=true&sslmode=require'])
    expect(driverConnectionString(kept), kept).toBe(kept);
  const server = await serverWithoutSsl();
  try {
    const url = `postgres://rmapp:hunter2@127.0.0.1:${server.port}/app?sslmode=require`;
    const out = await runRmapp(['runs', 'list'], { DATABASE_URL: url });
    expect(out.code).toBe(1);
    expect(out.stderr, 'the driver’s warning').not.toMatch(/SECURITY WARNING/);
    expect(out.stderr.trim().split('\n'), 'one line').toEqual([
      expect.stringMatching(
        /^rmapp: Cannot use Postgres at postgres:\/\/rmapp:\[REDACTED\]@127\.0\.0\.1:\d+\/app\?sslmode=require: The server does not support SSL/,
      ),
    ]);
  } finally {
    await server.close();
  }
});
