/**
 * Running external commands (git, the coding agent, the repository's tests) safely: always an argv
 * array, never a shell, so untrusted text (issue bodies, branch names) is never interpreted; input on
 * stdin; a timeout and an AbortSignal that kill the process (SIGTERM, then SIGKILL); output bounded.
 */
import { spawn } from 'node:child_process';
import { basename } from 'node:path';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { WorkflowError } from '../state_machine/errors.ts';

export interface RunCommandOptions {
  cwd?: string | undefined;
  /** Written to stdin, then stdin is closed. */
  input?: string | undefined;
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  env?: Record<string, string | undefined> | undefined;
  /**
   * Start from the service's environment (default) or from nothing: sandboxed and git commands
   * get only what they are given, never the service's secrets.
   */
  inheritEnv?: boolean | undefined;
  /**
   * The program the command is about, for its span and messages, when argv[0] is a wrapper (the
   * sandbox runs `bwrap … -- node …`: the span is `exec node`).
   */
  program?: string | undefined;
  /** Keep at most this much of stdout and of stderr (the end of it). Default 1 MiB each. */
  maxOutputBytes?: number | undefined;
}

export interface CommandResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/**
 * Runs `argv` to completion. Rejects only on timeout (category `timeout`), abort (`cancelled`) or a
 * spawn failure. Each command is an `exec <program>` span, a child of the step's span (attributes: the
 * program and, for git, its sub-command; never the other arguments or the input, which may be private).
 */
export function runCommand(argv: readonly string[], options: RunCommandOptions = {}): Promise<CommandResult> {
  const program = basename(options.program ?? argv[0] ?? '');
  const name = program === 'git' && argv[1] ? `exec git ${argv[1]}` : `exec ${program}`;
  return trace.getTracer('rmapp').startActiveSpan(name, { attributes: { 'process.executable.name': program } }, (span) =>
    spawnCommand(argv, options).then(
      (result) => {
        span.setAttribute('process.exit.code', result.exitCode ?? -1);
        if (result.exitCode !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message: `exit ${result.exitCode ?? result.signal}` });
        span.end();
        return result;
      },
      (err: unknown) => {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        span.end();
        throw err;
      },
    ),
  );
}

function spawnCommand(argv: readonly string[], options: RunCommandOptions): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('runCommand: empty command');
  const shown = options.program ?? file;
  const max = options.maxOutputBytes ?? 1024 * 1024;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(options.signal.reason);
    const child = spawn(file, args, { cwd: options.cwd, env: options.inheritEnv === false ? { ...options.env } : { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'], shell: false });
    let stdout = '';
    let stderr = '';
    const keep = (acc: string, chunk: Buffer) => {
      const next = acc + chunk.toString('utf8');
      return next.length > max ? next.slice(next.length - max) : next;
    };
    child.stdout.on('data', (d: Buffer) => (stdout = keep(stdout, d)));
    child.stderr.on('data', (d: Buffer) => (stderr = keep(stderr, d)));
    let failure: Error | null = null;
    const kill = (reason: Error) => {
      if (failure) return;
      failure = reason;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 2_000).unref();
    };
    const timer = options.timeoutMs
      ? setTimeout(
          () => kill(new WorkflowError(`${shown} did not finish within ${options.timeoutMs} ms.`, { code: 'COMMAND_TIMEOUT', category: 'timeout', details: { command: shown } })),
          options.timeoutMs,
        )
      : undefined;
    const onAbort = () => kill(options.signal?.reason instanceof Error ? options.signal.reason : new WorkflowError(`${shown} was cancelled.`, { code: 'CANCELLED', category: 'cancelled' }));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      reject(new WorkflowError(`Could not run ${file}: ${err.message}`, { code: 'COMMAND_NOT_RUNNABLE', category: 'permanent', cause: err }));
    });
    child.on('close', (exitCode, sig) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (failure) return reject(failure);
      resolve({ exitCode, signal: sig, stdout, stderr, durationMs: Date.now() - started });
    });
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    child.stdin.end(options.input ?? '');
  });
}
