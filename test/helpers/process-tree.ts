/**
 * A ledger of processes read from /proc, outside the engine: who descends from whom, and whether a
 * process recorded earlier still runs. A process is named by its pid and its start time (field 22 of
 * `/proc/<pid>/stat`), so a pid the kernel gave to a new process after the recorded one died is not
 * mistaken for it; a zombie (dead, not yet reaped by whoever inherited it) is not running.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessRecord {
  pid: number;
  /** Clock ticks after boot: with the pid, the process itself. */
  start: string;
  /** What it ran, for messages. */
  command: string;
}

interface Stat {
  state: string;
  ppid: number;
  start: string;
}

function statOf(pid: number): Stat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name is in parentheses and may hold spaces and parentheses: the fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] as string, ppid: Number(fields[1]), start: fields[19] as string };
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ').slice(0, 200);
  } catch {
    return '?';
  }
}

/** The process `pid` now, or null when there is none (or only its zombie). */
export function processRecord(pid: number): ProcessRecord | null {
  const stat = statOf(pid);
  return stat && stat.state !== 'Z' ? { pid, start: stat.start, command: commandOf(pid) } : null;
}

/** Every running process that descends from `root` (children, theirs, …), not `root` itself. */
export function descendantsOf(root: number): ProcessRecord[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = statOf(Number(entry));
    if (!stat) continue;
    children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), Number(entry)]);
  }
  const out: ProcessRecord[] = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length) {
    const pid = queue.shift() as number;
    const record = processRecord(pid);
    if (record) out.push(record);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Whether the recorded process still runs (the same pid and start time, not a zombie). */
export function stillRunning(record: ProcessRecord): boolean {
  const stat = statOf(record.pid);
  return !!stat && stat.state !== 'Z' && stat.start === record.start;
}

/** SIGKILLs those of `records` that still run (a test's clean-up: what a failed check left behind). */
export function killSurvivors(records: readonly ProcessRecord[]): void {
  for (const r of records) {
    if (!stillRunning(r)) continue;
    try {
      process.kill(r.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}
