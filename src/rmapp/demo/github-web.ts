/**
 * The web pages of the local GitHub that `rmapp demo` serves next to the emulator's API: the
 * repository's issues and pull requests with their comments, as a person would watch them on GitHub
 * (the progress comment edited in place, the bot's replies). Plain HTML that reloads itself every
 * two seconds; every text is escaped, shown as written (Markdown is not rendered).
 */
import { runCommand } from '../process.ts';
import type { GitHubEmulator } from './github-emulator.ts';

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STYLE = `body{font:14px/1.5 system-ui,sans-serif;max-width:860px;margin:2em auto;padding:0 1em;color:#1f2328}
a{color:#0969da}h1{font-size:1.5em}.meta{color:#59636e}.comment{border:1px solid #d1d9e0;border-radius:6px;margin:1em 0}
.comment header{background:#f6f8fa;border-bottom:1px solid #d1d9e0;padding:.4em .8em;border-radius:6px 6px 0 0}
.comment pre{white-space:pre-wrap;margin:0;padding:.8em;font:inherit}.bot header{background:#ddf4ff}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2"><title>${escape(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

function comment(c: { body: string; user: { login: string }; created_at: string; path?: string; line?: number }, botLogin: string): string {
  const where = c.path ? ` on <code>${escape(c.path)}${c.line ? `:${c.line}` : ''}</code>` : '';
  const bot = c.user.login === botLogin ? ' bot' : '';
  return `<article class="comment${bot}"><header><b>${escape(c.user.login)}</b>${where} <span class="meta">${escape(c.created_at)}</span></header><pre>${escape(c.body)}</pre></article>`;
}

/** Branch names the tree page reads: git's own rules, narrowed (no `..`, no leading `-`, no `@{`). */
const BRANCH = /^(?!-)(?!.*\.\.)(?!.*@\{)[\w./-]{1,200}$/;

/**
 * A branch as GitHub's `tree/` page would show it (the progress comment links the run's branch there):
 * its last commits with their messages and authors, and its files. Read with git from the bare remote;
 * the name comes from the URL, so it is checked and passed as one argument, never to a shell.
 */
async function treePage(gitDir: string, repo: string, branch: string): Promise<string | undefined> {
  if (!BRANCH.test(branch)) return undefined;
  const git = (...args: string[]) => runCommand(['git', '--git-dir', gitDir, ...args], { inheritEnv: false, timeoutMs: 10_000 });
  const ref = `refs/heads/${branch}`;
  const log = await git('log', '-n', '20', '--format=%h%x00%an%x00%aI%x00%B%x1e', '--end-of-options', ref, '--');
  if (log.exitCode !== 0) return undefined;
  const files = await git('ls-tree', '-r', '--name-only', '--end-of-options', ref);
  const commits = log.stdout
    .split('\x1e')
    .map((entry) => entry.replace(/^\n/, ''))
    .filter(Boolean)
    .map((entry) => {
      const [sha = '', author = '', date = '', message = ''] = entry.split('\0');
      return `<article class="comment"><header><code>${escape(sha)}</code> <b>${escape(author)}</b> <span class="meta">${escape(date)}</span></header><pre>${escape(message.trim())}</pre></article>`;
    });
  const list = files.stdout.split('\n').filter(Boolean);
  return page(
    `${branch} · ${repo}`,
    `<p><a href="/">← Local GitHub</a></p><h1>${escape(repo)} <span class="meta">at ${escape(branch)}</span></h1><h2>Commits</h2>${commits.join('')}<h2>Files</h2><ul>${list.map((f) => `<li><code>${escape(f)}</code></li>`).join('')}</ul>`,
  );
}

/** Where the web pages find a repository's git data (the demo's bare remotes). */
export interface GitHubWebOptions {
  /** The bare repository of `owner/repo`, or undefined when there is none. */
  gitDir?: ((owner: string, repo: string) => string | undefined) | undefined;
}

/**
 * The page at `path` (`/`, `/{owner}/{repo}/issues/{n}`, `/{owner}/{repo}/pull/{n}`,
 * `/{owner}/{repo}/tree/{branch}` when {@link GitHubWebOptions.gitDir} knows the repository), or
 * undefined (404). Pass it as the emulator's `web` option.
 */
export async function githubWebPage(emulator: GitHubEmulator, path: string, options: GitHubWebOptions = {}): Promise<string | undefined> {
  const tree = /^\/([^/]+)\/([^/]+)\/tree\/(.+)$/.exec(path);
  if (tree) {
    const [, owner, repo, branch] = tree as unknown as [string, string, string, string];
    const dir = emulator.repos.has(`${owner}/${repo}`) ? options.gitDir?.(owner, repo) : undefined;
    return dir ? treePage(dir, `${owner}/${repo}`, branch) : undefined;
  }
  if (path === '/') {
    const issues = [...emulator.issues].map(([key, issue]) => {
      const [repo, n] = key.split('#') as [string, string];
      return `<li><a href="/${escape(repo)}/issues/${n}">${escape(repo)}#${n}</a> ${escape(issue.title)}</li>`;
    });
    const pulls = [...emulator.pulls].flatMap(([repo, list]) =>
      list.map(
        (p) =>
          `<li><a href="/${escape(repo)}/pull/${p.number}">${escape(repo)}#${p.number}</a> ${escape(p.title)} <span class="meta">${escape(p.head)} → ${escape(p.base)}, ${p.state}</span></li>`,
      ),
    );
    return page(
      'Local GitHub',
      `<h1>Local GitHub</h1><h2>Issues</h2><ul>${issues.join('') || '<li>none yet</li>'}</ul><h2>Pull requests</h2><ul>${pulls.join('') || '<li>none yet</li>'}</ul>`,
    );
  }
  const m = /^\/([^/]+)\/([^/]+)\/(issues|pull)\/(\d+)$/.exec(path);
  if (!m) return undefined;
  const [, owner, repo, kind, n] = m as unknown as [string, string, string, string, string];
  const key = `${owner}/${repo}#${n}`;
  const comments = (emulator.comments.get(key) ?? []).map((c) => comment(c, emulator.botLogin)).join('');
  const back = '<p><a href="/">← Local GitHub</a></p>';
  if (kind === 'issues') {
    const issue = emulator.issues.get(key);
    if (!issue) return undefined;
    return page(
      `${issue.title} · Issue #${n}`,
      `${back}<h1>${escape(issue.title)} <span class="meta">#${n}</span></h1><pre>${escape(issue.body)}</pre><h2>Comments</h2>${comments || '<p class="meta">none yet</p>'}`,
    );
  }
  const pull = (emulator.pulls.get(`${owner}/${repo}`) ?? []).find((p) => p.number === Number(n));
  if (!pull) return undefined;
  const reviews = (emulator.reviewComments.get(key) ?? []).map((c) => comment(c, emulator.botLogin)).join('');
  return page(
    `${pull.title} · Pull request #${n}`,
    `${back}<h1>${escape(pull.title)} <span class="meta">#${n}</span></h1><p class="meta">${escape(pull.head)} → ${escape(pull.base)}, ${pull.state}</p><pre>${escape(pull.body)}</pre><h2>Conversation</h2>${comments || '<p class="meta">none yet</p>'}<h2>Review comments</h2>${reviews || '<p class="meta">none yet</p>'}`,
  );
}
