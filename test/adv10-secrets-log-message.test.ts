/**
 * The service's logger masks every line whatever the shape of the call. With no message, pino takes the
 * line's `msg` from the error it is given (`log.error(err)`, `log.warn({ err })`) after every hook and
 * formatter: a secret in the error's message was written as it was, beside an `err.message` that read
 * `[REDACTED]` (an adversarial pass). So were the values a message interpolates (`%o`, `%j`).
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/rmapp/logger.ts';

const SECRET = 'db-pass-6f1c9a2e7b54';

/** The lines a logger masking {@link SECRET} writes for `log`. */
async function lines(log: (logger: ReturnType<typeof createLogger>) => void): Promise<Record<string, unknown>[]> {
  let out = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      out += chunk.toString();
      done();
    },
  });
  log(createLogger({ secrets: [SECRET], destination, level: 'info' }));
  await new Promise((resolve) => setImmediate(resolve));
  return out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const failure = () =>
  new Error(`connecting to postgres://app:${SECRET}@db/prod failed`, { cause: new Error(`password ${SECRET} refused`) });

describe('a log line holds no secret, whatever the call', () => {
  it.each([
    ['an error alone', (log: ReturnType<typeof createLogger>) => log.error(failure())],
    ['{ err } without a message', (log: ReturnType<typeof createLogger>) => log.warn({ err: failure() })],
    ['{ err, runId } without a message', (log: ReturnType<typeof createLogger>) => log.error({ err: failure(), runId: 'r-1' })],
    [
      'a message interpolating an object (%o)',
      (log: ReturnType<typeof createLogger>) => log.warn('settings %o', { databasePassword2: SECRET }),
    ],
    [
      'a message interpolating JSON (%j)',
      (log: ReturnType<typeof createLogger>) => log.warn('settings %j', { note: `the password is ${SECRET}` }),
    ],
    [
      'a message interpolating an error (%s)',
      (log: ReturnType<typeof createLogger>) => log.warn({ runId: 'r-1' }, 'failed: %s', failure()),
    ],
  ])('%s', async (_name, log) => {
    const [line] = await lines(log);
    expect(JSON.stringify(line)).not.toContain(SECRET);
    // The line still says what happened: its message is there, masked.
    expect(String(line?.msg)).toContain('[REDACTED]');
  });

  it("keeps pino's message of an error: the error's own, masked", async () => {
    const [line] = await lines((log) => log.error({ err: failure() }));
    expect(line?.msg).toBe('connecting to postgres://app:[REDACTED]@db/prod failed');
  });
});
