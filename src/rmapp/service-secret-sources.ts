/**
 * The service's own credentials as a commit check reads them (secret-scan.ts `secretFinder`): its
 * GitHub token, its GitHub App's private key, its webhook secret, its dashboard token and its database
 * password. The sandbox is never given any of them (sandbox/env.ts `SERVICE_SECRET_VARIABLES`), so an
 * agent that holds one came by it some way the sandbox did not close — a token quoted in an issue, a
 * workspace file, a kernel hole — and a commit holding one would put it on a branch anyone who can read
 * the repository reads. Only the sandbox's variables refused a commit before: a commit adding the
 * service's token was pushed as it was.
 */
import type { RmappConfig, SecretSource } from './config.ts';
import { connectionStringSecrets, isWeakSecret, WEAK_SECRET_CHARS } from './masking.ts';
import { otlpHeaderSecrets } from './otlp-header-secrets.ts';
import { pgpassSecrets } from './pgpass-secrets.ts';
import { pgPassword, privateKeySecrets } from './secret-variables.ts';

/** What every label of a service credential starts with: the refusal says who holds it and what to do. */
export const SERVICE_SECRET_LABEL = "the service's own";

/** Shorter than this, a service credential refuses no commit (it is still masked from 6 characters on, as a whole token). */
export const MIN_REFUSING_CHARS = WEAK_SECRET_CHARS;

/**
 * Whether a service credential refuses a commit that holds it. The check finds a value inside any
 * text (secret-scan.ts), so a short or dictionary value would refuse every change that says the word:
 * a development database's `postgres://app:postgres@…` refused every commit naming Postgres, a
 * `password` every form. Such a value — a weak secret (masking.ts `isWeakSecret`) — refuses nothing, and
 * the masker still masks it wherever the service writes it as a whole token (from 6 characters on, as for every secret):
 * - under {@link MIN_REFUSING_CHARS} characters (the masker's own floor for a cut piece of a secret
 *   and for a base64 core: shorter strings match unrelated text), and
 * - letters only and under 12 characters (a word: `postgres`, `Password`, `changeme`), or digits only
 *   and under 12 (a number: `12345678` refused every commit adding a test's phone number of that value).
 * A token, an App key, a generated webhook secret or a password with a digit or a sign refuses. The
 * sandbox's own variables keep their rule (config.ts `sandboxSecretSources`: 6 characters, as the masker):
 * an operator chooses what goes there, and can pass a weak test password some other way (a weak one
 * refuses a commit where it stands as a whole token, as it is masked).
 *
 * @example
 * refusesCommits('postgres'); // false: a word
 * refusesCommits('s3cr3t'); // false: under 8 characters
 * refusesCommits('12345678'); // false: a number
 * refusesCommits('hunter22'); // true
 */
export function refusesCommits(value: string): boolean {
  return !isWeakSecret(value);
}

/**
 * The service's own credentials, each with a label for a refused commit (what it is and which setting
 * holds it, never the value): `github.token`, the App's private key (as written, as Octokit reads it, and its base64 body alone:
 * secret-variables.ts `privateKeySecrets`), the
 * webhook secret, the dashboard token, and the database password — of `databaseUrl` (`DATABASE_URL`), of
 * `databaseUrl` given here when the process uses another (`--database-url`), and `PGPASSWORD`, which
 * Postgres clients read when a URL has no password (unless it is its own user: secret-variables.ts
 * `pgPassword`), every password of the password file libpq reads (`PGPASSFILE`, `~/.pgpass`:
 * pgpass-secrets.ts), and the OpenTelemetry exporters' header values (otlp-header-secrets.ts). Values
 * that would refuse ordinary changes are left
 * out ({@link refusesCommits}). An App's installation tokens are minted as the service runs: the
 * workspace checks the one its remote uses when it commits (workspace.ts `refuseSecrets`).
 *
 * @example
 * const find = secretFinder([...sandboxSecretSources(config), ...serviceSecretSources(config)]);
 */
export function serviceSecretSources(config: RmappConfig, env: NodeJS.ProcessEnv = process.env, databaseUrl?: string): SecretSource[] {
  const gh = config.github;
  const sources: SecretSource[] = [
    { label: `${SERVICE_SECRET_LABEL} GitHub token (github.token, GITHUB_TOKEN)`, secrets: [gh.token ?? ''] },
    {
      label: `${SERVICE_SECRET_LABEL} GitHub App private key (github.privateKey, GITHUB_PRIVATE_KEY or the file github.privateKeyPath names)`,
      secrets: privateKeySecrets(gh.privateKey),
    },
    { label: `${SERVICE_SECRET_LABEL} webhook secret (github.webhookSecret, GITHUB_WEBHOOK_SECRET)`, secrets: [gh.webhookSecret ?? ''] },
    {
      label: `${SERVICE_SECRET_LABEL} dashboard token (server.dashboardToken, RMAPP_DASHBOARD_TOKEN)`,
      secrets: [config.server.dashboardToken ?? ''],
    },
    {
      label: `${SERVICE_SECRET_LABEL} database password (of databaseUrl, DATABASE_URL or --database-url)`,
      secrets: [...connectionStringSecrets(config.databaseUrl), ...connectionStringSecrets(databaseUrl)],
    },
    {
      label: `${SERVICE_SECRET_LABEL} database password (PGPASSWORD)`,
      secrets: [pgPassword(env, databaseUrl ?? config.databaseUrl) ?? ''],
    },
    {
      label: `${SERVICE_SECRET_LABEL} database password (in the password file PGPASSFILE or ~/.pgpass names)`,
      secrets: pgpassSecrets(env),
    },
    {
      label: `${SERVICE_SECRET_LABEL} OpenTelemetry exporter header (OTEL_EXPORTER_OTLP_HEADERS or OTEL_EXPORTER_OTLP_<signal>_HEADERS)`,
      secrets: otlpHeaderSecrets(env),
    },
  ];
  return sources
    .map((s) => ({ label: s.label, secrets: [...new Set(s.secrets.filter(refusesCommits))] }))
    .filter((s) => s.secrets.length > 0);
}
