/**
 * A child logger's bindings are masked as the fields of a log call are. pino writes `log.child({...})`'s
 * bindings into every line of the child as they were given: neither the `log` formatter nor the
 * `logMethod` hook sees them, and `formatters.bindings` is called once, for the root's `base` (pino's
 * docs/api.md, "formatters" › "bindings"). A secret in a child's bindings (a delivery's URL with a token,
 * a `token` field) reached the log line in clear.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/rmapp/logger.ts';
import { MASK } from '../src/rmapp/masking.ts';

const SECRET = 'whsec-5b9e1c7a3d20f4e8';

/** The lines a logger masking {@link SECRET} writes for `log`, as text. */
async function written(log: (logger: ReturnType<typeof createLogger>) => void): Promise<string> {
  let out = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      out += chunk.toString();
      done();
    },
  });
  log(createLogger({ secrets: [SECRET], destination, level: 'info' }));
  await new Promise((resolve) => setImmediate(resolve));
  return out;
}

describe("a child logger's bindings hold no secret", () => {
  it.each([
    ['a configured secret in a value', (log: ReturnType<typeof createLogger>) => log.child({ note: `secret is ${SECRET}` }).info('hello')],
    ['a secret-named key', (log: ReturnType<typeof createLogger>) => log.child({ apiToken: 'plain-value-of-a-token' }).info('hello')],
    [
      'a URL with a password',
      (log: ReturnType<typeof createLogger>) => log.child({ target: 'postgres://app:hunter2hunter2@db/prod' }).info('hello'),
    ],
    ['a nested object', (log: ReturnType<typeof createLogger>) => log.child({ request: { body: `x ${SECRET} y` } }).info('hello')],
    ["a child's child", (log: ReturnType<typeof createLogger>) => log.child({ a: 1 }).child({ b: SECRET }).warn('hello')],
    [
      'setBindings',
      (log: ReturnType<typeof createLogger>) => {
        const child = log.child({ a: 1 });
        child.setBindings({ later: SECRET });
        child.info('hello');
      },
    ],
    [
      "a child's message prefix",
      (log: ReturnType<typeof createLogger>) => log.child({ a: 1 }, { msgPrefix: `[${SECRET}] ` }).info('hello'),
    ],
  ])('%s', async (_name, log) => {
    const out = await written(log);
    expect(out, 'no line was written').toContain('hello');
    for (const leaked of [SECRET, 'plain-value-of-a-token', 'hunter2hunter2'])
      expect(out, `a log line holds ${leaked}`).not.toContain(leaked);
  });

  it('the bindings are still written, masked, and the rest of them readable', async () => {
    const out = await written((log) =>
      log.child({ delivery: 'd-42', note: `secret is ${SECRET}`, apiToken: 'plain-value-of-a-token' }).info('hi'),
    );
    const line = JSON.parse(out.trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ delivery: 'd-42', note: `secret is ${MASK}`, apiToken: MASK, msg: 'hi', service: 'rmapp' });
  });

  it('a child given its own log formatter still masks its lines', async () => {
    const out = await written((log) =>
      log.child({ a: 1 }, { formatters: { log: (o: object) => ({ ...o, extra: `x ${SECRET}` }) } }).info({ f: SECRET }, 'hi'),
    );
    expect(out).toContain('"extra"');
    expect(out, 'a line holds the secret').not.toContain(SECRET);
  });
});
