/** Connection problems name the server (never its password) and the likely fix; no Postgres needed. */
import { closedPort } from './helpers/ports.ts';
import { expect, it } from 'vitest';
import { openDatabase, toErrorData } from '../src/index.ts';
import { redactUrl } from '../src/persistence/database.ts';

it('a DATABASE_URL that is not a Postgres URL says what it should look like', async () => {
  await expect(openDatabase({ url: 'notaurl' })).rejects.toThrow(
    'DATABASE_URL (or --database-url) is not a Postgres connection string: got "notaurl". Use postgres://USER:PASSWORD@HOST:5432/DATABASE, or unset it to use the embedded PGlite store.',
  );
  await expect(openDatabase({ url: 'mysql://me:hunter2@db/x' })).rejects.toThrow(/got "mysql:\/\/me:\*\*\*@db\/x"/);
});

it.each([
  ['host=127.0.0.1 user=postgres password=S3cretPw dbname=x', 'host=127.0.0.1 user=postgres password=*** dbname=x'],
  ["password='S3cret Pw' host=x", 'password=*** host=x'],
  ['postgres:S3cretPw@127.0.0.1/x', 'postgres:***@127.0.0.1/x'],
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
      new RegExp(`^Cannot use Postgres at postgres://rmapp:\\*\\*\\*@127\\.0\\.0\\.1:${port}/app: connect ECONNREFUSED`),
    );
    expect(err.message).toMatch(/is Postgres running there\? .*pg_ctlcluster .*unset DATABASE_URL to use the embedded PGlite store/);
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
    expect(err.message).toContain(`postgres://rmapp@127.0.0.1:${port}/app?password=***&sslpassword=***`);
    expect(err.message, 'the query-string password in the error').not.toMatch(/hunter/);
    expect(db.description, 'the database description').not.toMatch(/hunter/);
  } finally {
    await db.close();
  }
});

it('a URL without a host keeps its passwords masked, whatever their escapes', () => {
  const cases: [string, string][] = [
    ['postgres:secret@host/db', 'postgres:***@host/db'],
    ['postgres:///db?password=a%26secret&x=1', 'postgres:///db?password=***&x=1'],
    ['postgres:///db?password=a secret\nsecret&x=1', 'postgres:///db?password=***&x=1'],
    ['postgres:///db?pass%77ord=secret%zz&x=1', 'postgres:///db?pass%77ord=***&x=1'],
    ['postgres:///db?password=100%secret', 'postgres:///db?password=***'],
    ['postgres://u:se/cret@/db', 'postgres://u:***@/db'],
    ['//u:secret@/db', '//u:***@/db'],
    ["host=h password='a secret' user=u", 'host=h password=*** user=u'],
    // Passwords `URL` cannot parse, or reads as a host and port: masked as their author meant them.
    ['postgres://app:Zq9?secret@db.example.com:5432/prod', 'postgres://app:***@db.example.com:5432/prod'],
    ['postgres://app:2024?secret@db.example.com/prod', 'postgres://app:***@db.example.com/prod'],
    ['postgres://app:2024#secret@db.example.com/prod', 'postgres://app:***@db.example.com/prod'],
    ['postgres://app:2024/secret@db.example.com/prod', 'postgres://app:***@db.example.com/prod'],
    ['postgres://app:se@cret@db.example.com/prod?password=secret', 'postgres://app:***@db.example.com/prod?password=***'],
    // A query-string password followed by an `@` in a later value (or in its own).
    ['postgres://u@h/db?password=secret&application_name=w@h1', 'postgres://u@h/db?password=***&application_name=w@h1'],
    ['postgres://h/db?password=se#c@ret', 'postgres://h/db?password=***'],
    ['host=h password=a\\ secret user=u', 'host=h password=*** user=u'],
  ];
  for (const [url, masked] of cases) expect(redactUrl(url), `redactUrl(${JSON.stringify(url)})`).toBe(masked);
});
