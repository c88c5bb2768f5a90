/**
 * Checks and writes in a workspace that the sandbox has written to (workspace.ts): nested repositories and
 * FIFOs where git reads, branch names, a path's folders, and files the service writes there without
 * following a link.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ValidationError, WorkflowError } from '../state_machine/errors.ts';
import { runCommand } from './process.ts';

/** `find`'s test for the files of the working tree that git opens by name wherever they are (a FIFO there blocks it). */
export const GIT_READ_FILES = ['(', '-name', '.gitignore', '-o', '-name', '.gitattributes', '-o', '-name', '.gitmodules', ')'];

/**
 * `find` over the workspace `dir` outside its own `.git` (`find . -path ./.git -prune -o <test>`), with no
 * environment but `PATH`: the tree is the sandbox's, and nothing of the service's environment is needed.
 */
export function findOutsideGit(dir: string, test: readonly string[], signal?: AbortSignal): ReturnType<typeof runCommand> {
  return runCommand(['find', '.', '-path', './.git', '-prune', '-o', ...test], {
    cwd: dir,
    signal,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    inheritEnv: false,
  });
}

/**
 * Refuses a workspace that holds a git repository below its root (a `.git` directory or file, made by
 * the agent or the tests in the sandbox): git run by the service would recurse into it with its own
 * configuration — filters and fsmonitor commands the sandbox wrote — and run them outside the sandbox.
 * The clone has no submodules checked out, so any such `.git` came from the sandbox.
 *
 * Also a FIFO named `.gitignore`, `.gitattributes` or `.gitmodules` (code `FIFO_IN_WORKSPACE`): git
 * opens each of those files it meets (`.gitmodules` in a repository with submodules), and `open` on a FIFO waits for a writer — the service's `git add -A` or `git
 * ls-files` then waited for git's whole timeout, ten minutes per command by default
 * (test/sb-gitignore-fifo.test.ts). `fifosOnly`: only those (a resumed workspace, before its checkout).
 */
export async function refuseNestedRepositories(dir: string, signal?: AbortSignal, { fifosOnly = false } = {}): Promise<void> {
  const r = await findOutsideGit(
    dir,
    [...(fifosOnly ? [] : ['-name', '.git', '-print', '-quit', '-o']), ...GIT_READ_FILES, '-type', 'p', '-print', '-quit'],
    signal,
  );
  const found = r.stdout.trim();
  if (found && !found.endsWith('/.git'))
    throw new WorkflowError(
      `The workspace holds a FIFO at ${found.slice(2, 300)} (made by the agent or the tests), where git reads a file: git would wait on it for ever. Remove it and try again.`,
      { code: 'FIFO_IN_WORKSPACE', category: 'permanent', details: { path: found.slice(2, 300) } },
    );
  if (r.exitCode !== 0 || found) {
    throw new WorkflowError(
      found
        ? `The workspace holds a nested git repository at ${found.slice(2, 300)} (made by the agent or the tests). rmapp does not commit nested repositories or run git inside them; remove it and try again.`
        : `Could not check the workspace for nested repositories: ${r.stderr.trim().slice(-200)}`,
      { code: 'NESTED_REPOSITORY', category: 'permanent', details: { path: found.slice(2, 300) || null } },
    );
  }
}

/**
 * Writes `text` to `rel` inside the workspace `dir` without following a symlink anywhere on the way:
 * the sandbox may have replaced a directory or the file with a link to a host path, which a plain
 * `writeFile` would follow — writing, as the service, outside the workspace. A link in the way is
 * removed (it is the sandbox's, inside the workspace) and the path made again as plain directories.
 */
export async function writeWorkspaceFile(dir: string, rel: string, text: string): Promise<void> {
  const parts = rel.split('/').filter(Boolean);
  if (!parts.length || parts.some((p) => p === '..' || p === '.' || p === '.git'))
    throw new Error(`writeWorkspaceFile: "${rel}" is not a path inside the workspace`);
  let at = dir;
  for (const part of parts.slice(0, -1)) {
    at = join(at, part);
    const st = await lstat(at).catch(() => null);
    if (st && !st.isDirectory()) await rm(at, { force: true });
    if (!st || !st.isDirectory()) await mkdir(at);
  }
  const file = join(at, parts.at(-1) as string);
  const st = await lstat(file).catch(() => null);
  if (st && !st.isFile()) await rm(file, { recursive: true, force: true });
  const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
  try {
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
}

/**
 * git's verdict on branch names already asked about in this process: every step of a run prepares its
 * workspace with the same two names, and each question was a process of its own (14 of the 97 git
 * processes of one issue's run). Bounded: emptied when full.
 */
const branchVerdicts = new Map<string, boolean>();
const BRANCH_VERDICTS_MAX = 1_000;

/** Rejects names git would take as options or refuse as refs (`git check-ref-format --branch`). */
export async function checkBranchName(name: string): Promise<void> {
  const invalid = () =>
    new ValidationError(`"${name}" is not a usable branch name.`, [{ path: 'branch', message: 'invalid git branch name' }]);
  if (!name || name.startsWith('-') || name.length > 250 || name.includes('\0')) throw invalid();
  let valid = branchVerdicts.get(name);
  if (valid === undefined) {
    // git's own configuration is not read (it could not change the verdict, only break the command).
    const r = await runCommand(['git', 'check-ref-format', '--branch', name], {
      env: { PATH: process.env.PATH, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
      inheritEnv: false,
    });
    // An exit code is git's verdict (with `--branch` it dies with 128 on a name it refuses); a git that
    // died of a signal gave none: refused this time, asked again the next.
    if (r.exitCode === null)
      throw new WorkflowError(`git check-ref-format could not check "${name}": ${r.stderr.trim().slice(-400)}`, {
        code: 'GIT_FAILED',
        category: 'transient',
      });
    valid = r.exitCode === 0;
    if (branchVerdicts.size >= BRANCH_VERDICTS_MAX) branchVerdicts.clear();
    branchVerdicts.set(name, valid);
  }
  if (!valid) throw invalid();
}

/**
 * True when every folder on the way from `dir` to its file `rel` is a folder, not a symbolic link. git's
 * staged names include a tracked file the sandbox deleted by putting a link where its folder was
 * (`docs -> /etc`, `docs -> an ignored folder holding a FIFO`): `O_NOFOLLOW` guards the last part only, so
 * opened by its name the file was read through the link — a host file, or a FIFO whose `open` never
 * returned (test/sb-reencoded-symlink.test.ts). No sandboxed command runs meanwhile: the check holds.
 */
export async function realFoldersOnly(dir: string, rel: string): Promise<boolean> {
  let at = dir;
  for (const part of rel.split('/').slice(0, -1)) {
    at = join(at, part);
    if (!(await lstat(at).catch(() => null))?.isDirectory()) return false;
  }
  return true;
}
