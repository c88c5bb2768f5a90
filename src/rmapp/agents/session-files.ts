/**
 * The session directory in the workspace for agents that read the prompt from a file and write their
 * history to one (aider). It is the agent's working directory's `.rmapp-agent/`, listed in the
 * clone's `.git/info/exclude` so that rmapp's commit never takes it, created fresh before the session
 * and removed after it.
 *
 * The workspace is the agent's: a previous session may have left a symbolic link where the directory
 * or a file goes. So the directory is removed (a link is removed, never followed) and made anew, the
 * prompt is written with O_EXCL|O_NOFOLLOW, and the history is read only if it is a regular file, with
 * O_NOFOLLOW and a size bound — never a host file the agent pointed at.
 */
import { constants } from 'node:fs';
import { appendFile, lstat, mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SessionFiles } from './adapter.ts';

export const SESSION_DIR = '.rmapp-agent';
const MAX_HISTORY_BYTES = 8 * 1024 * 1024;

/** Creates the session directory and the prompt file; returns the paths relative to `cwd`. */
export async function createSessionFiles(cwd: string, prompt: string): Promise<SessionFiles> {
  await excludeFromGit(cwd);
  const dir = join(cwd, SESSION_DIR);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { mode: 0o755 });
  const file = await open(join(dir, 'prompt.md'), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    await file.writeFile(prompt);
  } finally {
    await file.close();
  }
  return {
    dir: SESSION_DIR,
    prompt: `${SESSION_DIR}/prompt.md`,
    chatHistory: `${SESSION_DIR}/chat-history.md`,
    inputHistory: `${SESSION_DIR}/input-history`,
  };
}

/** The chat history the agent wrote, or null (none, not a regular file, or a link); its end when large. */
export async function readChatHistory(cwd: string, files: SessionFiles): Promise<string | null> {
  try {
    const dir = await lstat(join(cwd, files.dir));
    if (!dir.isDirectory()) return null;
    const handle = await open(join(cwd, files.chatHistory), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = await handle.stat();
      if (!st.isFile()) return null;
      const size = Math.min(st.size, MAX_HISTORY_BYTES);
      const buffer = Buffer.alloc(size);
      await handle.read(buffer, 0, size, Math.max(0, st.size - size));
      return buffer.toString('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return null;
  }
}

/** Removes the session directory (whatever the agent left in it). */
export async function removeSessionFiles(cwd: string, files: SessionFiles): Promise<void> {
  await rm(join(cwd, files.dir), { recursive: true, force: true });
}

/** `.rmapp-agent/` in the clone's `.git/info/exclude` (once), when `cwd` is a clone rmapp made. */
async function excludeFromGit(cwd: string): Promise<void> {
  const git = await lstat(join(cwd, '.git')).catch(() => null);
  if (!git?.isDirectory()) return;
  const info = join(cwd, '.git', 'info');
  await mkdir(info, { recursive: true });
  const exclude = join(info, 'exclude');
  const text = await readFile(exclude, 'utf8').catch(() => '');
  if (!text.split('\n').includes(`/${SESSION_DIR}/`))
    await appendFile(exclude, `${text && !text.endsWith('\n') ? '\n' : ''}/${SESSION_DIR}/\n`);
}
