/**
 * The service's configuration: environment variables over an optional `rmapp.config.json` (or
 * `rmapp.config.ts` exporting the same object), validated with zod at start-up. A wrong or missing
 * setting stops the process with one message per problem naming the setting, the environment
 * variable that sets it, and the fix — never a stack trace, never a secret's value.
 *
 * GitHub is optional as a whole: with no GitHub setting at all, `rmapp serve` runs the dashboard and
 * workers for local runs and answers webhooks with 503. Once any GitHub setting is present, every
 * setting a GitHub deployment needs must be (credentials, webhook secret, agent and test commands).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseDuration } from '../persistence/retention.ts';
import { ValidationError, WorkflowError } from '../state_machine/errors.ts';
import { connectionStringSecrets } from './masking.ts';
import { isServiceSecret } from './sandbox/env.ts';
import { isSecretName, pgPassword, privateKeySecrets, variableSecrets } from './secret-variables.ts';
import { pgpassSecrets } from './pgpass-secrets.ts';
import { otlpHeaderSecrets } from './otlp-header-secrets.ts';
import { validPort } from './sandbox/egress-proxy.ts';
import { didYouMean } from '../state_machine/did-you-mean.ts';
import { countOf, MAX_COUNT } from './whole-number.ts';
import { ENV, problemLines, type ProblemLine, type SettingSources } from './config-problems.ts';
import { importUserModule, inWords, MODULE_EXTENSIONS, userFileProblem } from './typescript-modules.ts';
import { syntaxErrorLocation } from './syntax-error-location.ts';
import { jsonErrorAt } from './json-error-location.ts';

/** TypeScript, parsed by tsx: its errors name their place. */
const TYPESCRIPT = /\.(c|m)?tsx?$/;
import { TEMPLATE_NAMES } from '../machines/issue-templates.ts';
import { adapterFor, AGENT_KINDS, type AgentKind } from './agents/index.ts';

export { ENV };

/** Settings that are lists: a JSON array, or words separated by spaces or commas, in the environment. */
const LIST_SETTINGS = new Set([
  'server.allowedHosts',
  'agent.command',
  'tests.command',
  'agent.env',
  'agent.network',
  'sandbox.network',
  'sandbox.env',
  'sandbox.readOnlyPaths',
  'reviewAnyBranch',
]);

/**
 * A number, or a string of one (an environment variable's): `z.coerce.number()` said `expected number,
 * received NaN` of `RMAPP_CONCURRENCY=abc`, naming neither the value nor what was wrong with it.
 */
const numeric = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === 'number' ? v : v.trim() === '' ? NaN : Number(v);
  if (!Number.isNaN(n)) return n;
  ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a number` });
  return z.NEVER;
});

/** A count, by the rule `rmapp worker -c` has (whole-number.ts): a whole number from 1 to 2^31-1, written in decimal. */
const count = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = countOf(v);
  if (n !== null) return n;
  ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a whole number from 1 to ${MAX_COUNT}` });
  return z.NEVER;
});

const argv = z.array(z.string().min(1)).min(1, 'must name a command');
/** Milliseconds, or a duration such as `30m`, `2h`, `7d`. */
const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  try {
    const ms = typeof v === 'number' || /^\d+$/.test(v) ? Number(v) : parseDuration(v);
    if (Number.isSafeInteger(ms) && ms > 0) return ms;
    ctx.addIssue({ code: 'custom', message: 'must be a positive duration, e.g. 30m or 1800000' });
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
  return z.NEVER;
});

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
  .refine((n) => !isServiceSecret(n), { message: "is one of the service's own secrets and never enters the sandbox" });
const hostName = z
  .string()
  .regex(
    /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/i,
    'must be a host name, e.g. api.anthropic.com, *.example.com or git.example.com:8443',
  )
  .refine(
    (h) => !/:\d+$/.test(h) || validPort(Number(h.slice(h.lastIndexOf(':') + 1))),
    'a port must be 1 to 65535, e.g. git.example.com:8443',
  );
const boolish = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);
/** Bytes, or a size such as `512m`, `4g`. */
const size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const m = /^(\d+)\s*([kmg]?)i?b?$/i.exec(String(v).trim());
  const bytes = m ? Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase()) : NaN;
  if (Number.isSafeInteger(bytes) && bytes > 0) return bytes;
  ctx.addIssue({ code: 'custom', message: 'must be a size, e.g. 4g or 512m' });
  return z.NEVER;
});

