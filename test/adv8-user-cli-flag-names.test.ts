/**
 * A value typed at the CLI that the engine refuses is named by its flag: `rmapp start --id 'a b'` said
 * `Invalid runId "a b": …`, the API's field, which a new user following the README's CLI never saw.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../src/index.ts';
import { withFlagNames } from '../src/rmapp/cli/flag-names.ts';
import { runRmapp } from './helpers/processes.ts';

describe('CLI refusals name the flag', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rmapp-adv8-flags-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('rmapp start --id', async () => {
    const r = await runRmapp(['start', 'example.order', '{"orderId":"K","amountCents":3}', '--id', '..'], {
      DATABASE_URL: undefined,
      RMAPP_DATA_DIR: join(dir, 'store'),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('rmapp: --id: Invalid runId "..":');
  }, 60_000);

  it('keeps other errors as they are', () => {
    const input = new ValidationError('Invalid input for workflow "x": a: required.');
    expect(withFlagNames(input, { runId: '--id' })).toBe(input);
    const other = new Error('Invalid runId');
    expect(withFlagNames(other, { runId: '--id' })).toBe(other);
    expect((withFlagNames(new ValidationError('dedupeKey "rmapp.x" is reserved'), { dedupeKey: '--dedupe-key' }) as Error).message).toBe(
      '--dedupe-key: dedupeKey "rmapp.x" is reserved',
    );
  });
});
