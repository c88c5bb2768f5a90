/**
 * Where each setting of the service's configuration is set (its environment variable), how to fix a wrong
 * one, and the problem line that says both. A value is named by where it came from — the configuration
 * file, the environment variable or the command-line flag — so that the line sends the user to the place
 * that holds it: a bad `server.port` in `rmapp.config.json` was reported as `server.port (env PORT) … —
 * set PORT`, never naming the file.
 */

/** Environment variable of each setting (documented in the README). */
export const ENV = {
  databaseUrl: 'DATABASE_URL',
  'github.token': 'GITHUB_TOKEN',
  'github.appId': 'GITHUB_APP_ID',
  'github.privateKey': 'GITHUB_PRIVATE_KEY',
  'github.privateKeyPath': 'GITHUB_PRIVATE_KEY_PATH',
  'github.apiUrl': 'GITHUB_API_URL',
  'github.webhookSecret': 'GITHUB_WEBHOOK_SECRET',
  'github.gitUrl': 'RMAPP_GIT_URL',
  botName: 'RMAPP_BOT_NAME',
  'agent.kind': 'RMAPP_AGENT_KIND',
  'agent.command': 'RMAPP_AGENT_COMMAND',
  'agent.timeout': 'RMAPP_AGENT_TIMEOUT',
  'agent.budget.maxTurns': 'RMAPP_AGENT_MAX_TURNS',
  'agent.budget.maxTokens': 'RMAPP_AGENT_MAX_TOKENS',
  'agent.budget.maxCostUsd': 'RMAPP_AGENT_MAX_COST_USD',
  'agent.budget.maxTime': 'RMAPP_AGENT_MAX_TIME',
  'tests.command': 'RMAPP_TEST_COMMAND',
  'tests.timeout': 'RMAPP_TEST_TIMEOUT',
  workspaceRoot: 'RMAPP_WORKSPACE_ROOT',
  keepFailedWorkspaces: 'RMAPP_KEEP_FAILED_WORKSPACES',
  'server.host': 'RMAPP_HOST',
  'server.port': 'PORT',
  'server.publicUrl': 'RMAPP_PUBLIC_URL',
  'server.dashboardToken': 'RMAPP_DASHBOARD_TOKEN',
  'server.allowedHosts': 'RMAPP_ALLOWED_HOSTS',
  labels: 'RMAPP_LABELS',
  maxTestAttempts: 'RMAPP_MAX_TEST_ATTEMPTS',
  docsRunTests: 'RMAPP_DOCS_RUN_TESTS',
  concurrency: 'RMAPP_CONCURRENCY',
  reviewAnyBranch: 'RMAPP_REVIEW_ANY_BRANCH',
  'agent.env': 'RMAPP_AGENT_ENV',
  'agent.network': 'RMAPP_AGENT_NETWORK',
  'sandbox.driver': 'RMAPP_SANDBOX',
  'sandbox.image': 'RMAPP_SANDBOX_IMAGE',
  'sandbox.runtime': 'RMAPP_SANDBOX_RUNTIME',
  'sandbox.network': 'RMAPP_SANDBOX_NETWORK',
  'sandbox.allowPrivateNetwork': 'RMAPP_SANDBOX_ALLOW_PRIVATE_NETWORK',
  'sandbox.env': 'RMAPP_SANDBOX_ENV',
  'sandbox.readOnlyPaths': 'RMAPP_SANDBOX_PATHS',
  'sandbox.memory': 'RMAPP_SANDBOX_MEMORY',
  'sandbox.processes': 'RMAPP_SANDBOX_PROCESSES',
} as const;

type Key = keyof typeof ENV;

