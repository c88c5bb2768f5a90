/**
 * The coding agent is an external command the operator configures (`agent.kind`: Claude Code, Codex,
 * aider, or any `command`): it runs in the run's workspace, inside the sandbox (src/rmapp/sandbox/), as
 * does the repository's test command. The prompt is never in argv: it goes to stdin, or to a file in
 * the workspace for agents that read one (aider).
 *
 * While the agent runs, its output is parsed by the kind's adapter (src/rmapp/agents/) into a
 * transcript — turns, tool calls, tokens, cost — which is saved as an artifact of the step every
 * {@link AgentConfig.saveIntervalMs} (so the dashboard shows the session live), checked against the
 * run's budget after each event (the agent is stopped at once when it passes a limit), and returned.
 */
import { storableText } from './webhooks/event.ts';
import { StringDecoder } from 'node:string_decoder';
import { dirname } from 'node:path';
import { realpathSync } from 'node:fs';
import { AgentError, WorkflowError, toErrorData } from '../state_machine/errors.ts';
import type { StepContext } from '../state_machine/step.ts';
import {
  adapterFor,
  addUsages,
  budgetExceeded,
  timeLeftMs,
  TranscriptBuilder,
  usageOf,
  ZERO_USAGE,
  type AgentBudget,
  type AgentKind,
  type AgentUsage,
  type SessionFiles,
  type Transcript,
  type TranscriptStatus,
} from './agents/index.ts';
import { LineSplitter } from './agents/lines.ts';
import { createSessionFiles, readChatHistory, removeSessionFiles } from './agents/session-files.ts';
import type { Masker } from './masking.ts';
import { MAX_TIMER_MS, type CommandResult } from './process.ts';
import type { Sandbox } from './sandbox/index.ts';

export interface AgentConfig {
  /** Which agent, so how its output is read. Default `command`. */
  kind?: AgentKind | undefined;
  /** argv of the agent (for `claude-code`, `codex`, `aider`: the program and extra flags; empty: the kind's default). */
  command: readonly string[];
  timeoutMs: number;
  /** Where it runs: never the service's own process environment. */
  sandbox: Sandbox;
  /** Names of environment variables only the agent receives (its API key), never the tests. */
  env?: readonly string[] | undefined;
  /** Host names only the agent may reach (its API), besides the sandbox's allowlist. */
  network?: readonly string[] | undefined;
  /** The run's limits on turns, tokens, cost and time (summed over the run's agent sessions). */
  budget?: AgentBudget | undefined;
  /** Masks the stored transcript (the API masks again on the way out). */
  masker?: Masker | undefined;
  /** How often the live transcript is saved while the agent runs. Default 1 s. */
  saveIntervalMs?: number | undefined;
}

/** What a repository adds for one run: the hosts its `.github/rmapp.yml` asks for (never the agent's). */
export interface RepositoryPolicy {
  network?: readonly string[] | undefined;
}

/**
 * Where a session's transcript goes: the step's artifacts. A step passes its own context
 * (`runAgent(agent, { …, session: ctx })`); without one the transcript is only returned.
 */
export type AgentSession = Pick<StepContext<unknown>, 'saveArtifact' | 'getArtifact' | 'stepPath' | 'attempt' | 'idempotencyKey'>;

/** What {@link runAgent} returns: the process's result, the agent's answer, its transcript and usage. */
export interface AgentResult extends CommandResult {
  /** The agent's final message (its answer; for `command`, its stdout). */
  text: string;
  /** The transcript as stored (masked). */
  transcript: Transcript;
  /** This session's usage. */
  usage: AgentUsage;
  /** The artifact the transcript is in (null without a session). */
  artifact: string | null;
}

/** The artifact that holds the run's agent usage (every session's, by transcript name). */
export const AGENT_USAGE_ARTIFACT = 'agent-usage';
/** The prefix of transcript artifacts: `transcript/<step path>/attempt-<n>[/<k>]`. */
export const TRANSCRIPT_PREFIX = 'transcript/';
/** The agent gets this long between SIGTERM and SIGKILL when it is stopped: cancelling stops it within a second. */
const AGENT_KILL_GRACE_MS = 800;