const schema = z
  .object({
    databaseUrl: z.string().url().optional(),
    github: z
      .object({
        token: z.string().min(1).optional(),
        appId: numeric.pipe(z.number().int().positive()).optional(),
        privateKey: z.string().includes('PRIVATE KEY', { message: 'must be a PEM private key' }).optional(),
        privateKeyPath: z.string().min(1).optional(),
        apiUrl: z.string().url().default('https://api.github.com'),
        webhookSecret: z.string().min(8, 'must be at least 8 characters').optional(),
        /** Clone URL template with {owner} and {repo}; default from the API URL's host. */
        gitUrl: z.string().includes('{repo}', { message: 'must contain {owner} and {repo}' }).optional(),
      })
      .strict()
      .default({ apiUrl: 'https://api.github.com' }),
    botName: z
      .string()
      .regex(/^[\w-]+(\[bot\])?$/, 'must be a GitHub login, e.g. rmapp or my-app[bot]')
      .default('rmapp'),
    agent: z
      .object({
        /** Which agent, so how its output is read (src/rmapp/agents/). */
        kind: z.enum(AGENT_KINDS).default('command'),
        /** argv; for claude-code, codex and aider optional (the program and extra flags; rmapp adds what it needs). */
        command: argv.optional(),
        timeout: duration.default(30 * 60_000),
        /** Variables only the agent receives (its API key). */
        env: z.array(envName).default([]),
        /** Hosts only the agent may reach (its API). */
        network: z.array(hostName).default([]),
        /** Limits per run, summed over its agent sessions (src/rmapp/agents/budget.ts). */
        budget: z
          .object({
            maxTurns: numeric.pipe(z.number().int().positive()).optional(),
            maxTokens: numeric.pipe(z.number().int().positive()).optional(),
            maxCostUsd: numeric.pipe(z.number().positive()).optional(),
            maxTime: duration.optional(),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({ kind: 'command', timeout: 30 * 60_000, env: [], network: [], budget: {} }),
    /** Where the agent and the tests run: see the README's "Sandbox and threat model". */
    sandbox: z
      .object({
        driver: z.enum(['bubblewrap', 'container', 'none']).default('bubblewrap'),
        image: z.string().min(1).optional(),
        runtime: z.enum(['docker', 'podman']).optional(),
        network: z.array(hostName).default([]),
        allowPrivateNetwork: boolish.default(false),
        env: z.array(envName).default([]),
        readOnlyPaths: z.array(z.string().startsWith('/', 'must be an absolute path')).default([]),
        memory: size.default(4 * 1024 ** 3),
        processes: numeric.pipe(z.number().int().min(16)).default(1024),
      })
      .strict()
      .default({
        driver: 'bubblewrap',
        network: [],
        allowPrivateNetwork: false,
        env: [],
        readOnlyPaths: [],
        memory: 4 * 1024 ** 3,
        processes: 1024,
      }),
    tests: z
      .object({ command: argv.optional(), timeout: duration.default(20 * 60_000) })
      .strict()
      .default({ timeout: 20 * 60_000 }),
    workspaceRoot: z.string().min(1).default('.rmapp/workspaces'),
    /** How long a failed run's workspace is kept for inspection. */
    keepFailedWorkspaces: duration.default(7 * 24 * 3600_000),
    server: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        // Decimal only: a coerced "0x50" was port 80.
        port: z
          .union([z.number(), z.string().trim().regex(/^\d+$/, 'must be a port number written in decimal digits')])
          .transform(Number)
          .pipe(z.number().int().min(0).max(65535))
          .default(3000),
        publicUrl: z.string().url().optional(),
        dashboardToken: z.string().min(16, 'must be at least 16 characters').optional(),
        /** More Host values (`name[:port]`) the dashboard answers to (a proxy's name), against DNS rebinding. */
        allowedHosts: z
          .array(
            z
              .string()
              .regex(
                /^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:]+\](:\d{1,5})?$/i,
                'must be a host name with an optional port, e.g. rmapp.internal:3000',
              ),
          )
          .default([]),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 3000, allowedHosts: [] }),
    labels: z.record(z.string(), z.enum(TEMPLATE_NAMES)).default({}),
    maxTestAttempts: numeric.pipe(z.number().int().min(1).max(10)).default(3),
    /** The `docs` template runs no tests unless this is true. */
    docsRunTests: z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]).default(false),
    concurrency: count.default(20),
    /**
     * Repositories (`owner/repo`, or `owner/*` for all of an owner's) whose pull requests' own branches a
     * review may push to although rmapp did not open them (a person's `feature-x`). Default: none — a
     * review pushes only to the branches of rmapp's own pull requests (github/head-branch.ts). An
     * operator's choice, not a repository's: `.github/rmapp.yml` may lower the service's limits, never
     * widen where it writes.
     */
    reviewAnyBranch: z
      .array(
        z.string().regex(/^[A-Za-z0-9-]+\/([A-Za-z0-9._-]+|\*)$/, "must be a repository, owner/repo, or owner/* for all of an owner's"),
      )
      .default([]),
  })
  .strict();

