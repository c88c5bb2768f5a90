/**
 * A repository's own settings for rmapp: `.github/rmapp.yml` on its default branch, the counterpart of
 * Copilot's `copilot-setup-steps.yml` and custom instructions. The service's settings stay the
 * defaults; this file adds what only the repository knows — how to set up a workspace, how to test and
 * lint it, what the agent should be told, which paths it must not touch, which hosts its setup and
 * tests may reach, and tighter limits.
 *
 * It is read from the default branch only (never from the branch being worked on, which the agent or
 * a pull request's author controls), and validated before anything runs: a wrong file gets one reply
 * naming the key and the fix (src/actors/delivery-context.ts `settingsOr`), and no run starts. Commands are argv
 * arrays, or strings split into words: never given to a shell by the service. They run in the
 * sandbox, like the agent.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDuration } from '../persistence/retention.ts';
import { ValidationError } from '../state_machine/errors.ts';
import { validPort } from './sandbox/egress-proxy.ts';
import { didYouMean } from '../state_machine/did-you-mean.ts';

/** The repository's settings file, read from its default branch. */
export const REPOSITORY_CONFIG = '.github/rmapp.yml';

/** The instruction files other coding agents read, included in every prompt when present on the default branch. */
export const INSTRUCTION_FILES = ['AGENTS.md', 'CLAUDE.md', '.github/copilot-instructions.md'] as const;

/** Most of each instruction file kept in a prompt (the end is cut, with a note). */
export const INSTRUCTIONS_MAX_CHARS = 20_000;

const hostName = z
  .string()
  .regex(
    /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/i,
    'must be a host name, e.g. registry.npmjs.org, *.example.com or git.example.com:8443',
  )
  // `*.com` would open every host of a top-level domain: a wildcard needs a domain of two names or more.
  .refine((h) => !h.startsWith('*.') || h.replace(/:\d+$/, '').slice(2).includes('.'), {
    message: 'a wildcard must name a domain, e.g. *.example.com, not a whole top-level domain such as *.com',
  })
  // Five digits are not a port: `example.com:99999` opened nothing and, asked for, threw in the egress proxy.
  .refine((h) => !/:\d+$/.test(h) || validPort(Number(h.slice(h.lastIndexOf(':') + 1))), {
    message: 'a port must be 1 to 65535, e.g. git.example.com:8443',
  });

/** A command: an argv array, or a string split into words at white space (no shell, no quoting). */
const command = z.union([
  z
    .string()
    .trim()
    .min(1, 'must name a command, e.g. "npm test" or [npm, test]')
    .transform((s) => s.split(/\s+/)),
  z.array(z.string().min(1, 'an argument must not be empty')).min(1, 'must name a command, e.g. [npm, test]').max(200),
]);

const duration = z.string().transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const glob = z
  .string()
  .min(1)
  .max(300)
  .refine(
    (g) => !g.startsWith('/') && !g.split('/').some((part) => part === '..' || part === '.'),
    'must be a path inside the repository, without "/", "./" or ".." at its start, e.g. migrations/** or *.lock',
  )
  // Only `*`, `**` and `?` are patterns here: a brace list, a character class, a leading `!` or a
  // backslash would be taken literally and silently protect nothing.
  .refine(
    (g) => !/[{}[\]\\]/.test(g) && !g.startsWith('!'),
    'may use only *, ** and ? as patterns (no {a,b}, [ab], \\ or a leading !): write one glob per pattern, e.g. ["*.sql", "*.lock"]',
  );

