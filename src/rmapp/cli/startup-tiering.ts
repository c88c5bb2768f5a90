/**
 * V8's tier-up during a worker's start-up. A worker restarted on a backlog — a deploy, a crash with
 * 1,000 runs taken back at once — runs most of its code a few hundred times in its first second, and
 * with V8's default budget TurboFan compiles ~190 functions meanwhile (~1 s of compile jobs on a
 * background thread, which on two cores competes with the main thread and Postgres: bench/README.md,
 * eleventh session). A 16× budget for the whole process cut a recovering worker's CPU by 25–30 % but
 * cost a long-running worker 10–20 % of its throughput. So `rmapp worker` raises the budget only for its
 * first {@link STARTUP_CPU_MS} of CPU time — CPU, not the clock, so a loaded machine that runs the
 * burst slowly gets the same window — and then puts V8's default back; functions still hot then are
 * optimized within one more budget. Measured figures: bench/README.md, "thirty-third session".
 *
 * Only on the V8 it was measured on (Node 20's 11.3), whose default budget {@link DEFAULT_INTERRUPT_BUDGET}
 * is known (`node --v8-options`): V8 gives no way to read a flag back, so elsewhere the default could
 * not be restored and the worker is left as V8 starts it. A budget the operator passed
 * (`node --interrupt-budget=… bin/rmapp.mjs worker`) is left alone. The flag is read whenever V8 resets
 * a function's budget, so setting it at run time takes effect (Node keeps flags writable after start,
 * as heap-growth.ts relies on too).
 */
import { setFlagsFromString } from 'node:v8';

/** V8 11.3's `--interrupt-budget` default (bytecodes run between a function's tier-up checks). */
export const DEFAULT_INTERRUPT_BUDGET = 67_584;
/** The budget of a worker's start-up: 16× the default, the factor bench/README.md measured. */
export const STARTUP_INTERRUPT_BUDGET = 16 * DEFAULT_INTERRUPT_BUDGET;
/**
 * The start-up window, in the process's CPU ms: a worker recovering 1,000 runs uses ~2 s of CPU in
 * all, a worker at concurrency 50 ~1 s per second.
 */
export const STARTUP_CPU_MS = 3_000;

/** What {@link delayTierUpDuringStartup} needs of the process, replaceable in tests. */
export interface TieringProcess {
  execArgv: readonly string[];
  v8Version: string;
  /** The process's CPU time so far, in ms. */
  cpuMs(): number;
  setFlags(flags: string): void;
  /** Calls `check` every interval until the returned function is called; must not keep the process alive. */
  every(ms: number, check: () => void): () => void;
}

const NODE_PROCESS: TieringProcess = {
  execArgv: process.execArgv,
  v8Version: process.versions.v8,
  cpuMs: () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  },
  setFlags: setFlagsFromString,
  every: (ms, check) => {
    const timer = setInterval(check, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};

/** Why the start-up budget is not set in this process, or null when it is. */
export function startupTieringSkipped(execArgv: readonly string[], v8Version: string): string | null {
  if (execArgv.some((a) => /^--interrupt[-_]budget(=|$)/.test(a))) return 'the operator chose an interrupt budget';
  if (!/^11\.3\./.test(v8Version)) return `V8 ${v8Version} is not the one measured (11.3, Node 20)`;
  return null;
}

/**
 * Raises V8's interrupt budget until the process has used {@link STARTUP_CPU_MS} of CPU, then restores
 * the default. Returns whether it was raised. Idempotent per process only in effect: call it once.
 */
export function delayTierUpDuringStartup(proc: TieringProcess = NODE_PROCESS): boolean {
  if (startupTieringSkipped(proc.execArgv, proc.v8Version)) return false;
  const until = proc.cpuMs() + STARTUP_CPU_MS;
  proc.setFlags(`--interrupt-budget=${STARTUP_INTERRUPT_BUDGET}`);
  const stop = proc.every(250, () => {
    if (proc.cpuMs() < until) return;
    stop();
    proc.setFlags(`--interrupt-budget=${DEFAULT_INTERRUPT_BUDGET}`);
  });
  return true;
}
