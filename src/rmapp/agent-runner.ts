/**
 * The coding agent is an external command the user configures (e.g. `claude -p --output-format json`,
 * `codex exec`, `aider --message-file -`): it runs in the run's workspace with the prompt on stdin.
 */
import { AgentError } from '../state_machine/errors.ts';
import { runCommand, type CommandResult } from './process.ts';

export interface AgentConfig {
  /** argv of the agent; the prompt goes to its stdin. */
  command: readonly string[];
  timeoutMs: number;
  env?: Record<string, string | undefined> | undefined;
}

/** Runs the agent; a non-zero exit is an {@link AgentError} (category `agent`) carrying the end of its stderr. */
export async function runAgent(config: AgentConfig, job: { cwd: string; prompt: string; signal?: AbortSignal | undefined }): Promise<CommandResult> {
  const result = await runCommand(config.command, { cwd: job.cwd, input: job.prompt, timeoutMs: config.timeoutMs, signal: job.signal, env: config.env });
  if (result.exitCode !== 0) {
    throw new AgentError(`The coding agent (${config.command[0]}) exited with ${result.exitCode ?? result.signal}: ${result.stderr.trim().slice(-500) || 'no output'}`, {
      exitCode: result.exitCode,
      stderr: result.stderr.slice(-4000),
    });
  }
  return result;
}

/** The repository's own test command. A failing run is a result, not an exception: the machine decides. */
export async function runTests(
  config: { command: readonly string[]; timeoutMs: number; env?: Record<string, string | undefined> | undefined },
  job: { cwd: string; signal?: AbortSignal | undefined },
): Promise<{ passed: boolean; exitCode: number | null; output: string; durationMs: number }> {
  const result = await runCommand(config.command, { cwd: job.cwd, timeoutMs: config.timeoutMs, signal: job.signal, env: config.env });
  return { passed: result.exitCode === 0, exitCode: result.exitCode, output: `${result.stdout}${result.stderr}`.slice(-64 * 1024), durationMs: result.durationMs };
}
