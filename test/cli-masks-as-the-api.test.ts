/**
 * What `rmapp runs show` and `rmapp runs list` print of a run is masked as the API serves it: the API
 * masks objects with the masker's `value` (secret-named keys' values replaced, src/rmapp/masking.ts),
 * and the CLI, reading the same database, printed those values in the clear.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createMasker, MASK } from '../src/rmapp/masking.ts';
import { runRmapp, TEST_WORKFLOWS } from './helpers/processes.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'rmapp-cli-masks-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const env = { RMAPP_DATA_DIR: dataDir, DATABASE_URL: undefined };
const rmapp = (...args: string[]) => runRmapp(['--workflows', TEST_WORKFLOWS, ...args], env);

it('runs show --json and runs list --json mask secret-named keys as the API does', { timeout: 120_000 }, async () => {
  const input = { apiKey: 'plain-value-42', password: 'hunter2hunter2', nested: { githubToken: 'not-a-token-shape' }, note: 'fine' };
  const started = await rmapp('start', 'test.fails', JSON.stringify(input));
  expect(started.code, started.stderr).toBe(0);
  const id = started.stdout.trim();
  // What the API serves of this input (api.ts: `masker.value(body)`).
  const served = createMasker([]).value(input);
  expect(served).toEqual({ apiKey: MASK, password: MASK, nested: { githubToken: MASK }, note: 'fine' });

  const show = await rmapp('runs', 'show', id, '--json');
  expect(show.code, show.stderr).toBe(0);
  expect((JSON.parse(show.stdout) as { input: unknown }).input).toEqual(served);

  const list = await rmapp('runs', 'list', '--json');
  expect(list.code, list.stderr).toBe(0);
  expect((JSON.parse(list.stdout) as { id: string; input: unknown }[]).find((r) => r.id === id)?.input).toEqual(served);

  for (const out of [show.stdout, list.stdout])
    for (const value of ['plain-value-42', 'hunter2hunter2', 'not-a-token-shape']) expect(out).not.toContain(value);
});