export type RmappConfig = z.output<typeof schema> & {
  /** True when GitHub settings are present (then all of them were checked). */
  githubEnabled: boolean;
  /** Where the configuration came from, for the start-up line. */
  sources: string[];
  /** `concurrency` was set (file or `RMAPP_CONCURRENCY`), not defaulted: `rmapp worker` takes it then. */
  concurrencySet: boolean;
};

/** Thrown for a bad configuration; the message lists every problem with its fix. */
export class ConfigError extends WorkflowError {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`, { code: 'CONFIG', category: 'validation' });
  }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
/** True when a bind address only accepts local connections. */
export const isLoopback = (host: string) => LOOPBACK.has(host);

/** The settings an object of the schema at `path` knows (through defaults and optionals). */
function knownKeys(path: readonly PropertyKey[]): string[] {
  const unwrap = (node: z.ZodType): z.ZodType => {
    const def = (node as { def?: { type?: string; innerType?: z.ZodType } }).def;
    return (def?.type === 'default' || def?.type === 'optional') && def.innerType ? unwrap(def.innerType) : node;
  };
  const shapeOf = (node: z.ZodType) => (unwrap(node) as { shape?: Record<string, z.ZodType> }).shape ?? {};
  let shape = shapeOf(schema);
  for (const key of path) {
    const next = shape[String(key)];
    if (!next) return [];
    shape = shapeOf(next);
  }
  return Object.keys(shape);
}

/** `server.prot: unknown setting(s) prot (did you mean server.port?); known: host, port, …` */
function unknownKeys(path: readonly PropertyKey[], keys: readonly string[]): string {
  const known = knownKeys(path);
  const prefix = path.length ? `${path.join('.')}.` : '';
  const hints = keys.map((k) => didYouMean(k, known)).filter((k): k is string => !!k);
  const hint = hints.length ? ` (did you mean ${hints.map((h) => prefix + h).join(', ')}?)` : '';
  return `unknown setting(s) ${keys.join(', ')}${hint}; known: ${known.join(', ')}`;
}

/**
 * The checks across settings (credentials that go together, what serving beyond localhost needs). They
 * run on the parsed configuration, or on the raw one when parsing found problems, so that one run
 * reports every problem at once.
 */
function crossChecks(
  c: RawConfig,
  options: { requireWebhookSecret?: boolean | undefined; serves?: boolean | undefined },
  problems: string[],
  problem: ProblemLine,
): boolean {
  const gh = c.github && typeof c.github === 'object' ? c.github : {};
  const githubEnabled = !!(gh.token || gh.appId || gh.privateKey || gh.privateKeyPath || gh.webhookSecret);
  if (githubEnabled) {
    if (!gh.token && !gh.appId) problems.push(problem('github.token', 'GitHub credentials are missing'));
    if (gh.appId && !gh.privateKey && !gh.privateKeyPath)
      problems.push(problem('github.privateKey', 'GITHUB_APP_ID is set but the private key is missing'));
    if (!gh.appId && (gh.privateKey || gh.privateKeyPath) && !gh.token)
      problems.push(problem('github.appId', 'a private key is set but the App ID is missing'));
    if (!gh.webhookSecret && options.requireWebhookSecret !== false)
      problems.push(problem('github.webhookSecret', 'required to verify webhooks'));
    if (!c.agent?.command && (c.agent?.kind ?? 'command') === 'command')
      problems.push(problem('agent.command', 'required to run workflows'));
    if (!c.tests?.command) problems.push(problem('tests.command', 'required to run workflows'));
  }
  agentChecks(c, problems, problem);
  if (c.sandbox?.driver === 'container' && !c.sandbox?.image)
    problems.push(problem('sandbox.image', 'the container driver needs an image with the tools the tests use, e.g. node:20'));
  const host = typeof c.server?.host === 'string' ? c.server.host : '127.0.0.1';
  if (options.serves !== false && !isLoopback(host) && !c.server?.dashboardToken) {
    problems.push(problem('server.dashboardToken', `required when binding to ${host} (not localhost)`));
  }
  return githubEnabled;
}

/** The agent's command fits its kind, and a cost budget has a cost to count. */
function agentChecks(c: RawConfig, problems: string[], problem: ProblemLine): void {
  const kind = c.agent?.kind as AgentKind | undefined;
  if (!kind || !(AGENT_KINDS as readonly string[]).includes(kind)) return; // the schema names it
  const adapter = adapterFor(kind);
  const command = Array.isArray(c.agent?.command) ? (c.agent.command as string[]) : [];
  if (kind !== 'command') for (const p of adapter.check(command)) problems.push(problem('agent.command', p));
  if (c.agent?.budget?.maxCostUsd !== undefined && !adapter.reportsCost)
    problems.push(
      problem(
        'agent.budget.maxCostUsd',
        `agent.kind ${kind} reports no cost, so a cost budget could never stop it — use agent.budget.maxTokens or agent.budget.maxTurns instead`,
      ),
    );
}

/** An argv from a JSON array or words separated by spaces (the command is trusted configuration, never run by a shell). */
function parseArgv(text: string): string[] | string {
  const t = text.trim();
  if (t.startsWith('[')) {
    try {
      return JSON.parse(t) as string[];
    } catch {
      return text; // zod names it
    }
  }
  return t.split(/\s+/).filter(Boolean);
}

/** A list from a JSON array or words separated by spaces or commas. */
/**
 * Configuration as read from a file and the environment, before the schema checks it: any shape, and
 * the cross-checks must run on it even when parsing failed (to report every problem at once).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RawConfig = Record<string, any>;

function parseList(text: string): string[] | string {
  const parsed = parseArgv(text);
  return typeof parsed === 'string' ? parsed : parsed.flatMap((w) => w.split(',')).filter(Boolean);
}

function set(target: RawConfig, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const p of parts.slice(0, -1)) node = node[p] = typeof node[p] === 'object' && node[p] !== null ? node[p] : {};
  node[parts.at(-1) as string] = value;
}

/** Removes the setting at the dotted `path` of `target`, if there is one. */
function unset(target: RawConfig, path: string): void {
  const parts = path.split('.');
  let node: unknown = target;
  for (const p of parts.slice(0, -1)) node = node && typeof node === 'object' ? (node as RawConfig)[p] : undefined;
  if (node && typeof node === 'object') delete (node as RawConfig)[parts.at(-1) as string];
}

/** Lays the environment's settings over `into`, adding each it sets to `setByEnv`. */
function fromEnv(env: NodeJS.ProcessEnv, into: RawConfig, setByEnv: Set<string>, problems: string[], problem: ProblemLine): void {
  for (const [path, name] of Object.entries(ENV)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    setByEnv.add(path);
    if (LIST_SETTINGS.has(path)) set(into, path, path.endsWith('.command') ? parseArgv(raw) : parseList(raw));
    else if (path === 'labels') {
      try {
        set(into, path, JSON.parse(raw));
      } catch {
        problems.push(problem(path, 'is not valid JSON'));
      }
    } else set(into, path, raw);
  }
}

/** What `--config` reads: JSON, or a module Node (or tsx) imports. */
const CONFIG_EXTENSIONS = ['.json', ...MODULE_EXTENSIONS];

async function fromFile(file: string): Promise<RawConfig> {
  if (file.endsWith('.json')) {
    // Without a leading byte order mark (an editor's), which JSON.parse refused as an invisible character.
    const text = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
    try {
      return JSON.parse(text) as RawConfig;
    } catch (err) {
      throw new ConfigError([`${file}:${jsonErrorAt(text, err)} — the file is not valid JSON: fix it or remove it`]);
    }
  }
  let mod: { default?: unknown; config?: unknown };
  try {
    mod = (await importUserModule(file, 'configuration (or rmapp.config.json)')) as typeof mod;
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    // The module's own error said nothing of where it came from: `rmapp: Unexpected token ';'`.
    const at = TYPESCRIPT.test(file) ? undefined : syntaxErrorLocation(err, file);
    throw new Error(
      `Loading the config file ${file} failed: ${at ? `SyntaxError at ${at}: ` : ''}${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const value = mod.default ?? mod.config;
  if (!value || typeof value !== 'object') throw new ConfigError([`${file}: must \`export default\` a configuration object`]);
  return structuredClone(value) as RawConfig;
}

/**
 * Loads and validates the configuration.
 *
 * @param options.file an explicit file (`--config`); otherwise `rmapp.config.json` or `rmapp.config.ts` in `cwd` if present.
 */
export async function loadConfig(
  options: {
    env?: NodeJS.ProcessEnv;
    file?: string | undefined;
    cwd?: string;
    /** `rmapp run` and `rmapp worker` need no webhook secret. */ requireWebhookSecret?: boolean;
    /** `rmapp worker` serves no HTTP: no dashboard-token rule. */ serves?: boolean;
    /**
     * Settings the caller set in `env` from its command-line flags, by the flag's name (`{ 'server.port':
     * '--port' }`): a problem with one names the flag.
     */
    flags?: Readonly<Record<string, string>>;
    /**
     * Settings (dotted paths) the command takes from its flags or does not use: whatever the file or the
     * environment says of them is left out, unchecked, and they keep their defaults. `rmapp worker -c 5`
     * was refused over a `concurrency` its flag replaced, and any worker over a `server.port` only
     * `serve` listens on.
     */
    ignore?: readonly string[];
  } = {},
): Promise<RmappConfig> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const problems: string[] = [];
  const sources: string[] = [];
  const setByEnv = new Set<string>();
  const settingSources: SettingSources = { env: setByEnv, flags: options.flags };
  const problem = problemLines(settingSources);
  let raw: RawConfig = {};
  const file =
    options.file ?? env.RMAPP_CONFIG ?? ['rmapp.config.json', 'rmapp.config.ts'].map((f) => resolve(cwd, f)).find((f) => existsSync(f));
  if (file) {
    const path = resolve(cwd, file);
    if (!existsSync(path)) throw new ConfigError([`config file ${path} not found — fix --config / RMAPP_CONFIG or create the file`]);
    const wrong = userFileProblem(path, CONFIG_EXTENSIONS);
    if (wrong)
      throw new ValidationError(
        `The config file ${path} is ${wrong}: pass --config (or set RMAPP_CONFIG to) a .json file, or a ${inWords(MODULE_EXTENSIONS)} module that exports the configuration as its default export.`,
      );
    raw = await fromFile(path);
    sources.push(path);
    settingSources.file = { path, values: structuredClone(raw) };
  }
  const before = JSON.stringify(raw);
  fromEnv(env, raw, setByEnv, problems, problem);
  if (JSON.stringify(raw) !== before) sources.push('environment');
  for (const path of options.ignore ?? []) unset(raw, path);

