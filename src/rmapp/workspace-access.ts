/**
 * What the service does to a workspace the sandbox wrote before it cleans or removes it. The sandbox's
 * user is the service's own user outside, so it owns everything there: a file it made setuid is a setuid
 * file of the service's user on the host, it may open its workspace to everyone, and it may lock its
 * owner out of a folder (mode 0001 denies the owner, lets every other user through) — the service's
 * `find` then skipped a setuid file inside, and its `rm -rf` failed, leaving the workspace for good.
 */
import { chmod, rm } from 'node:fs/promises';
import { runCommand } from './process.ts';

/** `find <dir> <args>` with an absolute PATH (`-execdir` refuses a relative one) and nothing else; null if it could not run. */
function find(dir: string, args: readonly string[]) {
  return runCommand(['find', dir, '-xdev', ...args], { timeoutMs: 600_000, env: { PATH: '/usr/bin:/bin' }, inheritEnv: false }).catch(
    () => null,
  );
}

/**
 * Folders closed to their owner, given back read, write and search as `find` meets them — before it
 * descends (`;`, run from the folder's parent: a path past PATH_MAX works).
 */
const SHUT_TO_OWNER = ['-type', 'd', '!', '-perm', '-700', '-execdir', 'chmod', 'u+rwx', '{}', ';'];
/** Files with the setuid or setgid bit. */
const SET_ID = ['-type', 'f', '(', '-perm', '-4000', '-o', '-perm', '-2000', ')'];

/**
 * After every sandboxed command: the workspace 0700 again, its folders open to their owner, and the
 * setuid and setgid bits off every file in it — changed by `find` from each file's folder (by its full
 * name, a path longer than PATH_MAX could not be) in the same pass. What it could not change (a file of
 * another owner, made by a container's root) it removes. The workspace is mounted nosuid inside the
 * sandbox only.
 */
export async function dropSetIdBits(workspace: string): Promise<void> {
  await chmod(workspace, 0o700).catch(() => {});
  const pass = await find(workspace, ['(', ...SHUT_TO_OWNER, ')', '-o', '(', ...SET_ID, '-execdir', 'chmod', 'ug-s', '{}', '+', ')']);
  if (pass?.exitCode !== 0) await find(workspace, [...SET_ID, '-execdir', 'rm', '-f', '{}', '+']);
}

/**
 * Removes a workspace and everything in it. What the sandbox wrote may be deeper than PATH_MAX, which
 * Node's `rm` reaches by full paths (ENAMETOOLONG), or in folders closed to their owner (EACCES): then
 * `rm -rf`, once the folders are open again. Otherwise the workspace stayed, its `.git` already gone, so
 * that the sweep no longer knew whose it was.
 */
export async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch (err) {
    await find(dir, SHUT_TO_OWNER);
    const r = await runCommand(['rm', '-rf', '--', dir], { timeoutMs: 600_000, env: { PATH: '/usr/bin:/bin' }, inheritEnv: false }).catch(
      () => null,
    );
    if (r?.exitCode !== 0) throw err;
  }
}
