/**
 * The environment of a sandboxed command: built from an explicit allowlist, never inherited. The
 * service's own secrets are refused even when an operator lists them, so a typo in `sandbox.env`
 * cannot hand `GITHUB_TOKEN` to a repository's tests.
 */

/** Variables the service itself holds secrets in: never passed into a sandbox. */
export const SERVICE_SECRET_VARIABLES = [
  'GITHUB_TOKEN',
  'GITHUB_PRIVATE_KEY',
  'GITHUB_PRIVATE_KEY_PATH',
  'GITHUB_WEBHOOK_SECRET',
  'RMAPP_DASHBOARD_TOKEN',
  'DATABASE_URL',
  'PGPASSWORD',
  // The password file Postgres clients read (its passwords are the service's: pgpass-secrets.ts), and
  // the OpenTelemetry exporters' headers (a collector's API key: otlp-header-secrets.ts).
  'PGPASSFILE',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
  'OTEL_EXPORTER_OTLP_METRICS_HEADERS',
  'OTEL_EXPORTER_OTLP_LOGS_HEADERS',
] as const;

/** What every sandboxed command sees, whatever the host has. */
const BASE = {
  PATH: '/usr/local/bin:/usr/bin:/bin',
  HOME: '/tmp/home',
  TMPDIR: '/tmp',
  LANG: 'C.UTF-8',
  TERM: 'dumb',
  CI: 'true',
} as const;

/** Host variables passed through when set (harmless facts about the host). */
const PASSED = ['TZ', 'LC_ALL'] as const;

/** True for a name the sandbox never receives. */
export function isServiceSecret(name: string): boolean {
  return (SERVICE_SECRET_VARIABLES as readonly string[]).includes(name);
}

/**
 * The environment for one command: the base, plus `names` taken from `from` (the service's
 * environment) when set. Throws when `names` holds a service secret.
 */
export function sandboxEnv(
  names: readonly string[],
  from: NodeJS.ProcessEnv = process.env,
  extra: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = { ...BASE, ...extra };
  for (const name of [...PASSED, ...names]) {
    if (isServiceSecret(name)) throw new Error(`The sandbox never receives ${name}: remove it from sandbox.env / agent.env.`);
    const value = from[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}
