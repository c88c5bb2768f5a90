/**
 * The coding agent is an external command the user configures (e.g. `claude -p --output-format json`,
 * `codex exec`, `aider --message-file -`): it runs in the run's workspace with the prompt on stdin,
 * inside the sandbox (src/rmapp/sandbox/), as does the repository's test command.
 */
import { AgentError } from '../state_machine/errors.ts';
import type { CommandResult } from './process.ts';
import type { Sandbox } from './sandbox/index.ts';

export interface AgentConfig {
  /** argv of the agent; the prompt goes to its stdin. */
  command: readonly string[];
  timeoutMs: number;
  /** Where it runs: never the service's own process environment. */
  sandbox: Sandbox;
  /** Names of environment variables only the agent receives (its API key), never the tests. */
  env?: readonly string[] | undefined;
  /** Host names only the agent may reach (its API), besides the sandbox's allowlist. */
  network?: readonly string[] | undefined;
}

/** What a test run adds for one repository: the hosts its `.github/rmapp.yml` asks for (never the agent's). */
export interface RepositoryPolicy {
  network?: readonly string[] | undefined;
}

/** Runs the agent; a non-zero exit is an {@link AgentError} (category `agent`) carrying the end of its stderr. */
export async function runAgent(
  config: AgentConfig,
  job: { cwd: string; prompt: string; signal?: AbortSignal | undefined },
): Promise<CommandResult> {
  const result = await config.sandbox.run({
    argv: config.command,
    workspace: job.cwd,
    input: job.prompt,
    timeoutMs: config.timeoutMs,
    signal: job.signal,
    env: config.env,
    // Only the operator's hosts: the agent holds its API key, and a repository's `.github/rmapp.yml`
    // is written by whoever can push to it; its hosts are for the tests (runTests), which hold no key.
    network: config.network,
  });
  if (result.exitCode !== 0) {
    throw new AgentError(
      `The coding agent (${config.command[0]}) exited with ${result.exitCode ?? result.signal}: ${result.stderr.trim().slice(-500) || 'no output'}`,
      {
        exitCode: result.exitCode,
        stderr: result.stderr.slice(-4000),
      },
    );
  }
  return result;
}

/** The repository's test command and where it runs. */
export interface TestsConfig {
  command: readonly string[];
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
    network: job.repository?.network,
  });
  return {
    passed: result.exitCode === 0,
    exitCode: result.exitCode,
    output: `${result.stdout}${result.stderr}`.slice(-64 * 1024),
    durationMs: result.durationMs,
  };
}