  // Every problem in one error: the schema's (all of them, at any depth), then the cross-setting checks.
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const path = i.path.join('.') || '(config)';
      problems.push(problem(path, i.code === 'unrecognized_keys' ? unknownKeys(i.path, i.keys) : i.message));
    }
    crossChecks(raw, options, problems, problem);
    throw new ConfigError(problems);
  }
  const config = parsed.data;
  const gh = config.github;
  if (gh.privateKeyPath && !gh.privateKey) {
    const keyFile = resolve(cwd, gh.privateKeyPath);
    if (!existsSync(keyFile)) problems.push(problem('github.privateKeyPath', `file ${keyFile} not found`));
    else gh.privateKey = readFileSync(keyFile, 'utf8');
  }
  const githubEnabled = crossChecks(config, options, problems, problem);
  if (problems.length) throw new ConfigError(problems);
  return { ...config, githubEnabled, sources, concurrencySet: (raw as { concurrency?: unknown }).concurrency !== undefined };
}

/** Clone URL of a repository (no credentials: they travel in git's environment, never in URLs or logs). */
export function gitUrlFor(config: RmappConfig, owner: string, repo: string): string {
  const template = config.github.gitUrl ?? `${webUrl(config.github.apiUrl)}/{owner}/{repo}.git`;
  return template.replaceAll('{owner}', owner).replaceAll('{repo}', repo);
}