interface UsageRecord {
  total: AgentUsage;
  sessions: Record<string, AgentUsage>;
}

/** Sessions started per step attempt, so that a second call (a re-ask) gets its own artifact. */
const sessionsStarted = new WeakMap<object, number>();

function transcriptName(session: AgentSession): string {
  const n = (sessionsStarted.get(session) ?? 0) + 1;
  sessionsStarted.set(session, n);
  // The idempotency key is `<run>/<path>` or `<run>/<path>#<execution>` (a loop's later executions).
  const key = session.idempotencyKey.slice(session.idempotencyKey.indexOf('/') + 1) || session.stepPath;
  return `${TRANSCRIPT_PREFIX}${key}/attempt-${session.attempt}${n > 1 ? `/${n}` : ''}`;
}

/**
 * Runs the agent; a non-zero exit (or the agent's own error report) is an {@link AgentError} (category
 * `agent`) carrying the end of its output. A passed budget is `AGENT_BUDGET_EXCEEDED` (category `agent`,
 * or `timeout` for time); a timeout is `timeout`; cancellation is `cancelled`. The transcript is saved in
 * every case.
 */
export async function runAgent(
  config: AgentConfig,
  job: { cwd: string; prompt: string; signal?: AbortSignal | undefined; session?: AgentSession | undefined },
): Promise<AgentResult> {
  const kind = config.kind ?? 'command';
  const adapter = adapterFor(kind);
  const problems = adapter.check(config.command);
  if (problems.length)
    throw new WorkflowError(`The agent is misconfigured: ${problems.join('; ')}.`, { code: 'AGENT_CONFIG', category: 'permanent' });
  const session = job.session;
  const name = session ? transcriptName(session) : null;
  const record = session ? await loadUsage(session) : null;
  if (record && name && record.sessions[name]) {
    // This session ran before and its step runs again (the worker stopped mid-step): what that run of
    // the agent spent was spent, so it stays counted under its own entry (the transcript is replaced).
    let k = 1;
    while (record.sessions[`${name}~interrupted-${k}`]) k += 1;
    record.sessions[`${name}~interrupted-${k}`] = record.sessions[name];
    delete record.sessions[name];
  }
  // What the run spent before this session.
  const before = record
    ? Object.entries(record.sessions)
        .filter(([n]) => n !== name)
        .reduce((sum, [, u]) => addUsages(sum, u), { ...ZERO_USAGE })
    : { ...ZERO_USAGE };

  const files: SessionFiles | null = adapter.usesFiles ? await createSessionFiles(job.cwd, job.prompt) : null;
  const argv = adapter.argv(config.command, files ?? { dir: '', prompt: '', chatHistory: '', inputHistory: '' });
  const program = argv[0] ?? kind;
  const transcript = new TranscriptBuilder(kind, program, undefined, {
    name: session?.stepPath ?? null,
    attempt: session?.attempt ?? null,
  });
  const parser = adapter.parser(transcript);
  const stop = new AbortController();
  const onAbort = () => stop.abort(job.signal?.reason);
  if (job.signal?.aborted) onAbort();
  job.signal?.addEventListener('abort', onAbort, { once: true });

  // Saving: at most every saveIntervalMs while it runs, one at a time, and once at the end.
  let saved = -1;
  let saving: Promise<void> = Promise.resolve();
  const save = (final: boolean) => {
    if (!session || !name || (!final && saved === transcript.changes)) return saving;
    saved = transcript.changes;
    const snapshot = transcript.snapshot(config.masker);
    const usage = snapshot.usage;
    saving = saving
      .then(async () => {
        await session.saveArtifact(name, snapshot);
        const sessions = { ...(record?.sessions ?? {}), [name]: usage };
        if (record) record.sessions = sessions;
        await session.saveArtifact(AGENT_USAGE_ARTIFACT, { total: addUsages(before, usage), sessions } satisfies UsageRecord);
      })
      // A failed live save is not the agent's failure: the final one reports its own error.
      .catch((err: unknown) => {
        if (final) throw err;
      });
    return saving;
  };
  const saver = setInterval(() => void save(false), config.saveIntervalMs ?? 1000);
  saver.unref();

  // The budget, after every line the agent prints and on a timer for time.
  const checkBudget = (starting = false) => {
    if (stop.signal.aborted) return;
    const over = budgetExceeded(config.budget, addUsages(before, { ...transcript.usage, durationMs: transcript.elapsedMs() }), {
      starting,
    });
    if (over) stop.abort(over);
  };
  const left = timeLeftMs(config.budget, before);
  let timeBudget: NodeJS.Timeout | undefined;
  const watchTime = (ms: number) => {
    timeBudget = setTimeout(() => {
      checkBudget();
      if (!stop.signal.aborted) watchTime(50); // the clocks may differ by a little
    }, ms);
    timeBudget.unref();
  };
  // Past setTimeout's longest delay the session's own timeout (agent.timeout) ends it first.
  if (Number.isFinite(left)) watchTime(Math.min(Math.max(0, left) + 1, MAX_TIMER_MS));
  // A chunk may end inside a character: the decoder keeps the partial bytes for the next one.
  const stderrText = new StringDecoder('utf8');
  const lines = new LineSplitter((line, truncated) => {
    try {
      parser.line(line, truncated);
    } catch (err) {
      // A line the adapter cannot take (JSON nested deeper than the stack: parse succeeds, stringify
      // overflows) is the agent's output, not a reason to kill it: kept as text, with why.
      transcript.error(`rmapp could not read a line of the agent's output (${(err as Error).message}); it is kept as text.`);
      transcript.output('stdout', `${line}\n`);
    }
    checkBudget();
  });

  let result: CommandResult;
  try {
    checkBudget(true); // a run whose budget is already used up starts no agent
    if (stop.signal.aborted) throw stop.signal.reason;
    result = await config.sandbox.run({
      argv,
      workspace: job.cwd,
      input: files ? '' : job.prompt,
      timeoutMs: config.timeoutMs,
      signal: stop.signal,
      env: config.env,
      // Only the operator's hosts: the agent holds its API key, and a repository's `.github/rmapp.yml`
      // is written by whoever can push to it; its hosts are for the tests (runTests), which hold no key.
      network: config.network,
      onStdout: (chunk) => lines.push(chunk),
      onStderr: (chunk) => transcript.output('stderr', stderrText.write(chunk)),
      killGraceMs: AGENT_KILL_GRACE_MS,
    });
    lines.end();
    const chatHistory = files ? await readChatHistory(job.cwd, files) : null;
    parser.end({ exitCode: result.exitCode, stdout: result.stdout, chatHistory });
  } catch (err) {
    const data = toErrorData(err);
    const status: TranscriptStatus =
      data.code === 'AGENT_BUDGET_EXCEEDED'
        ? 'budget_exceeded'
        : data.category === 'cancelled'
          ? 'cancelled'
          : data.category === 'timeout'
            ? 'timed_out'
            : 'failed';
    transcript.finish(status, data.message);
    throw await finished(err);
  } finally {
    clearInterval(saver);
    clearTimeout(timeBudget);
    job.signal?.removeEventListener('abort', onAbort);
    if (files) await removeSessionFiles(job.cwd, files).catch(() => {});
  }

  /** Saves the final transcript of a failed session; the session's own error is the one that matters. */
  async function finished<E>(err: E): Promise<E> {
    await save(true).catch(() => {});
    return err;
  }

  // The workspace's path on the host (visible inside in /proc/1/cmdline and /proc/self/mountinfo) is
  // the service's layout, not the agent's to tell: its message and its summary are quoted on GitHub
  // (a summary repeating /proc/1/cmdline put the path in the pull request's description).
  const hidePath = (text: string) => hostPathsHidden(text, job.cwd);
  const failure = parser.failure();
  if (result.exitCode !== 0 || failure) {
    const said = hidePath(failure ?? (result.stderr.trim().slice(-500) || result.stdout.trim().slice(-500) || 'no output'));
    const message = `The coding agent (${program}) ${result.exitCode === 0 ? 'reported an error' : `exited with ${result.exitCode ?? result.signal}`}: ${said}`;
    transcript.finish('failed', message);
    throw await finished(
      new AgentError(message, { exitCode: result.exitCode, stderr: hidePath(result.stderr.slice(-4000)), transcript: name }),
    );
  }
  transcript.finish('succeeded');
  await save(true);
  const stored = transcript.snapshot(config.masker);
  return { ...result, text: hidePath(transcript.result ?? result.stdout), transcript: stored, usage: stored.usage, artifact: name };
}

