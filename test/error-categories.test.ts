/**
 * Error categorization in one place: each class of failure lands in its category. Postgres errors are
 * real ones from the machine's server, raw (postgres.js) and wrapped by Drizzle (`err.cause.code`).
 */
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentError, openDatabase, TestFailureError, toErrorData, type Database } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

/** The shape of Octokit's RequestError: a status and the response headers. */
function httpError(status: number, headers: Record<string, string> = {}, message = `HTTP ${status}`) {
  return Object.assign(new Error(message), {
    name: 'HttpError',
    status,
    response: { status, headers, url: 'https://api.github.com/x', data: {} },
  });
}

describe('HTTP (Octokit) errors by status', () => {
  it.each([
    [401, {}, 'permanent', 'auth'],
    [403, {}, 'permanent', 'auth'],
    [404, {}, 'permanent', 'not_found'],
    [409, {}, 'permanent', 'client_error'],
    [422, {}, 'validation', undefined],
    [408, {}, 'timeout', undefined],
    [500, {}, 'transient', undefined],
    [502, {}, 'transient', undefined],
    [503, {}, 'transient', undefined],
  ] as const)('%i → %s', (status, headers, category, reason) => {
    const data = toErrorData(httpError(status, headers));
    expect(data.category).toBe(category);
    expect(data.code).toBe(`HTTP_${status}`);
    if (reason) expect(data.details).toMatchObject({ reason });
  });

  it('429 with retry-after is rate_limited for that long', () => {
    expect(toErrorData(httpError(429, { 'retry-after': '30' }))).toMatchObject({ category: 'rate_limited', retryAfterMs: 30_000 });
  });

  it("GitHub's secondary rate limit (403 + retry-after) is rate_limited, not auth", () => {
    expect(toErrorData(httpError(403, { 'retry-after': '60' }, 'You have exceeded a secondary rate limit'))).toMatchObject({
      category: 'rate_limited',
      retryAfterMs: 60_000,
    });
  });

  it('an exhausted primary rate limit (403, x-ratelimit-remaining 0) waits until the reset', () => {
    const reset = Math.floor(Date.now() / 1000) + 120;
    const data = toErrorData(httpError(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) }));
    expect(data.category).toBe('rate_limited');
    expect(data.retryAfterMs).toBeGreaterThan(100_000);
    expect(data.retryAfterMs).toBeLessThanOrEqual(120_000);
  });
});

describe('Postgres errors by SQLSTATE, raw and through Drizzle', () => {
  let testDb: TestDatabase;
  let db: Database;
  let raw: postgres.Sql;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    db = await openDatabase({ url: testDb.url });
    raw = postgres(testDb.url, { max: 1, onnotice: () => {} });
    await raw`create table t (id int primary key)`;
    await raw`insert into t values (1)`;
  });
  afterAll(async () => {
    await raw.end();
    await db.close();
    await testDb.drop();
  });

  const raise = (code: string) => `do $$ begin raise exception 'boom' using errcode = '${code}'; end $$`;

  it('serialization failure (40001) and deadlock (40P01) are transient', async () => {
    for (const code of ['40001', '40P01']) {
      const err = await raw.unsafe(raise(code)).catch((e: unknown) => e);
      expect(toErrorData(err)).toMatchObject({ category: 'transient', code: `PG_${code}` });
    }
  });

  it('a SQLSTATE whose class holds a letter is one too; an errno code of five capitals is not', async () => {
    // 3D000 (no such database) was taken for a network code and retried: `rmapp worker` waited for ever.
    for (const code of ['3D000', 'P0001', '0A000', '2D000']) {
      const err = await raw.unsafe(raise(code)).catch((e: unknown) => e);
      expect(toErrorData(err), code).toMatchObject({ category: 'permanent', code: `PG_${code}` });
    }
    expect(toErrorData(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))).toMatchObject({ category: 'transient', code: 'EPIPE' });
    expect(toErrorData(Object.assign(new Error('spawn E2BIG'), { code: 'E2BIG' })).code, 'an errno with a digit').toBe('E2BIG');
  });

  it('a unique violation (23505) is permanent, also when Drizzle wraps it', async () => {
    const direct = await raw`insert into t values (1)`.catch((e: unknown) => e);
    expect(toErrorData(direct)).toMatchObject({ category: 'permanent', code: 'PG_23505' });
    // rmapp runs no query through Drizzle (src/persistence/database.ts); an embedding app may, on the same database.
    const pool = new pg.Pool({ connectionString: testDb.url, max: 1 });
    const wrapped = await drizzle(pool)
      .execute(sql`insert into t values (1)`)
      .catch((e: unknown) => e);
    await pool.end();
    expect((wrapped as { cause?: { code?: string } }).cause?.code).toBe('23505');
    expect(toErrorData(wrapped)).toMatchObject({ category: 'permanent', code: 'PG_23505' });
  });

  it('a lost connection is transient', async () => {
    const closed = postgres('postgres://postgres@127.0.0.1:1/none', { max: 1, connect_timeout: 2 });
    const err = await closed`select 1`.catch((e: unknown) => e);
    await closed.end();
    expect(toErrorData(err).category).toBe('transient');
  });
});

describe('the other classes', () => {
  it('agent and test failures have their own categories', () => {
    expect(toErrorData(new AgentError('the agent produced no diff'))).toMatchObject({ category: 'agent', code: 'AGENT_FAILED' });
    expect(toErrorData(new TestFailureError('3 tests failed', { output: '…' }))).toMatchObject({
      category: 'test_failure',
      code: 'TESTS_FAILED',
    });
  });

  it('timeouts and cancellation', async () => {
    const timeout = await new Promise((_, reject) =>
      AbortSignal.timeout(1).addEventListener('abort', function (this: AbortSignal) {
        reject(this.reason);
      }),
    ).catch((e: unknown) => e);
    expect(toErrorData(timeout).category).toBe('timeout');
    const controller = new AbortController();
    controller.abort();
    expect(toErrorData(controller.signal.reason).category).toBe('cancelled');
  });

  it('programmer errors are permanent; network errors and unknown errors are transient', () => {
    expect(toErrorData(new TypeError('x is undefined')).category).toBe('permanent');
    expect(toErrorData(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })).category).toBe('transient');
    expect(toErrorData(new Error('something odd')).category).toBe('transient');
    expect(toErrorData('a string').category).toBe('permanent');
  });
});