const schema = z
  .object({
    setup: z.union([command.transform((c) => [c]), z.array(command).max(20)]).default([]),
    test: command.optional(),
    lint: command.optional(),
    instructions: z.string().max(INSTRUCTIONS_MAX_CHARS).optional(),
    protectedPaths: z.array(glob).max(100).default([]),
    sandbox: z
      .object({ network: z.array(hostName).max(50).default([]) })
      .strict()
      .default({ network: [] }),
    limits: z
      .object({
        setupTimeout: duration.optional(),
        testTimeout: duration.optional(),
        maxTestAttempts: z.number().int().min(1).max(10).optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

/** What `.github/rmapp.yml` says, validated. Absent keys: the service's settings apply. */
export interface RepositoryConfig {
  /** Commands run in the sandbox, in the run's workspace, before the agent (once per workspace). */
  setup: string[][];
  /** Replaces the service's test command for this repository. */
  test?: string[] | undefined;
  /** Run after the tests pass; a failure sends the work back to the agent like a test failure. */
  lint?: string[] | undefined;
  /** Added to every prompt (analysis, plan, implement, review fixes). */
  instructions?: string | undefined;
  /** Globs the agent must not change. */
  protectedPaths: string[];
  /** Hosts setup, tests and lint may reach (never the agent). */
  network: string[];
  limits: { setupTimeoutMs?: number | undefined; testTimeoutMs?: number | undefined; maxTestAttempts?: number | undefined };
}

/** A repository with no `.github/rmapp.yml`. */
export const EMPTY_REPOSITORY_CONFIG: RepositoryConfig = Object.freeze({
  setup: [],
  protectedPaths: [],
  network: [],
  limits: {},
});

const KNOWN: Record<string, readonly string[]> = {
  '': Object.keys(schema.shape),
  sandbox: ['network'],
  limits: ['setupTimeout', 'testTimeout', 'maxTestAttempts'],
};

/** What to write instead, by key: the second half of each message a wrong file gets. */
const FIXES: Record<string, string> = {
  setup: 'a list of commands, e.g. setup: ["npm ci", [node, scripts/seed.js]]',
  test: 'one command, e.g. test: npm test, or test: [npm, test]',
  lint: 'one command, e.g. lint: npm run lint',
  instructions: `text for the agent, at most ${INSTRUCTIONS_MAX_CHARS} characters`,
  protectedPaths: 'a list of globs, e.g. protectedPaths: [".github/**", "migrations/*.sql"]',
  'sandbox.network': 'a list of host names, e.g. network: [registry.npmjs.org]',
  'limits.setupTimeout': 'a duration, e.g. 10m',
  'limits.testTimeout': 'a duration, e.g. 15m',
  'limits.maxTestAttempts': 'a whole number from 1 to 10',
};

/** A NUL or an unpaired surrogate (the text Postgres refuses and `spawn` throws on). */
// eslint-disable-next-line no-control-regex -- NUL is what spawn and Postgres refuse: matching it is the point
const UNUSABLE_TEXT = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const UNUSABLE_TEXT_ALL = new RegExp(UNUSABLE_TEXT.source, 'g');

/**
 * The path (keys joined by dots, shown escaped) of the first key or string in `value` that holds a NUL
 * or an unpaired surrogate, or null. Such text cannot be an argument of a command (spawning it throws),
 * a path, or text stored in Postgres, and a message that quoted it raw could not be saved either.
 */
function unusableText(value: unknown, path: string[] = []): string | null {
  const bad = (text: string) => UNUSABLE_TEXT.test(text);
  const shown = () => path.map((p) => JSON.stringify(p).slice(1, -1)).join('.') || '(file)';
  if (typeof value === 'string') return bad(value) ? shown() : null;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = unusableText(item, [...path, String(i)]);
      if (found) return found;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (bad(key)) {
        path.push(key);
        return shown();
      }
      const found = unusableText(item, [...path, key]);
      if (found) return found;
    }
  }
  return null;
}

/**
 * Parses `.github/rmapp.yml`. A wrong file throws a {@link ValidationError} whose message names each
 * wrong key and what to write instead (its `issues` carry them one by one).
 *
 * @example
 * parseRepositoryConfig('test: npm test\nprotectedPaths: [migrations/**]\n').test; // ['npm', 'test']
 */
export function parseRepositoryConfig(text: string): RepositoryConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    throw new ValidationError(
      `${REPOSITORY_CONFIG} is not valid YAML: ${(err as Error).message.split('\n')[0]} — fix the syntax (a YAML linter shows where).`,
      [{ path: REPOSITORY_CONFIG, message: 'invalid YAML' }],
    );
  }
  const unusable = unusableText(raw);
  if (unusable)
    throw new ValidationError(
      `${REPOSITORY_CONFIG} is invalid: \`${unusable}\` holds a NUL character or an unpaired surrogate (\\0, \\uD800 …), which no command, path or prompt can carry — remove it.`,
      [{ path: unusable, message: 'NUL character or unpaired surrogate' }],
    );
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new ValidationError(`${REPOSITORY_CONFIG} must be a mapping of settings (setup, test, lint, instructions, …).`, [
      { path: REPOSITORY_CONFIG, message: 'not a mapping' },
    ]);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => {
      const at = i.path.filter((p) => typeof p === 'string').join('.');
      if (i.code === 'unrecognized_keys') {
        const known = KNOWN[at] ?? [];
        const named = i.keys.map((k) => {
          const near = didYouMean(k, known);
          return `"${k}"${near ? ` (did you mean "${near}"?)` : ''}`;
        });
        return {
          path: `${at ? `${at}.` : ''}${i.keys[0]}`,
          message: `unknown setting ${named.join(', ')}; known here: ${known.join(', ')}`,
        };
      }
      const fix = FIXES[at];
      return { path: i.path.join('.') || '(file)', message: `${i.message}${fix ? ` — expected ${fix}` : ''}` };
    });
    throw new ValidationError(`${REPOSITORY_CONFIG} is invalid: ${issues.map((i) => `\`${i.path}\`: ${i.message}`).join('; ')}`, issues);
  }
  const d = parsed.data;
  return {
    setup: d.setup,
    test: d.test,
    lint: d.lint,
    instructions: d.instructions?.trim() || undefined,
    protectedPaths: d.protectedPaths,
    network: d.sandbox.network,
    limits: { setupTimeoutMs: d.limits.setupTimeout, testTimeoutMs: d.limits.testTimeout, maxTestAttempts: d.limits.maxTestAttempts },
  };
}

/** A glob of `protectedPaths` as a regular expression over repository paths (`**` any depth, `*` and `?` within a name). */
function globPattern(glob: string): RegExp {
  let re = '';
  // `dir/**` protects the folder itself too (a file or symlink made in its place), not only what is in it.
  const trimmed = glob.replace(/\/+$/, '');
  const g = trimmed.replace(/(.)\/\*\*$/, '$1');
  for (let i = 0; i < g.length; i++) {
    const c = g[i] as string;
    if (c === '*' && g[i + 1] === '*') {
      i++;
      if (g[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // A name without a slash matches at any depth (as in .gitignore); a match also covers what is below it.
  // `s`: `.*` crosses line breaks too — a file named `.github/workflows/x\n.yml` slipped past `.github/**`.
  return new RegExp(`^${trimmed.includes('/') ? '' : '(?:.*/)?'}${re}(?:/.*)?$`, 'su');
}

