/**
 * Running external commands (git, the coding agent, the repository's tests) safely: always an argv
 * array, never a shell, so untrusted text (issue bodies, branch names) is never interpreted; input on
 * stdin; a timeout and an AbortSignal that kill the process (SIGTERM, then SIGKILL); output bounded.
 *
 * Why not execa: its `maxBuffer` keeps the *start* of the output and fails the command when it is
 * exceeded, where a test run's or an agent's useful part is its end (the failure summary) and an
 * oversized output is not a failure of the command; its own timeout and cancellation would also
 * need wrapping to give our `timeout` / `cancelled` errors. What it would fix here — decoding whole
 * characters and counting bytes — is `OutputTail` below, a dozen lines.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { WorkflowError } from '../state_machine/errors.ts';

/** The longest delay setTimeout keeps (2^31-1 ms); a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

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
  /**
   * Each chunk of stdout as it arrives (the agent's transcript is parsed while it streams, so a budget
   * can stop it and the session is visible live). The kept tail is unaffected. An exception it throws
   * kills the command and becomes its rejection.
   */
  onStdout?: ((chunk: Buffer) => void) | undefined;
  /** Each chunk of stderr as it arrives (see {@link RunCommandOptions.onStdout}). */
  onStderr?: ((chunk: Buffer) => void) | undefined;
  /** Between SIGTERM and SIGKILL when the command is stopped (timeout, abort). Default 2 s. */
  killGraceMs?: number | undefined;
  /**
   * SIGKILL what is left of the command's process group the moment the command itself exits, even what
   * holds none of its output (a server a test started in the background, its output sent elsewhere).
   * The sandbox's `none` and `container` drivers set it: their command is a guard that has already done
   * so (sandbox/die-with-parent.ts); this catches a command that killed its guard. Default: only what
   * still holds stdout or stderr open after the grace period is killed.
   */
  killGroupOnExit?: boolean | undefined;
  /**
   * When the grace period of a stopped command (timeout, abort) ends, this signal to the command itself
   * instead of SIGKILL to its group, and the group's SIGKILL only a grace period later if the command is
   * still there. The sandbox's guard (sandbox/die-with-parent.ts) takes it to SIGKILL all the command
   * left, in every process group of its session: a SIGKILL to its own group killed the guard first,
   * leaving what `timeout` had moved to a group of its own. Default: SIGKILL to the group.
   */
  stopSignal?: NodeJS.Signals | undefined;
  /**
   * Open descriptor 3 of the command as a pipe to the service, and return what is written to it as the
   * result's `diagnostics`. The sandbox's wrappers (sandbox/die-with-parent.ts, the bubblewrap driver's
   * exec check) say there that the command could not be started, and close it before the command
   * starts: the command cannot write it, so — unlike its stderr — what comes on it is rmapp's own word.
   */
  diagnostics?: boolean | undefined;
  /**
   * Hand the command this process's own stderr as its descriptor 4. The sandbox's guard writes there
   * what its clean-up could not remove (sandbox/die-with-parent.ts): after the service has died, when
   * no pipe to it is read any more, its stderr (a terminal, a journal) still is.
   */
  serviceStderr?: boolean | undefined;
}

export interface CommandResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** What came on descriptor 3 (the first 4 KiB), when {@link RunCommandOptions.diagnostics} opened it. */
  diagnostics?: string;
}

/** What is kept of {@link CommandResult.diagnostics}: a line or two is all a wrapper says. */
const MAX_DIAGNOSTICS_BYTES = 4096;

/**
 * What of a command cannot be handed to a program because it holds a NUL byte — `argument 2 of the
 * command` (argv's index: 0 is the program), the value or the name of an environment variable — or
 * null when nothing does. A program gets its arguments and environment as C strings, which end at the first
 * NUL, so Node refuses them with a TypeError that names its own internal index (`args[10]` of the
 * sandbox's guard, not the command's argument) and quotes the value: callers turn this into an error
 * of their own instead (COMMAND_NOT_RUNNABLE), naming the command's own argument and never its text.
 */
