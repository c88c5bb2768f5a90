/**
 * Reading the execution ledger the test workflows write (RMAPP_TEST_LEDGER, see workflows.ts): every
 * execution of every step, by process, with its idempotency key, attempt and start/end times. It lives
 * outside the engine and its database, so it sees what the engine would not admit to.
 */
import { readFileSync } from 'node:fs';
import type { LedgerEntry } from './workflows.ts';

/** One execution of a step: from its start to its end, its abort, or (for a killed process) never. */
export interface Execution {
  run: string;
  key: string;
  attempt: number;
  pid: number;
  start: number;
  /** Epoch ms; null while open (its process died, or it never finished). */
  end: number | null;
  outcome: 'end' | 'abort' | 'open';
}

export function readLedger(file: string): LedgerEntry[] {
  return readJsonLines<LedgerEntry>(file);
}

/** The JSON lines a ledger file outside the engine holds (none while it does not exist), in order. */
export function readJsonLines<T>(file: string): T[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T);
}

/** Pairs each start with the next end or abort of the same process, key and attempt. */
export function executionsOf(entries: LedgerEntry[]): Execution[] {
  const open = new Map<string, Execution[]>();
  const all: Execution[] = [];
  for (const e of entries) {
    const id = `${e.pid} ${e.key} ${e.attempt}`;
    if (e.phase === 'start') {
      const x: Execution = { run: e.run, key: e.key, attempt: e.attempt, pid: e.pid, start: e.t, end: null, outcome: 'open' };
      all.push(x);
      open.set(id, [...(open.get(id) ?? []), x]);
    } else {
      const x = open.get(id)?.shift();
      if (x) {
        x.end = e.t;
        x.outcome = e.phase;
      }
    }
  }
  return all;
}

/**
 * Executions of one run that overlap in time, in one process or across processes, described for the
 * failure message. An open execution of a process that was killed ends at its kill time
 * (`killedAt`); any other open execution never ends.
 */
export function overlapsOf(executions: Execution[], killedAt: Map<number, number> = new Map()): string[] {
  const byRun = new Map<string, Execution[]>();
  for (const x of executions) byRun.set(x.run, [...(byRun.get(x.run) ?? []), x]);
  const problems: string[] = [];
  for (const [run, xs] of byRun) {
    xs.sort((a, b) => a.start - b.start);
    let last: Execution | null = null;
    let lastEnd = -Infinity;
    for (const x of xs) {
      if (last && x.start < lastEnd) {
        problems.push(
          `run ${run}: ${x.key} attempt ${x.attempt} (pid ${x.pid}) started while ${last.key} attempt ${last.attempt} (pid ${last.pid}) was running`,
        );
      }
      const end = x.end ?? killedAt.get(x.pid) ?? Infinity;
      if (end > lastEnd) {
        lastEnd = end;
        last = x;
      }
    }
  }
  return problems;
}

/** Executions per idempotency key, for the figures: how many keys ran once, twice, … */
export function executionsPerKey(executions: Execution[]): Map<string, number> {
  const n = new Map<string, number>();
  for (const x of executions) n.set(x.key, (n.get(x.key) ?? 0) + 1);
  return n;
}
