/**
 * The CLI and the API's error bodies mask a secret a caller pasted into a run id: the error quotes the
 * id cut at 200 characters and `…` (src/state_machine/errors.ts), and JSON-escapes a control inside it
 * (`\u0007`). The cut left the secret's first 8 to 11 characters in clear, the escape its letters and
 * digits with `u0007` between them (test/h-mask-cut-and-controls.test.ts for the masker alone).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createEngine } from '../src/index.ts';
import { MASK } from '../src/rmapp/masking.ts';
import { startApiServer } from './helpers/api-server.ts';
import { runRmapp, TEST_WORKFLOWS } from './helpers/processes.ts';

const SECRET = 'Q7mZp3Rt9XwLk2Vb8NcY4HdJ';
/** Run ids that quote the secret cut after 9 characters, and with a BEL inside. */
const CUT_ID = `${'r'.repeat(191)}${SECRET}`;
const BEL_ID = `run-${SECRET.slice(0, 8)}\x07${SECRET.slice(8, 16)}\x07${SECRET.slice(16)}`;

/** What of the secret `out` shows: its head, or its letters and digits once escapes are read past. */
function shown(out: string): string | null {
  if (out.includes(SECRET.slice(0, 8))) return `its head in ${JSON.stringify(out)}`;
  const letters = out.replace(/\\x[0-9a-f]{2}|\\u[0-9a-f]{4}/gi, '').replace(/[^A-Za-z0-9]/g, '');
  return letters.includes(SECRET) ? `its letters and digits in ${JSON.stringify(out)}` : null;
}

const dataDir = mkdtempSync(join(tmpdir(), 'h-mask-outputs-'));
const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dataDir, { recursive: true, force: true })];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

it('rmapp runs show masks the secret in a run id it cannot find', { timeout: 120_000 }, async () => {
  const env = { RMAPP_DATA_DIR: dataDir, DATABASE_URL: undefined, GITHUB_WEBHOOK_SECRET: SECRET };
  // A store to look in: `runs show` makes none.
  const migrated = await runRmapp(['migrate'], env);
  expect(migrated.code, migrated.stderr).toBe(0);
  for (const id of [CUT_ID, BEL_ID]) {
    const out = await runRmapp(['--workflows', TEST_WORKFLOWS, 'runs', 'show', id], env);
    const printed = `${out.stdout}${out.stderr}`;
    expect(out.code, printed).not.toBe(0);
    expect(printed, 'the error was printed').toContain('No run with id');
    expect(shown(printed), JSON.stringify(id)).toBe(null);
    expect(printed).toContain(MASK);
  }
});

it('the API masks the secret in the 404 answering a run id it cannot find', { timeout: 60_000 }, async () => {
  const engine = createEngine({ workflows: [], database: { url: '', dataDir: 'memory://' } });
  cleanups.push(() => engine.stop());
  const server = await startApiServer(engine, undefined, [SECRET]);
  cleanups.push(() => server.close());
  for (const id of [CUT_ID, BEL_ID]) {
    const res = await fetch(`${server.url}/api/runs/${encodeURIComponent(id)}`);
    const body = await res.text();
    expect(res.status, body).toBe(404);
    expect(body, 'the error was answered').toContain('No run with id');
    expect(shown(body), JSON.stringify(id)).toBe(null);
    expect(body).toContain(MASK);
  }
});