export function nulByteIn(argv: readonly string[], env: Record<string, string | undefined> = {}): string | null {
  const i = argv.findIndex((a) => a.includes('\0'));
  if (i === 0) return "the command's program name";
  if (i > 0) return `argument ${i} of the command (counting from 0, the program)`;
  for (const [name, value] of Object.entries(env)) {
    if (name.includes('\0')) return `the name of the environment variable that starts ${JSON.stringify(name.slice(0, name.indexOf('\0')))}`;
    if (value?.includes('\0')) return `the value of the environment variable ${name}`;
  }
  return null;
}

/** The COMMAND_NOT_RUNNABLE error for a command {@link nulByteIn} found a NUL byte in (`where`). */
export function nulByteError(program: string, where: string, context = ''): WorkflowError {
  // The program's own name may be what holds it: shown escaped (a NUL in an error is refused where it is stored).
  program = program.replaceAll('\0', '\\0');
  return new WorkflowError(
    `Could not run ${program}${context}: ${where} holds a NUL byte (\\0), and NUL bytes cannot be passed to a program (its arguments and environment are C strings, which end at the first NUL) — remove it from the command.`,
    { code: 'COMMAND_NOT_RUNNABLE', category: 'permanent', details: { command: program, nulByteIn: where } },
  );
}

/**
 * Runs `argv` to completion. Rejects only on timeout (category `timeout`), abort (`cancelled`) or a
 * spawn failure (COMMAND_NOT_RUNNABLE: not found, or a NUL byte in an argument or the environment). Each command is an `exec <program>` span, a child of the step's span (attributes: the
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

/**
 * Process groups of the commands running now. Each command has its own group (so a terminal's Ctrl-C
 * no longer reaches it): when the service exits, what it still runs is killed with it.
 */