/**
 * The web address of an API URL: api.github.com → https://github.com; GitHub Enterprise Cloud with
 * data residency, api.NAME.ghe.com → https://NAME.ghe.com; GitHub Enterprise Server,
 * https://ghe/prefix/api/v3 → https://ghe/prefix.
 */
export function webUrl(apiUrl: string): string {
  const url = new URL(apiUrl);
  if (url.hostname === 'api.github.com') return 'https://github.com';
  if (/^api\.[^.]+\.ghe\.com$/i.test(url.hostname)) return `${url.protocol}//${url.host.slice(4)}`;
  const prefix = url.pathname.replace(/\/+$/, '').replace(/\/api\/v3$/, '');
  return `${url.protocol}//${url.host}${prefix}`;
}

/**
 * The settings that hold secrets, or name them: {@link secretsOf} reads them from a checked
 * configuration, {@link configuredSecrets} from the file and the environment as they are.
 */
interface SecretSettings {
  github?: { token?: unknown; webhookSecret?: unknown; privateKey?: unknown } | undefined;
  server?: { dashboardToken?: unknown } | undefined;
  databaseUrl?: unknown;
  agent?: { env?: unknown } | undefined;
  sandbox?: { env?: unknown } | undefined;
}

const texts = (values: readonly unknown[]): string[] => values.filter((s): s is string => typeof s === 'string' && s !== '');
const names = (list: unknown): string[] => (Array.isArray(list) ? texts(list) : []);