/**
 * The changed paths that `protectedPaths` protects, each with the glob that protects it.
 *
 * @example
 * protectedChanges(['src/a.ts', 'migrations/1.sql'], ['migrations/**']); // [{ path: 'migrations/1.sql', glob: 'migrations/**' }]
 */
export function protectedChanges(paths: readonly string[], globs: readonly string[]): { path: string; glob: string }[] {
  const patterns = globs.map((glob) => ({ glob, re: globPattern(glob) }));
  const hits: { path: string; glob: string }[] = [];
  for (const path of paths) {
    const hit = patterns.find((p) => p.re.test(path));
    if (hit) hits.push({ path, glob: hit.glob });
  }
  return hits;
}

/** A repository's settings as the steps use them: the validated file and the instruction files found. */
export interface RepositorySettings {
  config: RepositoryConfig;
  /** `AGENTS.md`, `CLAUDE.md`, `.github/copilot-instructions.md` as on the default branch, when present. */
  instructionFiles: { path: string; text: string }[];
}

/**
 * The repository's instructions as a section of a prompt (empty when it has none): the file's
 * `instructions`, then each instruction file, each cut at {@link INSTRUCTIONS_MAX_CHARS}.
 */
export function instructionsSection(settings: RepositorySettings): string {
  const cut = (raw: string) => {
    // A NUL or an unpaired surrogate in a file is dropped: the prompt is text for the agent and its transcript.
    const text = raw.replace(UNUSABLE_TEXT_ALL, '');
    return text.length > INSTRUCTIONS_MAX_CHARS ? `${text.slice(0, INSTRUCTIONS_MAX_CHARS)}\n\n(cut: the rest is not shown)` : text;
  };
  const parts = [
    ...(settings.config.instructions ? [`From ${REPOSITORY_CONFIG}:\n\n${settings.config.instructions}`] : []),
    ...settings.instructionFiles.map((f) => `From ${f.path}:\n\n${cut(f.text.trim())}`),
  ];
  return parts.length ? `\n## Repository instructions\n\n${parts.join('\n\n')}\n` : '';
}
