/**
 * A cgroup per sandboxed command, where the service may create one: it bounds the memory and the
 * processes of the whole command (every process it forks), which rlimits cannot do for a service
 * running as root. cgroup v2 needs a delegated subtree; cgroup v1 needs write access to the memory
 * and pids hierarchies. Where neither is possible, {@link createCgroup} returns null and the
 * sandbox falls back to rlimits (and says so at start-up).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Cgroup {
  /** The `cgroup.procs` files a process writes its pid to, to enter the group. */
  procsFiles: string[];
  /** Kills what is left in the group and removes it. */
  destroy(): Promise<void>;
}

const ROOT = '/sys/fs/cgroup';

/** The cgroup paths of this process, by controller (`''` for v2). */
function ownGroups(): Map<string, string> {
  const groups = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, controllers, path] = line.split(':');
    for (const c of (controllers ?? '').split(',')) groups.set(c, path ?? '/');
  }
  return groups;
}

async function tryV2(name: string, limits: { memoryBytes: number; processes: number }): Promise<Cgroup | null> {
  if (!existsSync(join(ROOT, 'cgroup.controllers'))) return null;
  const own = ownGroups().get('') ?? '/';
  const dir = join(ROOT, own, name);
  try {
    await mkdir(dir);
    await writeFile(join(dir, 'memory.max'), String(limits.memoryBytes));
    await writeFile(join(dir, 'pids.max'), String(limits.processes));
  } catch {
    await rmdir(dir).catch(() => {});
    return null;
  }
  return {
    procsFiles: [join(dir, 'cgroup.procs')],
    async destroy() {
      await writeFile(join(dir, 'cgroup.kill'), '1').catch(() => {});
      await removeWhenEmpty(dir);
    },
  };
}

async function tryV1(name: string, limits: { memoryBytes: number; processes: number }): Promise<Cgroup | null> {
  const own = ownGroups();
  const memory = own.has('memory') && existsSync(join(ROOT, 'memory')) ? join(ROOT, 'memory', own.get('memory') as string, name) : null;
  const pids = own.has('pids') && existsSync(join(ROOT, 'pids')) ? join(ROOT, 'pids', own.get('pids') as string, name) : null;
  if (!memory || !pids) return null;
  const made: string[] = [];
  try {
    for (const dir of [memory, pids]) {
      await mkdir(dir);
      made.push(dir);
    }
    await writeFile(join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
    await writeFile(join(pids, 'pids.max'), String(limits.processes));
  } catch {
    for (const dir of made) await rmdir(dir).catch(() => {});
    return null;
  }
  return {
    procsFiles: [join(memory, 'cgroup.procs'), join(pids, 'cgroup.procs')],
    async destroy() {
      for (const dir of [pids, memory]) {
        const procs = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
        for (const pid of procs) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
        await removeWhenEmpty(dir);
      }
    },
  };
}

/** rmdir fails while killed processes are still being reaped: try for a moment. */
async function removeWhenEmpty(dir: string): Promise<void> {
  for (let i = 0; i < 50; i += 1) {
    try {
      await rmdir(dir);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** A new cgroup with these limits, or null where the service cannot make one. */
export async function createCgroup(name: string, limits: { memoryBytes: number; processes: number }): Promise<Cgroup | null> {
  if (process.platform !== 'linux') return null;
  return (await tryV2(name, limits)) ?? (await tryV1(name, limits));
}

let probed: Promise<boolean> | undefined;
/** Whether cgroups can be made here (probed once). */
export function cgroupsAvailable(): Promise<boolean> {
  probed ??= createCgroup(`rmapp-probe-${process.pid}`, { memoryBytes: 1024 ** 3, processes: 64 }).then(async (g) => {
    await g?.destroy();
    return !!g;
  });
  return probed;
}
