import { InvalidArgumentError } from 'commander';
import { countOf, decimal, MAX_COUNT } from '../whole-number.ts';

/** Commander's parser for a count or a duration in ms: a positive integer, else a message naming the rule. */
export function positiveInt(value: string): number {
  const n = countOf(value);
  if (n === null) throw new InvalidArgumentError(`must be a positive integer up to ${MAX_COUNT}`);
  return n;
}

/** Commander's parser for a signal's inbox id (`runs retry --drop-signal <id>`): a positive integer JavaScript holds exactly. */
export function signalId(value: string): number {
  const n = decimal(value, 16);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError("must be a signal's id: a positive integer, as `rmapp runs show` lists it");
  return n;
}

/**
 * Commander's parser for `rmapp run --max-attempts`: the implement→test rounds a run may take, 1 to 10 as
 * the issue workflows' input allows (src/machines/issue-implementation.ts). `Number(v)` took `abc`, `0`
 * and `1.5` on: `0` was dropped for the default without a word, the others failed as the workflow's input
 * (`maxTestAttempts: … received NaN`) without naming the option.
 */
export function testAttempts(value: string): number {
  const n = decimal(value);
  if (!(n >= 1 && n <= 10)) throw new InvalidArgumentError('must be a whole number from 1 to 10 (implement→test rounds)');
  return n;
}

/** Commander's parser for a TCP port to serve on: 1 to 65535, written in decimal. */
export function portNumber(value: string): number {
  const n = decimal(value);
  if (!(n >= 1 && n <= 65_535)) throw new InvalidArgumentError('must be a port number from 1 to 65535');
  return n;
}

/** As {@link portNumber}, and 0 for any free port (what `PORT=0` means to `rmapp serve`). */
export function listenPort(value: string): number {
  const n = decimal(value);
  if (!(n >= 0 && n <= 65_535)) throw new InvalidArgumentError('must be a port number from 1 to 65535, or 0 for any free port');
  return n;
}

/** A WebSocket URL (`ws://` or `wss://`), for `--inspect`: anything else is named as the option's mistake. */
export function webSocketUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`is not a URL: give the inspector's WebSocket address, e.g. ws://localhost:8080`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:')
    throw new InvalidArgumentError(`must be a ws:// or wss:// URL (got ${url.protocol}), e.g. ws://localhost:8080`);
  return value;
}
