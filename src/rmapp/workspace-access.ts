/**
 * What the service does to a workspace the sandbox wrote before it reads, cleans or removes it. The
 * sandbox's user is the service's own user outside, so it owns everything there and may lock its
 * owner out of a folder (mode 0001 denies the owner, lets every other user through): the service's
 * `find` then skipped a setuid file inside, and its `rm -rf` failed, leaving the workspace for good.
 */
import { runCommand } from './process.ts';

/** The environment of these commands: an absolute PATH (`find -execdir` refuses a relative one), nothing else. */
const ENV = { PATH: '/usr/bin:/bin' };

/**
 * Gives the owner back read, write and search on every folder under `dir`, and `dir` itself 0700 (the
 * sandbox may have opened its workspace to everyone). Each folder is changed as `find` meets it, before
 * it descends (`\;`, from the folder's parent: a path past PATH_MAX works).
 */
export async function reopenForOwner(dir: string): Promise<void> {
  await runCommand(['find', dir, '-xdev', '-type', 'd', '!', '-perm', '-700', '-execdir', 'chmod', 'u+rwx', '{}', ';'], {
    timeoutMs: 600_000,
    env: ENV,
    inheritEnv: false,
  }).catch(() => null);
  await runCommand(['chmod', '0700', '--', dir], { timeoutMs: 60_000, env: ENV, inheritEnv: false }).catch(() => null);
}

/** Runs `find <dir> <args>` with {@link ENV}; failures are the caller's to check by what is left. */
export function findIn(dir: string, args: readonly string[]): Promise<unknown> {
  return runCommand(['find', dir, ...args], { timeoutMs: 600_000, env: ENV, inheritEnv: false }).catch(() => null);
}

/** `rm -rf -- dir`, after {@link reopenForOwner}; true when it succeeded. */
export async function removeForce(dir: string): Promise<boolean> {
  await reopenForOwner(dir);
  const r = await runCommand(['rm', '-rf', '--', dir], { timeoutMs: 600_000, env: ENV, inheritEnv: false }).catch(() => null);
  return r?.exitCode === 0;
}