/** The secret values of `settings`: one rule for a checked configuration and for one read as it is. */
function secretsOfSettings(settings: SecretSettings, env: NodeJS.ProcessEnv): string[] {
  const databaseUrl = typeof settings.databaseUrl === 'string' ? settings.databaseUrl : undefined;
  return texts([
    settings.github?.token,
    settings.github?.webhookSecret,
    // As written, as Octokit reads it (escaped line breaks), and its base64 body alone.
    ...privateKeySecrets(settings.github?.privateKey),
    settings.server?.dashboardToken,
    ...connectionStringSecrets(databaseUrl),
    // What Postgres clients take as the password when the URL has none: the service's database password
    // as much as the URL's (sandbox/env.ts never passes it to the sandbox; the CLI's masker had it, the
    // service's logs, comments, API, dashboard and inspector did not). Not when it is its own user.
    pgPassword(env, databaseUrl),
    // The password file libpq and node-postgres read when neither gives one, and the OpenTelemetry
    // exporters' headers (a collector's API key): the service's own, as PGPASSWORD is.
    ...pgpassSecrets(env),
    ...otlpHeaderSecrets(env),
    ...variableSecrets([...names(settings.agent?.env), ...names(settings.sandbox?.env)], env),
  ]);
}

/**
 * The secret values the masker masks by value: the configuration's credentials (the App's private key
 * also as Octokit reads it and by its base64 body alone: secret-variables.ts `privateKeySecrets`), the database password
 * (as written in the URL and decoded, and `PGPASSWORD` from `env` unless it is its own user:
 * secret-variables.ts `pgPassword`; every password of the file `PGPASSFILE` or `~/.pgpass` names:
 * pgpass-secrets.ts), the OpenTelemetry exporters' header values (`OTEL_EXPORTER_OTLP_HEADERS` and its
 * per-signal forms: otlp-header-secrets.ts), and of the variables the sandbox passes to the agent or the
 * tests (`agent.env`, `sandbox.env`: the agent's API key must not come back in a comment) the values
 * whose names say they are secrets and the credentials of the URLs in any value
 * (secret-variables.ts `variableSecrets`: `MIRROR=https://<token>@…` says nothing in its name).
 */
export function secretsOf(config: RmappConfig, env: NodeJS.ProcessEnv = process.env): string[] {
  return secretsOfSettings(config, env);
}

