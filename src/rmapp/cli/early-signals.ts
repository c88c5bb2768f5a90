/**
 * SIGTERM and SIGINT that arrive while the CLI loads. Loading `rmapp` takes ~0.2–0.7 s before a
 * command's action runs and installs its own handler; a signal then used to kill the process (exit
 * 143/130) — harmless (nothing is claimed yet) but not the clean stop a supervisor expects of `rmapp
 * worker` and `rmapp serve`. `bin/rmapp.mjs` records them from its first line (under a registered
 * symbol, so that this module needs no import from the bin script); the long-running commands take them
 * over with their own handler, and every other command gets the default behaviour back: a recorded
 * signal is raised again once the early listener is gone, which ends the process as it would have.
 */

/** What `bin/rmapp.mjs` leaves on `globalThis`. */
interface EarlySignals {
  signals: NodeJS.Signals[];
  /** Set by {@link releaseEarlySignals}: the listener then raises a signal again instead of keeping it. */
  released: boolean;
  listener: (sig: NodeJS.Signals) => void;
}

const KEY = Symbol.for('rmapp.earlySignals');

function early(): EarlySignals | undefined {
  const found = (globalThis as Record<symbol, EarlySignals | undefined>)[KEY];
  delete (globalThis as Record<symbol, unknown>)[KEY];
  return found;
}

/**
 * For a command that installed its own SIGTERM/SIGINT handler (call it right after: a signal on its way
 * reaches that one): removes the early listener and returns the first signal it recorded, which the
 * command should act on as if it came now.
 */
export function takeEarlySignal(): NodeJS.Signals | null {
  const e = early();
  if (!e) return null;
  process.off('SIGTERM', e.listener);
  process.off('SIGINT', e.listener);
  return e.signals[0] ?? null;
}

/**
 * For every other command: a signal that came while the CLI loaded is raised again now, so the process
 * ends by it as it would have without the listener; one still on its way is raised again when it
 * arrives (the listener stays until then: removed now, it would lose that one).
 */
export function releaseEarlySignals(): void {
  const e = early();
  if (!e) return;
  e.released = true;
  const sig = e.signals[0];
  if (sig) e.listener(sig);
}

/**
 * For `worker` and `serve` once their stop is done: their own listener goes, and a signal that comes
 * while the process exits (a second Ctrl-C just after "stopped.") ends it with the exit code already
 * set, instead of by the signal (143/130) — or, if something still kept the process alive, ends it.
 */
export function exitOnLaterSignals(onSignal: (sig: NodeJS.Signals) => void): void {
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  const exit = () => process.exit();
  process.once('SIGTERM', exit);
  process.once('SIGINT', exit);
}

/**
 * The second SIGTERM or SIGINT of a stop: stop now, without waiting for the steps or the database (a
 * stop is bounded by the grace and half the lease, which an operator's long lease makes days). As a
 * crash would: what is durable stays, the runs still held resume on another worker when their leases
 * expire. Pressing Ctrl-C twice is how one says so.
 */
export function exitNow(command: string, sig: NodeJS.Signals): never {
  process.stderr.write(
    `rmapp ${command}: ${sig} again: stopping now without waiting (runs still held resume on another worker when their leases expire).\n`,
  );
  process.exit(sig === 'SIGINT' ? 130 : 143);
}