const live = new Set<number>();
process.once('exit', () => {
  for (const pid of live) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function spawnCommand(argv: readonly string[], options: RunCommandOptions): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('runCommand: empty command');
  const shown = options.program ?? file;
  const max = options.maxOutputBytes ?? 1024 * 1024;
  const grace = options.killGraceMs ?? 2_000;
  // setTimeout fires at once for more than 2^31-1 ms (about 24.8 days): a longer timeout is that long.
  const timeoutMs = options.timeoutMs ? Math.min(options.timeoutMs, MAX_TIMER_MS) : undefined;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(options.signal.reason);
    const nul = nulByteIn(argv, options.env);
    if (nul) return reject(nulByteError(shown, nul));
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.inheritEnv === false ? { ...options.env } : { ...process.env, ...options.env },
      stdio: [
        'pipe',
        'pipe',
        'pipe',
        ...(options.diagnostics ? ['pipe' as const] : options.serviceStderr ? ['ignore' as const] : []),
        ...(options.serviceStderr ? [2] : []),
      ],
      shell: false,
      // Its own process group, so stopping it stops what it started too (an agent's children; the
      // sandbox's namespace does that for sandboxed commands, not for `sandbox.driver: none` or git).
      detached: true,
      // Descriptors 0-2 are always pipes; 3 and 4 are extra (`diagnostics`, `serviceStderr`).
    }) as ChildProcessWithoutNullStreams;
    if (child.pid !== undefined) live.add(child.pid);
    const signal = (sig: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        child.kill(sig); // the group is gone (or was never made): the process itself, if it is still there
      }
    };
    const stdout = new OutputTail(max);
    const stderr = new OutputTail(max);
    const diagnosticsPipe = options.diagnostics ? (child.stdio[3] as Readable | null) : null;
    const diagnostics: Buffer[] = [];
    let diagnosticsBytes = 0;
    diagnosticsPipe?.on('data', (d: Buffer) => {
      if (diagnosticsBytes < MAX_DIAGNOSTICS_BYTES) diagnostics.push(d.subarray(0, MAX_DIAGNOSTICS_BYTES - diagnosticsBytes));
      diagnosticsBytes += d.length;
    });
    diagnosticsPipe?.on('error', () => {});
    let failure: Error | null = null;
    const running = () => child.exitCode === null && child.signalCode === null;
    const kill = (reason: Error) => {
      if (failure) return;
      failure = reason;
      signal('SIGTERM');
      setTimeout(() => {
        if (!options.stopSignal) return signal('SIGKILL');
        if (!running()) return;
        child.kill(options.stopSignal);
        setTimeout(() => running() && signal('SIGKILL'), grace).unref();
      }, grace).unref();
    };
    const observe = (observer: ((chunk: Buffer) => void) | undefined, chunk: Buffer) => {
      if (!observer || failure) return;
      try {
        observer(chunk);
      } catch (err) {
        kill(err instanceof Error ? err : new Error(String(err)));
      }
    };
    child.stdout.on('data', (d: Buffer) => {
      stdout.push(d);
      observe(options.onStdout, d);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr.push(d);
      observe(options.onStderr, d);
    });
    const timer = timeoutMs
      ? setTimeout(
          () =>
            kill(
              new WorkflowError(`${shown} did not finish within ${options.timeoutMs} ms.`, {
                code: 'COMMAND_TIMEOUT',
                category: 'timeout',
                details: { command: shown },
              }),
            ),
          timeoutMs,
        )
      : undefined;
    const onAbort = () =>
      kill(
        options.signal?.reason instanceof Error
          ? options.signal.reason
          : new WorkflowError(`${shown} was cancelled.`, { code: 'CANCELLED', category: 'cancelled' }),
      );
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      reject(
        new WorkflowError(`Could not run ${file}: ${err.message}`, { code: 'COMMAND_NOT_RUNNABLE', category: 'permanent', cause: err }),
      );
    });
    // The process ended, but something it started may still hold its stdout or stderr open (a server a
    // test script left running): 'close' would wait for that forever. After the grace period the rest
    // of its process group is killed and the pipes are closed from this end.
    child.on('exit', () => {
      if (options.killGroupOnExit) signal('SIGKILL');
      const ended = () => child.stdout.readableEnded && child.stderr.readableEnded && (diagnosticsPipe?.readableEnded ?? true);
      // Checked twice, a loop turn apart: output already in the pipe is read first even when the
      // event loop was held up past the grace period (the first timer may run before that read).
      setTimeout(() => {
        if (ended()) return;
        setTimeout(() => {
          if (ended()) return;
          signal('SIGKILL');
          child.stdout.destroy();
          child.stderr.destroy();
          diagnosticsPipe?.destroy();
        }, 50).unref();
      }, grace).unref();
    });
    child.on('close', (exitCode, sig) => {
      if (child.pid !== undefined) live.delete(child.pid);
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (failure) return reject(failure);
      resolve({
        exitCode,
        signal: sig,
        stdout: stdout.text(),
        stderr: stderr.text(),
        durationMs: Date.now() - started,
        ...(diagnosticsPipe ? { diagnostics: Buffer.concat(diagnostics).toString('utf8') } : {}),
      });
    });
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    child.stdin.end(options.input ?? '');
  });
}

/**
 * The last `maxBytes` bytes of a stream, decoded once at the end. The chunks are kept as bytes because a
 * chunk boundary can fall inside a multi-byte UTF-8 character (decoding each chunk on its own turns both
 * halves into U+FFFD), and the limit counts bytes, not UTF-16 code units. Memory stays within the limit
 * plus one chunk.
 */
class OutputTail {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    // Drop whole chunks that lie entirely before the last maxBytes.
    while (this.chunks.length > 1 && this.bytes - (this.chunks[0] as Buffer).length >= this.maxBytes) {
      this.bytes -= (this.chunks.shift() as Buffer).length;
    }
  }

  /** The kept bytes as text, starting at a character boundary: a character cut by the limit is left out whole. */
  text(): string {
    const all = Buffer.concat(this.chunks, this.bytes);
    let start = Math.max(0, all.length - this.maxBytes);
    // UTF-8 continuation bytes are 10xxxxxx: step over those of a character whose first byte was cut off.
    while (start < all.length && ((all[start] as number) & 0xc0) === 0x80) start++;
    return all.subarray(start).toString('utf8');
  }
}