/**
 * `text` with the workspace's host path, and the folder of workspaces holding it, written as the
 * sandbox names them (`/workspace`; `/workspace/..` for the folder) — under the path the service gave and
 * the path the kernel shows (`/proc/self/mountinfo` has the real one when the root is a symlink), and
 * JSON-escaped (`\/`). A path is replaced only where it ends (a `/`, a quote, a space…): a sibling
 * `<workspace>0` is not rewritten. Paths shorter than two segments are left alone: replacing `/tmp`
 * would rewrite any text.
 */
export function hostPathsHidden(text: string, workspace: string): string {
  const paths = new Map<string, string>();
  const add = (path: string, as: string) => {
    const clean = path.replace(/\/+$/, '');
    if (clean.split('/').filter(Boolean).length < 2 || paths.has(clean)) return;
    paths.set(clean, as);
    paths.set(clean.replaceAll('/', '\\/'), as.replaceAll('/', '\\/'));
  };
  for (const ws of new Set([workspace, realPath(workspace)])) {
    add(ws, '/workspace');
    add(dirname(ws), '/workspace/..');
  }
  let out = text;
  // Longest first: the workspace before the folder that holds it.
  for (const [path, as] of [...paths].sort((a, b) => b[0].length - a[0].length)) {
    out = out.replace(new RegExp(`${escapeRegExp(path)}(?![\\w.-])`, 'g'), as);
  }
  return out;
}

