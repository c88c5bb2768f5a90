/**
 * Ctrl-C (SIGINT) or SIGTERM in a command that executes a run in its own process: `rmapp start --wait`
 * and `rmapp run`. They run a worker in-process, so a signal that killed them (Node's default) left the
 * run leased by a process that was gone — on Postgres no other worker took it before its lease expired
 * (30 s by default) — and said nothing of the run. Here the first signal stops that worker as `rmapp
 * worker` stops (README "Postgres and several workers": running steps finish within the grace, leases
 * are released, another worker takes the run at once) and the command names the run and how it goes on;
 * a second signal stops at once, as it does for `rmapp worker`.
 */
import type { Engine } from '../../state_machine/engine.ts';
import { DEFAULT_ENGINE_OPTIONS } from '../../state_machine/engine-options.ts';
import { exitNow } from './early-signals.ts';
import { rmappCommand, runsCommand } from './shell-word.ts';

/** What {@link onForegroundStop} gives the command. */
export interface ForegroundStop {
  /** Aborted by the first SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
  /** The first signal, once one came. */
  signalled(): NodeJS.Signals | null;
  /** Takes the handler off (the command ended). */
  dispose(): void;
}

/**
 * Installs the SIGINT/SIGTERM handler of a foreground run for `command` (`start`, `run`, `demo`): the
 * first signal aborts {@link ForegroundStop.signal} and says how long running steps may take (`graceMs`,
 * the engine's by default) and what happens next (`afterwards`: by default that the run is handed over);
 * a second one exits at once (exit 130/143, as `rmapp worker` does).
 */
export function onForegroundStop(
  command: string,
  {
    graceMs = DEFAULT_ENGINE_OPTIONS.stopGraceMs,
    afterwards = 'then the run is left to the workers',
  }: { graceMs?: number; afterwards?: string } = {},
): ForegroundStop {
  const controller = new AbortController();
  let first: NodeJS.Signals | null = null;
  const handler = (sig: NodeJS.Signals) => {
    if (first) exitNow(command, sig);
    first = sig;
    process.stderr.write(
      `rmapp ${command}: ${sig}, stopping: running steps finish (up to ${graceMs / 1000} s), ${afterwards}; ${sig} again stops at once.\n`,
    );
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    signalled: () => first,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/**
 * After the stop: the line naming the run that did not finish here and how it goes on — on Postgres any
 * worker of the database resumes it and `runs watch` follows it; on the embedded store, which one process
 * holds, the next `rmapp worker` (or `serve`) resumes it and `runs show` reads it once that stopped. Sets
 * the exit code a shell expects of a command ended by that signal (130, 143).
 */
export function reportStopped(command: string, runId: string, sig: NodeJS.Signals, status: string, embedded: boolean): void {
  const next = embedded
    ? `\`${rmappCommand('worker')}\` (or \`${rmappCommand('serve')}\`) resumes it from its last durable state; \`${runsCommand('show', runId)}\` shows it`
    : `a worker on this database (\`${rmappCommand('worker')}\`) resumes it from its last durable state; \`${runsCommand('watch', runId)}\` follows it`;
  process.stderr.write(`rmapp ${command}: stopped by ${sig}; run ${runId} did not finish here (it was ${status}): ${next}.\n`);
  process.exitCode = sig === 'SIGINT' ? 130 : 143;
}

/** Whether `engine` runs on the embedded store (one process at a time), read before it stops. */
export async function isEmbedded(engine: Engine): Promise<boolean> {
  return (await engine.db()).soleHolder === true;
}

/**
 * `rmapp start --wait` on the embedded store, of a run that waits for an event (and no timer due within
 * a minute): this command holds the store, so no other process can send the event — the command waited
 * for ever, printing nothing (a new user's pass through the README, with its `order` workflow that waits
 * a day for `approve`). The line names the way out; null when there is nothing to say.
 */
export function embeddedWaitHint(runId: string, status: string, wakeAt: Date | null, now = Date.now()): string | null {
  if (status !== 'waiting' || (wakeAt !== null && wakeAt.getTime() - now <= 60_000)) return null;
  const timer = wakeAt ? ` (or its timer, at ${wakeAt.toISOString()})` : '';
  return (
    `rmapp start: run ${runId} waits for an event${timer}, and this command holds the embedded store, so no other process can send one: ` +
    `Ctrl-C keeps the run where it is; then \`${runsCommand('send', runId, { rest: `'{"type":"…"}'` })}\` and \`${rmappCommand('worker')}\` go on with it ` +
    `(on Postgres, DATABASE_URL=postgres://…, \`runs send\` works while this command waits).`
  );
}
