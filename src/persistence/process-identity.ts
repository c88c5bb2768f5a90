/**
 * Who a process is, beyond its pid, as far as Linux's `/proc` tells: its start time, the boot and its
 * PID and network namespaces. A pid alone is reused (after a crash and a reboot, or by a new container
 * whose first process has the same pid); with its start time and boot it names one process for good.
 * The embedded store's lock (data-dir-lock.ts) and a worker's record of itself (worker-processes.ts)
 * judge with it whether a process that held something is gone. Fields a platform cannot tell (no
 * `/proc`) are absent and never compared.
 */
import { readFileSync, readlinkSync } from 'node:fs';

/** One process: its pid and what tells it from another with the same pid. */
export interface ProcessIdentity {
  pid: number;
  /** Start time of the process, in clock ticks since boot (`/proc/<pid>/stat`, field 22). */
  start?: string;
  /** `/proc/sys/kernel/random/boot_id`: another boot, or another machine. */
  boot?: string;
  /** PID namespace (`/proc/self/ns/pid`): pids of another are not this one's. */
  ns?: string;
  /** Network namespace (`/proc/self/ns/net`). */
  net?: string;
}

/** A small file's text, trimmed, or undefined when it cannot be read. */
export function readTrimmed(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The fields of `/proc/<pid>/stat` after the command name (field 3 first), or undefined when `/proc` does not show it. */
function statFields(pid: number): string[] | undefined {
  const stat = readTrimmed(`/proc/${pid}/stat`);
  // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ")".
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The start time of `pid` in clock ticks since boot, or undefined when `/proc` does not show it. */
export function startTimeOf(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/**
 * Whether `pid` has exited and waits only to be reaped by its parent (state `Z`, or `X` on its way
 * out): its pid still answers `kill(pid, 0)` and its start time is still its own, yet it runs nothing
 * and its connections are closed. A worker killed under a parent that does not reap it (`sh -c 'rmapp
 * worker … & exec other'`, a container's first process that reaps nobody) stays such a zombie, and a
 * restart under its id judged it alive and waited out its leases (test/adv8-owner-zombie.test.ts).
 */
export function exited(pid: number): boolean {
  const state = statFields(pid)?.[0];
  if (state !== 'Z' && state !== 'X') return false;
  // A leader thread that ended alone (pthread_exit) shows `Z` too while its other threads run on:
  // only a process with no thread left but the leader's is gone.
  const threads = /^Threads:\s*(\d+)$/m.exec(readTrimmed(`/proc/${pid}/status`) ?? '')?.[1];
  return threads !== undefined && Number(threads) <= 1;
}

function namespace(kind: 'pid' | 'net'): string | undefined {
  try {
    return readlinkSync(`/proc/self/ns/${kind}`);
  } catch {
    return undefined;
  }
}

/** This process. */
export function thisProcess(): ProcessIdentity {
  const boot = readTrimmed('/proc/sys/kernel/random/boot_id');
  return { pid: process.pid, start: startTimeOf(process.pid), boot, ns: namespace('pid'), net: namespace('net') };
}

/** Whether a process with this pid runs in this PID namespace (whoever it is). */
export function pidRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false; // kill(-1, 0) asks about every process
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the process `other` names is gone, as this process can prove it: `gone` when it ran on this
 * boot in this PID namespace and its pid is not running, has exited (a zombie its parent has not
 * reaped: {@link exited}), or runs a process started at another time;
 * `alive` when it is still running there; `unknown` when it ran on another boot (another machine, or
 * this one before a reboot: the two cannot be told apart from a record in a shared database), in
 * another PID namespace (another container), or its record lacks what would tell.
 */
export function processFate(other: ProcessIdentity, me: ProcessIdentity = thisProcess()): 'gone' | 'alive' | 'unknown' {
  if (!other.boot || !me.boot || other.boot !== me.boot) return 'unknown';
  if (!other.ns || !me.ns || other.ns !== me.ns) return 'unknown';
  if (!pidRunning(other.pid) || exited(other.pid)) return 'gone';
  const start = other.start ? startTimeOf(other.pid) : undefined;
  // Compared only when this process can read it (`/proc` mounted with hidepid shows others' pids to no one).
  if (start !== undefined && start !== other.start) return 'gone';
  return other.start && start === undefined ? 'unknown' : 'alive';
}