/**
 * The secrets {@link secretsOf} would give for the configuration `rmapp serve` would load here — the file
 * (`file`, else `RMAPP_CONFIG`, else `rmapp.config.json` / `rmapp.config.ts` in `cwd`) under the
 * environment — read as they are, never refused: a file that is missing, cannot be read or would not
 * pass `loadConfig`'s checks gives what the environment holds, and a GitHub App key file
 * (`github.privateKeyPath`) that cannot be read gives nothing.
 *
 * For the CLI's commands about runs (`runs show`, `runs list --json`, `start --wait`, errors): they print
 * what the dashboard shows — a run's error quoting a test's output, an agent's stderr — and must mask
 * what the service masks. Masked with only the service's own variables, `rmapp runs show` printed the
 * value of a `sandbox.env` variable a test had printed (`DB_PASSWORD=…`), which the dashboard masked.
 *
 * @example
 * const masker = createMasker(await configuredSecrets({ env: process.env, cwd: process.cwd() }));
 */
export async function configuredSecrets(
  options: { env?: NodeJS.ProcessEnv; cwd?: string; file?: string | undefined } = {},
): Promise<string[]> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  let raw: RawConfig = {};
  const file =
    options.file ?? env.RMAPP_CONFIG ?? ['rmapp.config.json', 'rmapp.config.ts'].map((f) => resolve(cwd, f)).find((f) => existsSync(f));
  if (file && existsSync(resolve(cwd, file))) {
    const read = await fromFile(resolve(cwd, file)).catch(() => null);
    if (read && typeof read === 'object' && !Array.isArray(read)) raw = read;
  }
  fromEnv(env, raw, new Set(), [], () => '');
  const settings = raw as SecretSettings & { github?: { privateKeyPath?: unknown } };
  const keyPath = settings.github?.privateKeyPath;
  let privateKey = settings.github?.privateKey;
  if (!privateKey && typeof keyPath === 'string' && keyPath) {
    try {
      privateKey = readFileSync(resolve(cwd, keyPath), 'utf8');
    } catch {
      privateKey = undefined;
    }
  }
  return secretsOfSettings({ ...settings, github: { ...settings.github, privateKey } }, env);
}

/**
 * The secrets the sandbox holds, which refuse a commit (workspace.ts `commitAll`): of the variables it
 * passes to the agent or the tests (`agent.env`, `sandbox.env`), the whole value of each whose name
 * says it is a secret, and the credentials of the URLs in every value — the `<token>` of
 * `MIRROR=https://<token>@mirror.example.com`, the password of `TEST_DB_URL=postgres://app:<password>@db`,
 * a `?token=` — as the masker masks them (secret-variables.ts `variableSecrets`). Only the whole value
 * of a secret-named variable refused a commit: an agent told to write its mirror's URL, or the token in
 * it, into a file had it pushed, readable by whoever reads the branch. A password that is its URL's own
 * user (`postgres:postgres`) is no credential, and a value shorter than 6 characters is ignored, as the
 * masker ignores it. The service's own credentials, which never enter the sandbox, are checked as well
 * (service-secret-sources.ts `serviceSecretSources`), where a weak database password such as `postgres`
 * refuses nothing: it would refuse every change that names it.
 */
export function sandboxSecretsOf(config: RmappConfig, env: NodeJS.ProcessEnv = process.env): string[] {
  return sandboxSecretSources(config, env).flatMap((source) => source.secrets);
}

/** Secrets of one variable the sandbox is given, and how a refusal names them without showing them. */
export interface SecretSource {
  /** `the value of NPM_TOKEN (sandbox.env)`, `a credential in the URL that MIRROR (sandbox.env) holds …`. */
  label: string;
  secrets: string[];
}

/**
 * {@link sandboxSecretsOf} by variable, each with a label for a refused commit: which variable, and
 * whether its whole value or a credential of a URL in it was found (never the value itself).
 */
export function sandboxSecretSources(config: RmappConfig, env: NodeJS.ProcessEnv = process.env): SecretSource[] {
  const out: SecretSource[] = [];
  for (const [where, names] of [
    ['agent.env', config.agent.env],
    ['sandbox.env', config.sandbox.env],
  ] as const) {
    for (const name of names) {
      const all = variableSecrets([name], env);
      const whole = isSecretName(name) ? all.filter((s) => s === env[name]) : [];
      const inUrl = all.filter((s) => !whole.includes(s));
      if (whole.length) out.push({ label: `the value of ${name} (${where})`, secrets: whole });
      if (inUrl.length)
        out.push({
          label: `a credential of the URL in ${name} (${where}: its user or password, or a token in its query)`,
          secrets: inUrl,
        });
    }
  }
  return out;
}
