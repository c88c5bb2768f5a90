/**
 * The lookup gate's share of libuv's thread pool (src/rmapp/sandbox/lookup-gate.ts) follows the pool
 * libuv makes from `UV_THREADPOOL_SIZE` (its `atoi`, 0 made 1, capped at 1024), not `Number(value) || 4`.
 */
import { afterEach, expect, it } from 'vitest';
import { lookupsAtOnce } from '../src/rmapp/sandbox/lookup-gate.ts';

const before = process.env.UV_THREADPOOL_SIZE;
afterEach(() => {
  if (before === undefined) delete process.env.UV_THREADPOOL_SIZE;
  else process.env.UV_THREADPOOL_SIZE = before;
});

it.each([
  [undefined, 2],
  ['8', 4],
  ['abc', 1],
  ['', 1],
  ['1e3', 1],
  ['5000', 512],
  ['1', 1],
])('UV_THREADPOOL_SIZE=%s', (value, expected) => {
  if (value === undefined) delete process.env.UV_THREADPOOL_SIZE;
  else process.env.UV_THREADPOOL_SIZE = value;
  expect(lookupsAtOnce(), `lookups at once for UV_THREADPOOL_SIZE=${JSON.stringify(value)}`).toBe(expected);
});