/** How to fix each setting, shown with its error. */
const FIX: Partial<Record<Key, string>> = {
  'github.token': 'set GITHUB_TOKEN to a token with repo scope, or use GitHub App credentials (GITHUB_APP_ID and GITHUB_PRIVATE_KEY_PATH)',
  'github.appId': "set GITHUB_APP_ID to the numeric App ID from the GitHub App's settings page",
  'github.privateKey': "set GITHUB_PRIVATE_KEY_PATH to the .pem file generated on the GitHub App's settings page",
  'github.webhookSecret': "set GITHUB_WEBHOOK_SECRET to the webhook secret entered in the GitHub App's settings",
  'agent.command':
    'set RMAPP_AGENT_COMMAND to the coding agent, e.g. ["my-agent","--fast"] (a JSON array, or words separated by spaces), or set RMAPP_AGENT_KIND to claude-code, codex or aider',
  'agent.kind': 'set RMAPP_AGENT_KIND to claude-code, codex, aider, or command (any program that reads the prompt on stdin)',
  'tests.command': 'set RMAPP_TEST_COMMAND to the repository test command, e.g. ["npm","test"]',
  'server.port': 'set PORT (or `rmapp serve --port`) to a port number between 1 and 65535 (0: any free port)',
  'server.dashboardToken':
    'set RMAPP_DASHBOARD_TOKEN to a random string of at least 16 characters (e.g. `openssl rand -hex 24`), or bind to 127.0.0.1',
  labels: 'set RMAPP_LABELS to a JSON object mapping label to template, e.g. {"rmapp:bug":"bugfix"}',
  'sandbox.driver':
    'set RMAPP_SANDBOX to bubblewrap (default), container (with RMAPP_SANDBOX_IMAGE) or none (no isolation: trusted repositories only)',
  'sandbox.env': "list only variables the agent or tests need; the service's own secrets are never passed",
  'agent.env': "list only variables the agent needs (its API key); the service's own secrets are never passed",
  reviewAnyBranch:
    'set RMAPP_REVIEW_ANY_BRANCH to the repositories whose pull requests rmapp may push review changes to whoever opened them, e.g. acme/widgets,acme/* (or leave it unset: only the pull requests rmapp opened)',
};

/** Where the values of one configuration came from. */
export interface SettingSources {
  /** The configuration file read, with its values as written (before the environment was laid over them). */
  file?: { path: string; values: unknown } | undefined;
  /** The settings (keys of `ENV`) the environment set. */
  env: ReadonlySet<string>;
  /** The settings a command-line flag set, by the flag's name: `{ 'server.port': '--port' }`. */
  flags?: Readonly<Record<string, string>> | undefined;
}

/** One problem line for the setting at `path` (dotted; `(config)` for the whole). */
export type ProblemLine = (path: string, message: string) => string;

/** The setting of `ENV` that `path` is, or lies inside (`agent.command.0` is `agent.command`'s). */
function settingOf(path: string): string | undefined {
  return Object.keys(ENV).find((key) => path === key || path.startsWith(`${key}.`));
}

/** The value at a dotted `path` of `values` (`(config)`: the whole), or undefined. */
function valueAt(values: unknown, path: string): unknown {
  if (path === '(config)') return values;
  let node = values;
  for (const part of path.split('.')) {
    if (!node || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** `set PORT (or …) to a port number …` → `a port number …`: what a right value is, whoever sets it. */
const rightValue = (fix: string) => /^set .*? to (.*)$/.exec(fix)?.[1];

/**
 * The problem lines of one configuration: `server.port (in /srv/rmapp.config.json): Too big … — change
 * it there to …`, `server.port (env PORT): … — set PORT …`, `server.port (--port): …`. A setting that
 * is missing is named with its variable, where most deployments set it.
 */
export function problemLines(sources: SettingSources): ProblemLine {
  return (path, message) => {
    const setting = settingOf(path);
    const fix = setting ? FIX[setting as Key] : undefined;
    const flag = setting ? sources.flags?.[setting] : undefined;
    if (flag) {
      const value = fix && rightValue(fix);
      return `${path} (${flag}): ${message}${value ? ` — give ${flag} ${value}` : ''}`;
    }
    if (!(setting && sources.env.has(setting)) && sources.file && valueAt(sources.file.values, path) !== undefined) {
      const value = fix && rightValue(fix);
      const there = value ? `change it there to ${value}` : fix;
      return `${path} (in ${sources.file.path}): ${message}${there ? ` — ${there}` : ''}`;
    }
    const env = (ENV as Record<string, string>)[path];
    return `${env ? `${path} (env ${env})` : path}: ${message}${fix ? ` — ${fix}` : ''}`;
  };
}
