/**
 * Running what a repository's `.github/rmapp.yml` asks for (src/rmapp/repository-config.ts) around the
 * agent: its setup commands before the agent, its test and lint commands instead of the service's, and
 * the check that the agent left its protected paths alone. Every command runs in the sandbox, in the
 * run's workspace, as an argv (never through a shell of the service), with the repository's network
 * hosts — which the agent never gets (src/rmapp/agent-runner.ts).
 */
import { storableText } from './webhooks/event.ts';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkflowError } from '../state_machine/errors.ts';
import { runTests, type TestsConfig } from './agent-runner.ts';
import { protectedChanges, REPOSITORY_CONFIG, type RepositorySettings } from './repository-config.ts';
import type { Workspace, Workspaces } from './workspace.ts';

/** In a workspace's `.git` (never committed, read-only in the sandbox): which setup ran there. */
const SETUP_DONE_FILE = 'rmapp-setup-done';

/** Most of a failing command's output quoted in its error. */
const TAIL_CHARS = 2_000;

/** The end of a command's output, for a message. */
export function outputTail(text: string, max = TAIL_CHARS): string {
  const t = text.trimEnd();
  return storableText(t.length > max ? `…${t.slice(-max)}` : t);
}

/** The service's test settings with the repository's command and (lower) timeout. */
export function repositoryTests(tests: TestsConfig, settings: RepositorySettings): TestsConfig {
  const { config } = settings;
  return {
    ...tests,
    command: config.test ?? tests.command,
    fromRepository: config.test ? true : tests.fromRepository,
    // The operator's timeout is the cap: a repository may ask for less, never more.
    timeoutMs: Math.min(tests.timeoutMs, config.limits.testTimeoutMs ?? tests.timeoutMs),
  };
}

/**
 * Runs the repository's setup commands in the workspace, once per workspace (a fresh clone — a run
 * resumed on another machine — sets up again; a later attempt in the same workspace does not). What
 * they leave untracked is excluded from commits. A failing command fails the step (code
 * `SETUP_FAILED`, not retried) with the end of its output.
 */
export async function ensureSetup(
  workspaces: Workspaces,
  ws: Workspace,
  settings: RepositorySettings,
  /** Where setup runs and the operator's cap on its time (the tests' settings). */
  tests: Pick<TestsConfig, 'sandbox' | 'timeoutMs'>,
  options: { signal?: AbortSignal | undefined; progress?: ((message: string) => void) | undefined } = {},
): Promise<{ ran: number }> {
  const { setup, network, limits } = settings.config;
  if (!setup.length) return { ran: 0 };
  const id = createHash('sha256').update(JSON.stringify(setup)).digest('hex').slice(0, 16);
  const marker = join(ws.dir, '.git', SETUP_DONE_FILE);
  if ((await readFile(marker, 'utf8').catch(() => '')).trim() === id) return { ran: 0 };
  const timeoutMs = Math.min(tests.timeoutMs, limits.setupTimeoutMs ?? tests.timeoutMs);
  for (const [i, argv] of setup.entries()) {
    options.progress?.(`setting up the workspace: ${argv.join(' ').slice(0, 120)}`);
    const result = await tests.sandbox.run({
      argv,
      workspace: ws.dir,
      timeoutMs,
      signal: options.signal,
      repositoryNetwork: network,
      fromRepository: true,
    });
    if (result.exitCode !== 0) {
      const output = outputTail(`${result.stdout}${result.stderr}`);
      throw new WorkflowError(
        `The setup command \`${argv.join(' ')}\` (setup ${i + 1} of ${setup.length} in ${REPOSITORY_CONFIG}) exited with ${result.exitCode ?? result.signal}, so the agent did not run. Fix the command or what it needs (a host it must reach goes in sandbox.network), then retry.${output ? `\n\n${output}` : ''}`,
        { code: 'SETUP_FAILED', category: 'permanent', details: { command: argv, exitCode: result.exitCode, output } },
      );
    }
  }
  await workspaces.excludeUntracked(ws, options.signal);
  await writeFile(marker, id);
  return { ran: setup.length };
}

/**
 * The repository's tests, then its lint command when the tests pass. A failing lint is a failed check
 * like a failing test: its output goes back to the agent. The output says which of the two failed.
 */
export async function runChecks(
  tests: TestsConfig,
  settings: RepositorySettings,
  job: { cwd: string; signal?: AbortSignal | undefined },
): Promise<{ passed: boolean; output: string }> {
  const effective = repositoryTests(tests, settings);
  const repository = { network: settings.config.network };
  const result = await runTests(effective, { ...job, repository });
  if (!result.passed || !settings.config.lint) return { passed: result.passed, output: result.output };
  const lint = await runTests({ ...effective, command: settings.config.lint, fromRepository: true }, { ...job, repository });
  if (lint.passed) return { passed: true, output: `${result.output}${lint.output}` };
  return {
    passed: false,
    output: `The tests passed, but the lint command \`${settings.config.lint.join(' ')}\` of ${REPOSITORY_CONFIG} failed:\n\n${lint.output}`,
  };
}

/**
 * Fails when the agent's changes touch a path the repository protects (`protectedPaths`): code
 * `PROTECTED_PATHS`, category `validation`, naming the paths and the key. Call it before committing:
 * such an attempt's changes are discarded, so nothing of it is committed or pushed.
 */
export async function checkProtectedPaths(
  workspaces: Workspaces,
  ws: Workspace,
  settings: RepositorySettings,
  signal?: AbortSignal,
): Promise<void> {
  const globs = settings.config.protectedPaths;
  if (!globs.length) return;
  const hits = protectedChanges(await workspaces.changedPaths(ws, signal), globs);
  if (!hits.length) return;
  // The attempt is thrown away: a later step of the run (another review comment) must not commit it.
  await workspaces.discardChanges(ws, signal);
  const shown = hits.slice(0, 10).map((h) => `${h.path} (${h.glob})`);
  throw new WorkflowError(
    `The agent changed ${hits.length === 1 ? 'a protected path' : `${hits.length} protected paths`}: ${shown.join(', ')}${hits.length > 10 ? ', …' : ''}. \`protectedPaths\` in ${REPOSITORY_CONFIG} forbids it, so nothing of this attempt was committed or pushed. Ask for a change that leaves these paths alone, or change protectedPaths on the default branch.`,
    { code: 'PROTECTED_PATHS', category: 'validation', details: { paths: hits.map((h) => h.path).slice(0, 100), key: 'protectedPaths' } },
  );
}

/**
 * What the agent said last: the end of its output, for a maintainer to read when its attempt changed
 * nothing. Null when it printed nothing.
 */
export function agentMessage(stdout: string, max = 1_500): string | null {
  const t = stdout.trim();
  if (!t) return null;
  return t.length > max ? `…${t.slice(-max)}` : t;
}