function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function loadUsage(session: AgentSession): Promise<UsageRecord> {
  const value = (await session.getArtifact<UsageRecord>(AGENT_USAGE_ARTIFACT).catch(() => undefined)) ?? null;
  const sessions: Record<string, AgentUsage> = {};
  if (value && typeof value === 'object' && value.sessions && typeof value.sessions === 'object')
    for (const [n, u] of Object.entries(value.sessions)) sessions[n] = usageOf({ usage: u });
  return { total: usageOf({ usage: value?.total }), sessions };
}

/** The repository's test command and where it runs. */
export interface TestsConfig {
  command: readonly string[];
  /** `command` is the repository's (`.github/rmapp.yml`), not the operator's: see `SandboxJob.fromRepository`. */
  fromRepository?: boolean | undefined;
  timeoutMs: number;
  sandbox: Sandbox;
}

/** The repository's own test command. A failing run is a result, not an exception: the machine decides. */
export async function runTests(
  config: TestsConfig,
  job: { cwd: string; signal?: AbortSignal | undefined; repository?: RepositoryPolicy | undefined },
): Promise<{ passed: boolean; exitCode: number | null; output: string; durationMs: number }> {
  const result = await config.sandbox.run({
    argv: config.command,
    workspace: job.cwd,
    timeoutMs: config.timeoutMs,
    signal: job.signal,
    repositoryNetwork: job.repository?.network,
    fromRepository: config.fromRepository,
  });
  return {
    passed: result.exitCode === 0,
    exitCode: result.exitCode,
    // The run keeps it (its context, an artifact): a NUL the tests printed, or a pair the cut split,
    // would make the run's next write fail, so they become U+FFFD.
    output: storableText(`${result.stdout}${result.stderr}`.slice(-64 * 1024)),
    durationMs: result.durationMs,
  };
}
