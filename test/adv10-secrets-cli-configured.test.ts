/**
 * The CLI masks what `rmapp serve` masks. A run's stored error quotes what a test or an agent printed; the
 * dashboard masks it with the configuration's secrets (the credentials, and the values of the
 * `agent.env` / `sandbox.env` variables named as secrets), and so must `rmapp runs show`, `runs list
 * --json` and a refusal that quotes the error. Masked with the service's own variables only, the CLI
 * printed a sandbox password a test had printed (an adversarial pass).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setup } from 'xstate';
import { z } from 'zod';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, step } from '../src/index.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { BIN } from './helpers/processes.ts';

/** Named in RMAPP_SANDBOX_ENV. */
const SANDBOX_PASSWORD = 'Pw-7d1e0c55a9b3f4e2';
/** Named in the config file's `agent.env` (the environment sets only `sandbox.env`, which it would replace). */
const AGENT_KEY = 'agentkey-5c2f9e81b7d4';
/** The config file's `github.webhookSecret` and `server.dashboardToken`. */
const WEBHOOK_SECRET = 'whsec-0f4d8c2a6b1e';
const DASHBOARD_TOKEN = 'dash-token-7b3e91c5d2a8f6';
const SECRETS = [SANDBOX_PASSWORD, AGENT_KEY, WEBHOOK_SECRET, DASHBOARD_TOKEN];

const printed = `tests printed SHOP_DB_PASSWORD=${SANDBOX_PASSWORD} AGENT_API_KEY=${AGENT_KEY} webhook=${WEBHOOK_SECRET} dashboard=${DASHBOARD_TOKEN}`;

const fails = step(
  async () => {
    throw Object.assign(new Error(printed), { category: 'permanent', code: 'TESTS_PRINTED', details: { output: printed } });
  },
  { retry: { maxAttempts: 1 } },
);
const machine = setup({ actors: { fails } }).createMachine({
  id: 'printsSecrets',
  initial: 'testing',
  states: { testing: { invoke: { src: 'fails', onDone: 'done' } }, done: { type: 'final' } },
});
const workflow = defineWorkflow({ name: 'adv10.printsSecrets', machine, input: z.object({}) });

const cleanups = cleanupsAfterAll();
let url = '';
let runId = '';
let cwd = '';

beforeAll(async () => {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  url = db.url;
  const engine = createEngine({ workflows: [workflow], database: { url } });
  try {
    await engine.startWorker();
    runId = await engine.start(workflow, {});
    const run = await engine.waitFor(runId, { timeoutMs: 30_000 });
    expect(run.status).toBe('failed');
    expect(run.error?.message).toContain(SANDBOX_PASSWORD);
  } finally {
    await engine.stop();
  }
  // The project's folder: its configuration names the agent's variable and holds two credentials.
  cwd = mkdtempSync(join(tmpdir(), 'rmapp-cli-secrets-'));
  cleanups.push(() => rmSync(cwd, { recursive: true, force: true }));
  writeFileSync(
    join(cwd, 'rmapp.config.json'),
    JSON.stringify({
      agent: { env: ['AGENT_API_KEY'] },
      github: { webhookSecret: WEBHOOK_SECRET },
      server: { dashboardToken: DASHBOARD_TOKEN },
    }),
  );
});

/** `rmapp <args>` in the project's folder, with the operator's environment. */
function rmapp(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: {
      ...process.env,
      DATABASE_URL: url,
      RMAPP_SANDBOX_ENV: 'SHOP_DB_PASSWORD',
      SHOP_DB_PASSWORD: SANDBOX_PASSWORD,
      AGENT_API_KEY: AGENT_KEY,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
}

describe('the CLI masks the secrets the configuration names, as the dashboard does', () => {
  it.each([
    ['runs show', () => ['runs', 'show', runId]],
    ['runs show --json', () => ['runs', 'show', runId, '--json']],
    ['runs list --json', () => ['runs', 'list', '--json']],
    // Refused, quoting the run's error: the message goes through the CLI's error path.
    ['runs retry --drop-signal', () => ['runs', 'retry', runId, '--drop-signal']],
  ])('%s', async (_name, args) => {
    const { out } = await rmapp(args());
    // The run was read: its error is there, masked.
    expect(out).toContain('SHOP_DB_PASSWORD=[REDACTED]');
    for (const secret of SECRETS) expect(out).not.toContain(secret);
  });
});
