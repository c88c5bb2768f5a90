/**
 * PGPASSWORD, the password Postgres clients take when the database URL has none, is the service's
 * database password as much as DATABASE_URL's: config.ts `secretsOf` now gives it, so it is masked in
 * the progress comments, the API (which the dashboard reads), the logs and the inspector (all made from
 * `secretsOf`). And `--database-url`'s password (a flag of `rmapp worker` and `rmapp run`, not the
 * environment) is masked in what the service writes to GitHub (service.ts `githubRuntime`'s
 * `databaseUrl`): the GitHub-write masker was made from the configuration alone.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Octokit } from '@octokit/rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, secretsOf } from '../src/rmapp/config.ts';
import type { GitHubOctokit } from '../src/rmapp/github/client.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { githubRuntime } from '../src/rmapp/service.ts';
import { until } from './helpers/processes.ts';
import { apiText, createServiceWorld, implementIssue, type ServiceWorld } from './helpers/service-world.ts';

const PG_PASSWORD = 'h1-PGPASSWORD-value-7c3e9a';
const FLAG_PASSWORD = 'h1-flag-db-password-51d2';
const DASHBOARD = 'h1-dashboard-token-0123456789ab';

describe('PGPASSWORD through the running service', () => {
  let w: ServiceWorld;
  const logs: string[] = [];
  const saved = process.env.PGPASSWORD;
  beforeAll(async () => {
    process.env.PGPASSWORD = PG_PASSWORD;
    const stream = new PassThrough();
    stream.on('data', (d: Buffer) => logs.push(d.toString('utf8')));
    // The agent prints its prompt (the issue, where someone pasted the password) and gives up: the run's
    // failure quotes it in the progress comment, the API and the log.
    const agent = `p=$(cat); printf '%s\\n' "$p" | grep 'Our database' | sed 's/^/I was asked: /' >&2; exit 3`;
    w = await createServiceWorld(
      { RMAPP_AGENT_COMMAND: JSON.stringify(['sh', '-c', agent]), RMAPP_MAX_TEST_ATTEMPTS: '1', RMAPP_DASHBOARD_TOKEN: DASHBOARD },
      { logTo: stream },
    );
    w.world.emulator.permissions.set('acme/widgets:alice', 'write');
  });
  afterAll(async () => {
    await w?.stop();
    if (saved === undefined) delete process.env.PGPASSWORD;
    else process.env.PGPASSWORD = saved;
  });

  it('an agent that prints it: masked in the comments, the API and the logs', async () => {
    const runId = await implementIssue(w, 51, `Our database password is ${PG_PASSWORD}, please use it.`);
    const comments = () =>
      [...w.world.emulator.comments.values()]
        .flat()
        .map((c) => c.body)
        .join('\n');
    await until(() => /exited with 3/.test(comments()), 30_000, 'the failure in the progress comment');
    const api = [
      await apiText(w, `/api/runs/${encodeURIComponent(runId)}`, DASHBOARD),
      await apiText(w, '/api/runs?limit=50', DASHBOARD),
    ].join('\n');
    // What was printed arrived (otherwise this proves nothing).
    expect(comments()).toContain('I was asked');
    expect(api).toContain('I was asked');
    const surfaces = { 'GitHub comments': comments(), 'the JSON API': api, logs: logs.join('') };
    for (const [where, text] of Object.entries(surfaces)) expect(text.includes(PG_PASSWORD), `${where} hold PGPASSWORD`).toBe(false);
    expect(comments()).toContain('Our database password is [REDACTED]');
  });
});

describe('which PGPASSWORD secretsOf gives', () => {
  it('the value, unless it is its own user (PGUSER or the database URL’s), as a URL’s password is', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'rmapp-h1-pg-'));
    const env = { GITHUB_TOKEN: 'ghp_h1PgTest0123456789abcdefABCDEFghijklm', RMAPP_AGENT_COMMAND: 'a', RMAPP_TEST_COMMAND: 'b' };
    const config = await loadConfig({
      env: { ...env, DATABASE_URL: 'postgres://app@db/x' },
      cwd: tmp,
      requireWebhookSecret: false,
      serves: false,
    });
    expect(secretsOf(config, { PGPASSWORD: PG_PASSWORD })).toContain(PG_PASSWORD);
    expect(secretsOf(config, { PGPASSWORD: 'app' }), 'the URL’s user').not.toContain('app');
    expect(secretsOf(config, { PGPASSWORD: 'postgres', PGUSER: 'postgres' }), 'PGUSER').not.toContain('postgres');
    expect(secretsOf(config, { PGPASSWORD: 'postgres', PGUSER: 'app' }), 'another user’s').toContain('postgres');
  });
});

describe("--database-url's password in what the service writes to GitHub", () => {
  it('a comment quoting it is masked when githubRuntime is given the URL (rmapp worker, rmapp run)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'rmapp-h1-flag-'));
    const config = await loadConfig({
      env: { GITHUB_TOKEN: 'ghp_h1FlagTest0123456789abcdefABCDEFghij', RMAPP_AGENT_COMMAND: 'a', RMAPP_TEST_COMMAND: 'b' },
      cwd: tmp,
      requireWebhookSecret: false,
      serves: false,
    });
    const bodies: string[] = [];
    const make = () =>
      new Octokit({
        request: {
          fetch: async (_url: string, init: { body?: string }) => {
            bodies.push(String(init.body ?? ''));
            return new Response('{"id":1}', { status: 201, headers: { 'content-type': 'application/json' } });
          },
        },
      }) as unknown as GitHubOctokit;
    const url = `postgres://worker:${FLAG_PASSWORD}@db.internal:5432/rmapp`;
    const comment = { owner: 'o', repo: 'r', issue_number: 1, body: `connect failed for ${url}; password ${FLAG_PASSWORD}` };
    const log = createLogger({ level: 'silent', secrets: secretsOf(config) });
    await githubRuntime(config, { github: make(), log, databaseUrl: url }).github.rest.issues.createComment(comment);
    expect(bodies).toHaveLength(1);
    expect(bodies[0], 'the flag’s password reached GitHub').not.toContain(FLAG_PASSWORD);
    expect(bodies[0]).toContain('password [REDACTED]');
    // Without the URL (what `rmapp worker` passed before), the bare password went out as it was.
    await githubRuntime(config, { github: make(), log }).github.rest.issues.createComment(comment);
    expect(bodies[1], 'the control: unmasked without the URL').toContain(`password ${FLAG_PASSWORD}`);
  });
});
