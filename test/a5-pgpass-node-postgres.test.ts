/**
 * The service connects to Postgres with node-postgres (`pg`), which reads the password file through the
 * `pgpass` package: its password is the rest of the line after the fourth unescaped `:` — colons
 * included — not libpq's field that ends at the next `:`. A `.pgpass` line whose password holds an
 * unescaped `:` gave the masker and the commit check only the part before that colon (or nothing, when
 * that part was under 6 characters), while the driver logged in with the whole value.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMasker, MASK } from '../src/rmapp/masking.ts';
import { pgpassSecrets } from '../src/rmapp/pgpass-secrets.ts';
import { secretFinder } from '../src/rmapp/secret-scan.ts';
import { serviceSecretSources } from '../src/rmapp/service-secret-sources.ts';
import { loadConfig } from '../src/rmapp/config.ts';

// The parser node-postgres itself calls (pg/lib/client.js requires 'pgpass'), resolved from pg.
const pgRequire = createRequire(createRequire(import.meta.url).resolve('pg'));
const { parseLine } = pgRequire('pgpass/lib/helper.js') as { parseLine(line: string): { password: string } | null };

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function passfile(line: string): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'a5-pgpass-'));
  dirs.push(dir);
  const file = join(dir, 'pgpass');
  writeFileSync(file, `${line}\n`, { mode: 0o600 });
  return { PGPASSFILE: file };
}

describe('a .pgpass password holding an unescaped colon, as node-postgres reads it', () => {
  const cases = [
    // Before the colon: under 6 characters, so nothing at all was masked.
    { line: 'db.internal:5432:app:app:abc:Xy7#kLm9pQ2w', driver: 'abc:Xy7#kLm9pQ2w' },
    // libpq's field is empty: the line gave nothing.
    { line: 'db.internal:5432:app:app::Qw3rty-9Zx8', driver: ':Qw3rty-9Zx8' },
    // Before the colon: a secret of its own, the part after it shown in clear.
    { line: '*:*:*:app:s3cr3t-pass:word-99x', driver: 's3cr3t-pass:word-99x' },
  ];

  it.each(cases)('$line: the driver password is what node-postgres reads', ({ line, driver }) => {
    expect(parseLine(line)?.password).toBe(driver);
  });

  it.each(cases)('$line: masked whole, in clear nowhere', ({ line, driver }) => {
    const env = passfile(line);
    const masker = createMasker(pgpassSecrets(env), { minted: null });
    const shown = masker.text(`connecting with password ${driver} failed`);
    expect(shown, `pgpassSecrets gave ${JSON.stringify(pgpassSecrets(env))}`).toBe(`connecting with password ${MASK} failed`);
  });

  it.each(cases)('$line: a commit holding it is refused as the database password', async ({ line, driver }) => {
    const env = passfile(line);
    const config = await loadConfig({
      env: { ...env, GITHUB_TOKEN: `ghp_${'x'.repeat(36)}`, RMAPP_AGENT_COMMAND: 'agent', RMAPP_TEST_COMMAND: 'npm test' },
      cwd: dirs[0] as string,
      requireWebhookSecret: false,
      serves: false,
    });
    const find = secretFinder(serviceSecretSources(config, env));
    const found = find(`const password = '${driver}';\n`);
    expect(found, `serviceSecretSources gave ${JSON.stringify(serviceSecretSources(config, env).map((s) => s.secrets))}`).toMatch(
      /password file/,
    );
  });
});
