/**
 * Git workspaces: one clone per run under a configurable root, made quickly from a cached bare
 * mirror of the remote, on the run's branch (`rmapp/issue-<n>` or a PR's head branch). Committing
 * is idempotent (nothing staged, no commit), so a re-executed step does not duplicate commits; a
 * resumed run finds its workspace as it left it. Removed when the run ends, kept on failure.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { constants } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ValidationError, WorkflowError } from '../state_machine/errors.ts';
import { runCommand } from './process.ts';
import { removeTree } from './workspace-access.ts';
import { createMasker } from './masking.ts';
import { AddedSecretScanner, secretFinder, type SecretFinder } from './secret-scan.ts';
import { refusesCommits, SERVICE_SECRET_LABEL } from './service-secret-sources.ts';
import { INSTRUCTION_FILES, parseRepositoryConfig, REPOSITORY_CONFIG, type RepositorySettings } from './repository-config.ts';
import { brokenLinkText, parseBatchCheck, type BrokenLink, type ObjectInfo } from './git-batch-check.ts';
import { gitEnv } from './git-env.ts';
import { gitFailureIsTransient } from './git-failures.ts';
import {
  checkBranchName,
  findOutsideGit,
  GIT_READ_FILES,
  realFoldersOnly,
  refuseNestedRepositories,
  writeWorkspaceFile,
} from './workspace-guards.ts';

export { gitFailureIsTransient } from './git-failures.ts';
export { checkBranchName, writeWorkspaceFile } from './workspace-guards.ts';

/** Most bytes `.github/rmapp.yml` may have (it holds settings; long instructions belong in AGENTS.md). */
const REPOSITORY_CONFIG_MAX_BYTES = 256 * 1024;

/** Most bytes of an instruction file read (under the 1 MiB a command's output keeps; a prompt keeps less). */
const INSTRUCTION_FILE_MAX_BYTES = 512 * 1024;
/** The files a repository's settings are read from, in the order {@link Workspaces} asks git about them. */
const SETTINGS_FILES = [REPOSITORY_CONFIG, ...INSTRUCTION_FILES] as const;

/** In a workspace's `.git`: the id of the run it belongs to. */
const RUN_ID_FILE = 'rmapp-run-id';

/**
 * Makes `dir` (the workspaces' root) and keeps it reachable by the service's user only: the sandbox
 * can change the mode of the workspace it is given (it owns it), not of the folder around it, and what
 * it leaves there is the service user's own on the host. A root shared with others (sticky, as /tmp is,
 * or another user's) is left as it is: give the workspaces a folder of their own.
 */
async function privateDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // The folder itself, also when `dir` is a symlink to it.
  const st = await stat(dir);
  if (st.isDirectory() && st.uid === process.getuid?.() && !(st.mode & 0o1000) && (st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
}

/** True for a directory itself, not a symlink to one. */
function isRealDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The run id a workspace records (in its `.git`), or null. */
function recordedRunId(dir: string): string | null {
  try {
    return readFileSync(join(dir, '.git', RUN_ID_FILE), 'utf8');
  } catch {
    return null;
  }
}

export interface WorkspaceConfig {
  /** Where run workspaces live. */
  root: string;
  /** Where mirrors are cached; default `<root>/.mirrors`. */
  mirrors?: string | undefined;
  author: { name: string; email: string };
  /**
   * A token for the remote (GitHub: the personal token or the repository's installation token). It
   * reaches git as an `http.extraHeader` through `GIT_CONFIG_*` environment variables: never in the
   * URL, `.git/config`, argv or error messages.
   */
  token?: ((remoteUrl: string) => Promise<string | undefined>) | undefined;
  /** Per git command. Default 10 minutes (a first clone of a large repository). */
  timeoutMs?: number | undefined;
  /**
   * The service's masker (src/rmapp/masking.ts), for what the service itself writes into a branch:
   * commit messages and files such as the plan, which may quote an agent's output. Files the agent
   * or the tests changed are the work under review and are committed as they are.
   */
  mask?: ((text: string) => string) | undefined;
  /**
   * True when a text holds one of the secrets the sandbox holds (a masker's `holdsSecret` over
   * config.ts `sandboxSecretsOf`): a commit whose added lines hold one is refused
   * ({@link Workspaces.commitAll}), as the agent holds its own key. {@link WorkspaceConfig.findSecret}
   * is the same check that also says which secret, for the refusal.
   */
  holdsSecret?: ((text: string) => boolean) | undefined;
  /**
   * The check of {@link WorkspaceConfig.holdsSecret} naming what it found (secret-scan.ts
   * `secretFinder` over config.ts `sandboxSecretSources` and service-secret-sources.ts
   * `serviceSecretSources`: `the value of NPM_TOKEN (sandbox.env)`, `the service's own GitHub token
   * (…)`), so that the refusal says which variable or setting to look at, never the value. Used instead
   * of it when set.
   */
  findSecret?: SecretFinder | undefined;
}

export interface Workspace {
  dir: string;
  branch: string;
  remoteUrl: string;
  /** The branch was on the remote when the run took it (a pull request's head): a push never re-creates it. */
  existing?: boolean | undefined;
}

/**
 * The refusal of a commit holding a secret (`SECRET_IN_CHANGES`, category `validation`): `what` the
 * check found (a label: `the service's own …` or a sandbox variable, never the value), `where` (a file
 * and its lines, a file's name, the commit message) and the file's name as shown (null when withheld).
 */
function secretInChanges(
  what: string | boolean | null,
  where: string,
  file: string | null,
  lines: { first: number; last: number } | null = null,
): WorkflowError {
  const label = typeof what === 'string' ? what : null;
  const own = label !== null && label.startsWith(SERVICE_SECRET_LABEL);
  return new WorkflowError(
    own
      ? `The changes hold ${label} in ${where}, whole or encoded (base64, hex, spaced); the value is not shown here. Nothing of this attempt was committed or pushed. The sandbox is never given the service's credentials: find how the agent or the tests came to hold it (an issue or comment that quoted it, a file of the repository or the host), and rotate it.`
      : `The changes hold a secret the sandbox was given — ${label ?? "the value of a variable in agent.env or sandbox.env (the agent's own API key, say)"} — in ${where}, whole or encoded (base64, hex, spaced); the value is not shown here. Nothing of this attempt was committed or pushed. An issue or comment may have told the agent to write it there: look at what it asked, and rotate the credential if the workspace or its logs were shared. If it is no secret (a throwaway test database's password in a URL, say), pass it to the tests another way than in agent.env or sandbox.env: every value of a secret-named variable there, and every credential of a URL one holds, refuses a commit.`,
    {
      code: 'SECRET_IN_CHANGES',
      category: 'validation',
      details: { file, found: label, ...(lines ? { line: lines.first, lastLine: lines.last } : {}) },
    },
  );
}

export class Workspaces {
  private readonly mirrors: string;
  private readonly mirrorTurns = new Map<string, Promise<void>>();

  constructor(private readonly config: WorkspaceConfig) {
    this.mirrors = config.mirrors ?? join(config.root, '.mirrors');
  }

  private mask(text: string): string {
    return this.config.mask ? this.config.mask(text) : text;
  }

  /** Writes a file of the service's own into a workspace, masked, never through a symlink ({@link writeWorkspaceFile}). */
  async writeFile(dir: string, rel: string, text: string): Promise<void> {
    await writeWorkspaceFile(dir, rel, this.mask(text));
  }

  /** Runs git as the workspaces run it (their environment, never the service's; their timeout); its exit code is the caller's. */
  private async runGit(
    args: string[],
    cwd: string | undefined,
    signal?: AbortSignal,
    { input, remoteUrl, onStdout }: { input?: string | undefined; remoteUrl?: string | undefined; onStdout?: (chunk: Buffer) => void } = {},
  ) {
    const token = remoteUrl && /^https?:/.test(remoteUrl) ? await this.config.token?.(remoteUrl) : undefined;
    return runCommand(['git', ...args], {
      cwd,
      signal,
      input,
      onStdout,
      timeoutMs: this.config.timeoutMs ?? 600_000,
      env: gitEnv(this.config.author, token),
      inheritEnv: false,
    });
  }

  /** Runs git and returns its output, trimmed; throws GIT_FAILED (transient for a network failure) unless it exits 0. */
  private async git(args: string[], cwd: string | undefined, signal?: AbortSignal, input?: string, remoteUrl?: string): Promise<string> {
    return this.checked(args, await this.runGit(args, cwd, signal, { input, remoteUrl })).stdout.trim();
  }

  /** `r`, when git exited 0; else GIT_FAILED naming the command and the end of its stderr. */
  private checked(args: string[], r: Awaited<ReturnType<typeof runCommand>>) {
    if (r.exitCode !== 0) {
      throw new WorkflowError(`git ${args[0]} failed: ${r.stderr.trim().slice(-400) || `exit ${r.exitCode ?? r.signal}`}`, {
        code: 'GIT_FAILED',
        category: gitFailureIsTransient(r.stderr) ? 'transient' : 'permanent',
        details: { args: args.slice(0, 2) },
      });
    }
    return r;
  }

  /**
   * The cached mirror of `remoteUrl`, created or refreshed. Refreshes of one mirror in this process
   * take turns (a run preparing its workspace and a command reading the repository's settings would
   * otherwise race for the mirror's ref locks).
   */
  private async mirror(remoteUrl: string, signal?: AbortSignal): Promise<string> {
    await mkdir(this.mirrors, { recursive: true });
    const dir = join(this.mirrors, `${createHash('sha256').update(remoteUrl).digest('hex').slice(0, 16)}.git`);
    const refresh = async () => {
      if (!existsSync(dir))
        return void (await this.git(['clone', '--mirror', '--', remoteUrl, dir], undefined, signal, undefined, remoteUrl));
      await this.git(['remote', 'update', '--prune'], dir, signal, undefined, remoteUrl);
      // The mirror's HEAD is the remote's as it was at the clone: after a rename of the default branch it
      // names a branch the prune removed. Then it follows the remote's HEAD again.
      const head = await this.symbolicTarget(dir, 'HEAD', 'refs/heads/', signal);
      if (head && (await this.exactRefs(dir, [head], signal)).has(head)) return;
      const said = await this.git(['ls-remote', '--symref', 'origin', 'HEAD'], dir, signal, undefined, remoteUrl);
      const target = /^ref: (refs\/heads\/[^\s\0]+)\tHEAD$/m.exec(said)?.[1];
      if (target) await this.git(['symbolic-ref', 'HEAD', target], dir, signal);
    };
    const turn = (this.mirrorTurns.get(dir) ?? Promise.resolve()).then(refresh, refresh);
    this.mirrorTurns.set(
      dir,
      turn.catch(() => {}),
    );
    await turn;
    return dir;
  }

  /** The run's workspace on `branch` (created from `base` if the remote has no such branch yet). */
  async prepare(job: {
    runId: string;
    remoteUrl: string;
    branch: string;
    base: string;
    signal?: AbortSignal;
    /** The branch must already be on the remote (a pull request's head): never created from `base`. */
    existing?: boolean;
  }): Promise<Workspace> {
    await checkBranchName(job.branch);
    await checkBranchName(job.base);
    const dir = this.dirOf(job.runId);
    const ws = { dir, branch: job.branch, remoteUrl: job.remoteUrl, existing: job.existing };
    if (existsSync(join(dir, '.git'))) {
      // Private to the service's user (see below); one made before this was not.
      await chmod(dir, 0o700);
      // What an earlier step's agent or tests left: a FIFO `.gitattributes` held `git checkout` below for git's timeout.
      await refuseNestedRepositories(dir, job.signal, { fifosOnly: true });
      // A resumed run: keep local work, bring the remote up to date.
      await this.git(['fetch', '--prune', '--no-recurse-submodules', 'origin'], dir, job.signal, undefined, job.remoteUrl);
      // `origin/HEAD` is the remote's HEAD as it was at the clone: after a rename of the default branch
      // it names a branch the prune removed, and the settings would have no default branch to be read
      // from. Then it follows the remote's HEAD again (a remote whose HEAD names no branch: left as is).
      if (!(await this.exactRefs(dir, ['refs/remotes/origin/HEAD'], job.signal)).size)
        await this.runGit(['remote', 'set-head', 'origin', '--auto'], dir, job.signal, { remoteUrl: job.remoteUrl });
      await this.git(['checkout', job.branch], dir, job.signal);
      return ws;
    }
    const mirror = await this.mirror(job.remoteUrl, job.signal);
    await privateDirectory(this.config.root);
    await this.git(
      ['clone', '--reference', mirror, '--dissociate', '--', job.remoteUrl, dir],
      undefined,
      job.signal,
      undefined,
      job.remoteUrl,
    );
    // Private to the service's user: what the sandboxed agent and tests write is the service user's own
    // on the host (a setuid file among it, say — sandbox/index.ts `dropSetIdBits`); no other user reaches it.
    await chmod(dir, 0o700);
    // Which run owns it, inside .git (never committed): the sweep maps directories back to runs.
    await writeFile(join(dir, '.git', RUN_ID_FILE), job.runId);
    const remoteHas = await this.git(
      ['ls-remote', '--heads', 'origin', `refs/heads/${job.branch}`],
      dir,
      job.signal,
      undefined,
      job.remoteUrl,
    );
    if (!remoteHas && job.existing) {
      await rm(dir, { recursive: true, force: true });
      throw new WorkflowError(`The branch "${job.branch}" is not in the repository, so there is nothing to change on it.`, {
        code: 'BRANCH_NOT_FOUND',
        category: 'validation',
        details: { branch: job.branch },
      });
    }
    // From the commit the remote-tracking branch names, read under its exact name: `origin/<base>`, and even
    // `refs/remotes/origin/<base>`, are ambiguous to `checkout -B` once the repository holds a tag of that
    // name (`refs/tags/refs/remotes/origin/main` too), which any writer can push, and the checkout failed
    // every run of that repository (test/workspace-ambiguous-start.test.ts). A missing ref still fails there.
    const startRef = `refs/remotes/origin/${remoteHas ? job.branch : job.base}`;
    const start = (await this.exactRefs(dir, [startRef], job.signal)).get(startRef)?.id ?? startRef;
    await this.git(['checkout', '-B', job.branch, start, '--'], dir, job.signal);
    return ws;
  }

  /**
   * The repository's own settings ({@link RepositorySettings}): `.github/rmapp.yml` and the instruction
   * files on its default branch (`refs/remotes/origin/HEAD`, else `refs/remotes/origin/<base>` when
   * `base` names the default branch) — never from the branch being worked on, which an issue's agent or
   * a pull request's author controls. A wrong file throws the ValidationError of `parseRepositoryConfig`.
   */
  async repositorySettings(ws: Pick<Workspace, 'dir'>, base: string | null, signal?: AbortSignal): Promise<RepositorySettings> {
    // Full ref names: a short `origin/HEAD` would resolve a tag `origin/HEAD` or a local branch of that
    // name (a pull request's head branch) before the remote-tracking ref — a ref anyone who can push
    // a tag or name a branch controls.
    // `origin/HEAD` only as the symbolic ref a clone makes of the remote's HEAD (where the remote's HEAD
    // names no branch, a branch the remote has named `HEAD` is fetched as a plain `origin/HEAD`), and
    // both refs by their exact names: a missing one is missing (given a full name that does not exist,
    // git tries `refs/tags/<name>`, `refs/heads/<name>`, … — a pull request's branch called
    // `refs/remotes/origin/main` checked out here, once `main` was renamed and pruned).
    const headName = 'refs/remotes/origin/HEAD';
    const baseName = base ? `refs/remotes/origin/${base}` : null;
    const found = await this.exactRefs(ws.dir, [headName, ...(baseName ? [baseName] : [])], signal);
    const head = found.get(headName);
    const commits = [
      ...(head?.symref.startsWith('refs/remotes/origin/') ? [head.id] : []),
      ...(baseName && found.has(baseName) ? [found.get(baseName)!.id] : []),
    ];
    for (const commit of commits) {
      const settings = await this.settingsAt(ws.dir, commit, signal);
      if (settings) return settings;
    }
    // No default branch to read: never fall back to the branch being worked on, nor to no settings
    // (the protected paths would then protect nothing).
    throw new WorkflowError(
      `Could not find the repository's default branch in the workspace (origin/HEAD${base ? ` or origin/${base}` : ''}), so its ${REPOSITORY_CONFIG} could not be read and nothing ran. Check that the repository's default branch exists.`,
      { code: 'DEFAULT_BRANCH_UNKNOWN', category: 'permanent', details: { base } },
    );
  }

  /**
   * The same settings read from the cached mirror of `remoteUrl` (its `HEAD`, the default branch),
   * before any workspace exists: the service checks the file when a command arrives, so a wrong one
   * is answered at once and nothing runs.
   */
  async repositorySettingsOf(remoteUrl: string, signal?: AbortSignal): Promise<RepositorySettings> {
    const dir = await this.mirror(remoteUrl, signal);
    // The branch HEAD names, by its exact name (a bare `HEAD` that names no branch resolves to a branch
    // named `HEAD`, and a full name that does not exist to `refs/tags/<name>`…: refs anyone who may push
    // can make).
    const head = await this.symbolicTarget(dir, 'HEAD', 'refs/heads/', signal);
    const commit = head ? (await this.exactRefs(dir, [head], signal)).get(head)?.id : undefined;
    const settings = commit ? await this.settingsAt(dir, commit, signal) : null;
    if (settings) return settings;
    // A repository with no branch yet has nothing to protect: the defaults (its work fails later, named).
    if (!(await this.git(['for-each-ref', '--count=1', '--format=%(refname)', 'refs/heads/'], dir, signal)))
      return { config: parseRepositoryConfig(''), instructionFiles: [] };
    throw new WorkflowError(
      `The repository's HEAD names no branch it has${head ? ` (${head})` : ''}, so its ${REPOSITORY_CONFIG} could not be read and nothing ran. Set its default branch.`,
      { code: 'DEFAULT_BRANCH_UNKNOWN', category: 'permanent', details: { head } },
    );
  }

  /**
   * Each of `names` (full ref names) that exists under exactly that name, with the object it names and,
   * for a symbolic ref, its target. (Given a full name that does not exist, `rev-parse` and `cat-file`
   * try `refs/tags/<name>`, `refs/heads/<name>`, …: names anyone who may push can take.)
   */
  private async exactRefs(
    dir: string,
    names: readonly string[],
    signal?: AbortSignal,
  ): Promise<Map<string, { id: string; symref: string }>> {
    const asked = names.filter((n) => /^refs\/[^\s\0]+$/.test(n));
    const out = asked.length ? await this.git(['for-each-ref', '--format=%(refname) %(symref) %(objectname)', ...asked], dir, signal) : '';
    const found = new Map<string, { id: string; symref: string }>();
    for (const line of out.split('\n')) {
      const [name, symref, id] = line.split(' ');
      // A pattern also matches the refs below it (`refs/x` matches `refs/x/y`): only exact names count.
      if (name && id && asked.includes(name)) found.set(name, { id, symref: symref ?? '' });
    }
    return found;
  }

  /** The full name of the ref the symbolic ref `name` points to, when it points under `prefix`; else null. */
  private async symbolicTarget(dir: string, name: string, prefix: string, signal?: AbortSignal): Promise<string | null> {
    const r = await this.runGit(['symbolic-ref', '--quiet', name], dir, signal);
    const target = r.exitCode === 0 ? r.stdout.trim() : '';
    return target.startsWith(prefix) && !/[\s\0]/.test(target) ? target : null;
  }

  /** The settings at `ref` (a commit's id) of the repository in `dir`, or null when it names no commit. */
  private async settingsAt(dir: string, ref: string, signal?: AbortSignal): Promise<RepositorySettings | null> {
    // Sizes first: a command's output keeps only its last MiB, so a larger file read whole would be
    // parsed or quoted from somewhere in its middle (settings silently lost). The commit and the type
    // and size of every file come from one git process (it was two per file: 24 of the 97 git
    // processes of one issue's run).
    const [commit, configInfo, ...instructionInfos] = await this.objectInfo(
      dir,
      [`${ref}^{commit}`, ...SETTINGS_FILES.map((f) => `${ref}:${f}`)],
      signal,
    );
    if (!commit || !('type' in commit) || commit.type !== 'commit') return null;
    if (configInfo && 'link' in configInfo)
      // Read as no settings, a link that leads nowhere would leave the protected paths protecting nothing.
      throw new ValidationError(
        `${REPOSITORY_CONFIG} is a symbolic link ${brokenLinkText(configInfo)}, so rmapp cannot read its settings — make it a file, or a link to a file in the repository.`,
        [{ path: REPOSITORY_CONFIG, message: `symbolic link: ${configInfo.link}` }],
      );
    const config = configInfo?.type === 'blob' ? configInfo : null;
    if (config && config.size > REPOSITORY_CONFIG_MAX_BYTES)
      throw new ValidationError(
        `${REPOSITORY_CONFIG} is ${config.size} bytes, more than the ${REPOSITORY_CONFIG_MAX_BYTES} a settings file may have — keep long instructions in AGENTS.md.`,
        [{ path: REPOSITORY_CONFIG, message: 'too large' }],
      );
    // Read by the ids git sized (not by name again: the branch may move in between).
    const settings = parseRepositoryConfig(config ? await this.readBlob(dir, config.id, signal) : '');
    const instructionFiles: { path: string; text: string }[] = [];
    const included = new Set<string>();
    for (const [i, path] of INSTRUCTION_FILES.entries()) {
      const info = instructionInfos[i];
      if (!info) continue;
      if ('link' in info) {
        instructionFiles.push({ path, text: `(${path} is a symbolic link ${brokenLinkText(info)}: it is not included.)` });
        continue;
      }
      // `CLAUDE.md -> AGENTS.md` (or two copies of one file): the text once, under the first name.
      if (info.type !== 'blob' || included.has(info.id)) continue;
      included.add(info.id);
      const text =
        info.size > INSTRUCTION_FILE_MAX_BYTES
          ? `(${path} is ${info.size} bytes, more than the ${INSTRUCTION_FILE_MAX_BYTES} rmapp reads: it is not included.)`
          : await this.readBlob(dir, info.id, signal);
      if (text.trim()) instructionFiles.push({ path, text });
    }
    return { config: settings, instructionFiles };
  }

  /** A blob's text. Throws GIT_FAILED when git cannot give it: read as empty, a settings file would protect nothing. */
  private async readBlob(dir: string, id: string, signal?: AbortSignal): Promise<string> {
    const args = ['cat-file', 'blob', id];
    return this.checked(args, await this.runGit(args, dir, signal)).stdout;
  }

  /**
   * The type and size of each of `objects` (`<ref>:<path>`, `<ref>^{commit}`), null for one that does
   * not exist, from one `git cat-file --batch-check`. Symbolic links in a path are followed inside the
   * commit (`CLAUDE.md -> AGENTS.md` is common; read as a blob, a link is its target's name), and one
   * that leads out of it or nowhere is a {@link BrokenLink}. A name holding a line break cannot name
   * anything (and would split the batch's lines): null. Throws GIT_FAILED when git cannot read the
   * repository — read as "no settings", the protected paths would protect nothing.
   */
  private async objectInfo(dir: string, objects: readonly string[], signal?: AbortSignal): Promise<(ObjectInfo | BrokenLink | null)[]> {
    const asked = objects.filter((o) => !/[\n\r\0]/.test(o));
    const args = ['cat-file', `--batch-check=%(objectname) %(objecttype) %(objectsize)`, '--follow-symlinks'];
    const chunks: Buffer[] = [];
    if (asked.length)
      this.checked(
        args,
        await this.runGit(args, dir, signal, { input: asked.map((o) => `${o}\n`).join(''), onStdout: (c) => void chunks.push(c) }),
      );
    const answers = parseBatchCheck(Buffer.concat(chunks), asked.length);
    if (!answers)
      throw new WorkflowError(`git cat-file did not answer once for each of ${asked.length} objects`, {
        code: 'GIT_FAILED',
        category: 'permanent',
      });
    const byName = new Map(asked.map((o, i) => [o, answers[i] ?? null]));
    return objects.map((o) => byName.get(o) ?? null);
  }

  /** The commit `HEAD` names in the workspace, or null (no commit yet). */
  async head(ws: Pick<Workspace, 'dir'>, signal?: AbortSignal): Promise<string | null> {
    const r = await this.runGit(['rev-parse', '--verify', '-q', 'HEAD'], ws.dir, signal);
    return r.exitCode === 0 ? r.stdout.trim() : null;
  }

  /**
   * What the remote's `ws.branch` is to a run that recorded the commits it pushed there (`pushed`):
   * `absent` when the remote had no such branch at the last fetch, `ours` when one of `pushed` that is
   * not on the default branch (`origin/HEAD`) is in it — a person may have added commits on top — and
   * `unknown` otherwise (a branch someone else made, or rmapp's own that a person force-pushed). A
   * commit of the default branch proves nothing: anyone's branch made from it holds it.
   */
  async remoteBranchOwner(
    ws: Pick<Workspace, 'dir' | 'branch'>,
    pushed: readonly string[],
    signal?: AbortSignal,
  ): Promise<'absent' | 'ours' | 'unknown'> {
    const tip = await this.runGit(['rev-parse', '--verify', '-q', `refs/remotes/origin/${ws.branch}^{commit}`], ws.dir, signal);
    if (tip.exitCode !== 0) return 'absent';
    const base = await this.exactRefs(ws.dir, ['refs/remotes/origin/HEAD'], signal);
    const defaultTip = base.get('refs/remotes/origin/HEAD')?.id;
    // Without the default branch (a remote whose HEAD names no branch: `prepare` sets it otherwise) no
    // commit can be told apart from one of the default branch — rmapp's merged commits are there, and a
    // branch anyone makes from it holds them — so none proves the branch rmapp's: the pull requests decide.
    if (!defaultTip) return 'unknown';
    for (const sha of pushed) {
      if (!/^[0-9a-f]{40,64}$/.test(sha)) continue;
      const inBranch = await this.runGit(['merge-base', '--is-ancestor', sha, tip.stdout.trim()], ws.dir, signal);
      if (inBranch.exitCode !== 0) continue;
      const onDefault = await this.runGit(['merge-base', '--is-ancestor', sha, defaultTip], ws.dir, signal);
      if (onDefault.exitCode !== 0) return 'ours';
    }
    return 'unknown';
  }

  /**
   * The files the commits after `before` up to `after` changed (at most 50 names, for "what each attempt
   * did"); from `after`'s parent when `before` is null. Through the service's git settings, as every git
   * command here: never with the service's environment (its secrets), hooks or replace refs.
   */
  async changedFiles(ws: Pick<Workspace, 'dir'>, before: string | null, after: string, signal?: AbortSignal): Promise<string[]> {
    const r = await this.runGit(['diff', '--name-only', before ?? `${after}~1`, after, '--'], ws.dir, signal);
    return r.exitCode === 0 ? r.stdout.split('\n').filter(Boolean).slice(0, 50) : [];
  }

  /**
   * The paths the working tree changes against `HEAD` (staged or not, new files included, renames as
   * both names): what an agent's run changed, before it is committed.
   */
  async changedPaths(ws: Workspace, signal?: AbortSignal): Promise<string[]> {
    await refuseNestedRepositories(ws.dir, signal);
    await this.git(['add', '-A'], ws.dir, signal);
    const out = await this.git(['diff', '--cached', '--name-only', '--no-renames', '-z', 'HEAD'], ws.dir, signal);
    return out.split('\0').filter(Boolean);
  }

  /**
   * Throws away what the working tree changes against `HEAD` (an attempt that broke a rule): tracked
   * files are reset, new files removed; what git ignores (the setup's output) stays. A FIFO the sandbox
   * left where git reads a file ({@link refuseNestedRepositories}) is removed first: `reset --hard`
   * waited on a `.gitattributes` one, `clean` on a `.gitignore` one, for git's whole timeout — after a
   * review's failed tests, say (test/sb-gitignore-fifo.test.ts). No FIFO is ever part of a commit.
   */
  async discardChanges(ws: Workspace, signal?: AbortSignal): Promise<void> {
    await findOutsideGit(ws.dir, [...GIT_READ_FILES, '-type', 'p', '-exec', 'rm', '-f', '{}', '+'], signal);
    await this.git(['reset', '-q', '--hard', 'HEAD'], ws.dir, signal);
    await this.git(['clean', '-q', '-f', '-d'], ws.dir, signal);
  }

  /**
   * Makes git ignore, in this workspace only (`.git/info/exclude`), the untracked files and
   * directories there are now: what the repository's setup commands made (dependencies, caches) is
   * then never committed with the agent's work.
   */
  async excludeUntracked(ws: Workspace, signal?: AbortSignal): Promise<string[]> {
    // What setup left is the sandbox's: a FIFO `.gitignore` there would hold `ls-files` for git's timeout.
    await refuseNestedRepositories(ws.dir, signal);
    const out = await this.git(['ls-files', '--others', '--exclude-standard', '--directory', '-z'], ws.dir, signal);
    const paths = out.split('\0').filter(Boolean);
    if (paths.length) {
      const file = join(ws.dir, '.git', 'info', 'exclude');
      await mkdir(join(ws.dir, '.git', 'info'), { recursive: true });
      const before = await readFile(file, 'utf8').catch(() => '');
      const lines = paths.map(excludeLine);
      await writeFile(file, `${before}${before && !before.endsWith('\n') ? '\n' : ''}${lines.join('\n')}\n`);
    }
    return paths;
  }

  /**
   * Commits every change, or nothing when there is none (a re-executed step makes no second commit).
   * With nothing to commit, `earlier` is the commit an earlier execution of the same step made — the
   * newest of the last 200 on the branch whose whole message is this message — so a step re-run after
   * its push (a crash before its result was recorded) still reports the commit it made. Callers put
   * their run's id in the message: another run's commit with the same subject (a retried run's attempt
   * 1, a second answer to the same review comment) is not taken for this step's own. `identity`: lines
   * that name the step execution (its trailers, pull-request-text.ts `attemptTrailers`) when the rest
   * of the message may differ when the step runs again (an agent's summary): the commit whose message
   * ends with a paragraph holding every one of these lines is the earlier one.
   */
  async commitAll(
    ws: Workspace,
    message: string,
    signal?: AbortSignal,
    /**
     * Commit only these paths (the service's own files, such as the plan): whatever else the working
     * tree holds — an analysing agent's edits — stays uncommitted for the checks of the agent's attempt.
     */
    only?: readonly string[],
    identity?: readonly string[],
  ): Promise<{ committed: boolean; sha: string; earlier: string | null }> {
    await refuseNestedRepositories(ws.dir, signal);
    const pathspec = only ? ['--', ...only] : [];
    await this.git(['add', '-A', ...pathspec], ws.dir, signal);
    const staged = await this.runGit(['diff', '--cached', '--quiet', ...pathspec], ws.dir, signal);
    if (staged.exitCode === 0) {
      const wanted = this.mask(message).trim();
      const lines = identity?.map((l) => this.mask(l).trim());
      const log = await this.git(['log', '-n', '200', '--format=%H%x1f%B%x1e', 'HEAD', '--'], ws.dir, signal);
      // The whole message also matches: a commit made before the identity trailers existed.
      const isEarlier = (body: string): boolean => {
        if (body.trim() === wanted) return true;
        if (!lines) return false;
        // Only the message's last paragraph, its trailers, and only whole lines there: the body above
        // is an agent's summary, which may hold a line that reads like another attempt's trailer.
        const trailers =
          body
            .trim()
            .split(/\n[ \t]*\n/)
            .at(-1) ?? '';
        const have = new Set(trailers.split('\n').map((l) => l.trimEnd()));
        return lines.every((l) => have.has(l));
      };
      const earlier =
        log
          .split('\x1e')
          .map((entry) => entry.replace(/^\n/, '').split('\x1f'))
          .find(([, body]) => body !== undefined && isEarlier(body))?.[0] ?? null;
      return { committed: false, sha: await this.git(['rev-parse', 'HEAD'], ws.dir, signal), earlier };
    }
    const check = await this.secretCheck(ws);
    await this.refuseSecrets(ws, pathspec, check, signal);
    // The message quotes the agent's summary: masked with the token git pushes with as well, which the
    // service's masker does not know (an installation token is minted as the service runs), and refused
    // if the check still finds a secret there, as a file holding it is.
    const text = check.mask(message);
    if (check.find?.(text)) {
      await this.discardChanges(ws, signal);
      throw secretInChanges(check.find(text), "the commit message (it quotes the agent's summary)", null);
    }
    // `-F -`: the message (which may quote an issue title) comes on stdin, never as an argument.
    // With paths, `git commit -- <paths>` commits those paths only, whatever else is staged.
    await this.git(['commit', '-q', '--no-verify', '-F', '-', ...pathspec], ws.dir, signal, text);
    return { committed: true, sha: await this.git(['rev-parse', 'HEAD'], ws.dir, signal), earlier: null };
  }

  /**
   * How a commit of `ws` is checked for secrets ({@link WorkspaceConfig.findSecret}, and the token git
   * pushes this workspace with: an App's installation token is minted as the service runs, so no
   * configured list holds it — a personal token is `github.token`, found by the configured check), and
   * how what the service shows of the commit (its message, a refused file's name) is masked: with the
   * service's masker and that token in every form the masker knows. The service's masker alone left the
   * token base64'd in a file name quoted by the refusal, and in a commit message quoting the agent's summary.
   */
  private async secretCheck(ws: Workspace): Promise<{ find: SecretFinder | null; mask: (text: string) => string }> {
    const configured = this.config.findSecret ?? this.config.holdsSecret;
    const token = /^https?:/.test(ws.remoteUrl)
      ? await Promise.resolve(this.config.token?.(ws.remoteUrl)).catch(() => undefined)
      : undefined;
    const pushToken =
      token && refusesCommits(token)
        ? secretFinder([
            {
              label: `${SERVICE_SECRET_LABEL} GitHub token for this repository (the token git pushes with: an App installation token)`,
              secrets: [token],
            },
          ])
        : null;
    const tokenMasker = token ? createMasker([token]) : null;
    return {
      find: configured || pushToken ? (text) => configured?.(text) || pushToken?.(text) || null : null,
      mask: (text) => (tokenMasker ? tokenMasker.text(this.mask(text)) : this.mask(text)),
    };
  }

  /**
   * Fails when what is staged adds one of the sandbox's secrets or the service's own (`check`:
   * {@link Workspaces.secretCheck}, through {@link AddedSecretScanner}), in a file's added lines or its
   * name: code `SECRET_IN_CHANGES`, category `validation`, naming what was found, the file and the
   * lines, never the value — a file name that still holds a secret once masked is not shown. The
   * attempt's changes are discarded, so nothing of it is committed or pushed (as with a protected path).
   */
  private async refuseSecrets(
    ws: Workspace,
    pathspec: readonly string[],
    check: { find: SecretFinder | null; mask: (text: string) => string },
    signal?: AbortSignal,
  ): Promise<void> {
    const { find, mask } = check;
    if (!find) return;
    const scanner = new AddedSecretScanner(find);
    // `--no-textconv`: a `.gitattributes` the agent wrote could name a textconv driver of the operator's git configuration.
    const args = ['diff', '--cached', '--text', '--no-color', '--no-ext-diff', '--no-textconv', '--no-renames', '-U0', ...pathspec];
    this.checked(args, await this.runGit(args, ws.dir, signal, { onStdout: (chunk) => scanner.write(chunk) }));
    // The names as git stores them (the diff's header quotes a tab or a non-ASCII byte, which hid a
    // name spelling the secret out with tabs or no-break spaces between its characters).
    const listing = ['diff', '--cached', '--name-only', '--no-renames', '-z', ...pathspec];
    const names = this.checked(listing, await this.runGit(listing, ws.dir, signal)).stdout.split('\0');
    let what: string | boolean | null = null;
    const named = names.find((name) => {
      const hit = name ? find(name) : null;
      if (hit) what = hit;
      return Boolean(hit);
    });
    const inDiff = named ?? scanner.end();
    // What git stored may not be what a checkout writes: a file `.gitattributes` gives a
    // `working-tree-encoding` is read back from the blob's UTF-8 in that encoding. Written in UTF-8 under
    // `working-tree-encoding=UTF-16LE`, the token went into the blob as other characters (no form the
    // check knows) and came back whole in every clone.
    const reencoded = inDiff === undefined || inDiff === null ? await this.reencodedSecret(ws.dir, names, find, signal) : null;
    const found = inDiff ?? reencoded?.found;
    if (found === undefined || found === null) return;
    what = named ? what : (reencoded?.what ?? scanner.what);
    const lines = named ? null : (reencoded?.lines ?? scanner.lines);
    await this.discardChanges(ws, signal);
    const file = named ?? /^diff --git a\/.* b\/(.*)$/.exec(found)?.[1] ?? found.slice('diff --git '.length);
    // Masked whole, then cut: a name the check still finds a secret in once masked is not shown at all.
    const masked = mask(file);
    const shown = find(masked) ? null : masked.slice(0, 200);
    const at = !lines ? '' : lines.first === lines.last ? `, line ${lines.first}` : `, lines ${lines.first}–${lines.last}`;
    const where = named
      ? shown === null
        ? 'the name of a file (not shown: it holds the secret in a form the masker does not know)'
        : `the name of ${shown}`
      : `${shown ?? 'a file whose name is not shown'}${at}${reencoded ? ' (as a checkout writes it: its .gitattributes working-tree-encoding)' : ''}`;
    throw secretInChanges(what, where, shown, lines);
  }

  /**
   * The first of the staged files `names` that `.gitattributes` give a `working-tree-encoding` whose
   * bytes in the working tree — what a checkout of the commit writes back — hold a secret, read as the
   * diff is ({@link AddedSecretScanner}, every line taken as added); null when none does. A symlink is
   * skipped (git stores its target, which the diff showed), as is a path through one ({@link realFoldersOnly}).
   */
  private async reencodedSecret(
    dir: string,
    names: readonly string[],
    find: SecretFinder,
    signal?: AbortSignal,
  ): Promise<{ found: string; what: string | null; lines: { first: number; last: number } | null } | null> {
    const paths = names.filter(Boolean);
    if (!paths.length) return null;
    const args = ['check-attr', '-z', '--stdin', 'working-tree-encoding'];
    const out = this.checked(args, await this.runGit(args, dir, signal, { input: paths.join('\0') })).stdout.split('\0');
    for (let i = 0; i + 2 < out.length; i += 3) {
      const [path = '', , info = ''] = out.slice(i, i + 3);
      if (!path || ['unspecified', 'unset', 'set'].includes(info)) continue;
      if (!(await realFoldersOnly(dir, path))) continue;
      const handle = await open(join(dir, path), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => null);
      if (!handle) continue;
      const header = `diff --git a/${path} b/${path}`;
      const scanner = new AddedSecretScanner(find);
      try {
        if (!(await handle.stat()).isFile()) continue;
        scanner.write(Buffer.from(`${header}\n@@ -0,0 +1 @@\n+`));
        const buffer = Buffer.alloc(1024 * 1024);
        for (let n = (await handle.read(buffer, 0, buffer.length)).bytesRead; n > 0 && scanner.found === null;) {
          // Every line added: a `+` after each line break (as bytes: latin1 keeps each byte as it is).
          scanner.write(Buffer.from(buffer.subarray(0, n).toString('latin1').replaceAll('\n', '\n+'), 'latin1'));
          n = (await handle.read(buffer, 0, buffer.length)).bytesRead;
        }
      } finally {
        await handle.close();
      }
      if (scanner.end() !== null) return { found: header, what: scanner.what, lines: scanner.lines };
    }
    return null;
  }

  /** Pushes the branch (a push that has nothing new to send is a no-op). */
  async push(ws: Workspace, signal?: AbortSignal): Promise<void> {
    if (!ws.existing) {
      await this.git(['push', 'origin', `HEAD:refs/heads/${ws.branch}`], ws.dir, signal, undefined, ws.remoteUrl);
      return;
    }
    // A pull request's branch: pushed only as a fast-forward of the commit the run fetched, and only
    // if the remote still has that commit there — a branch deleted or moved on meanwhile is neither
    // re-created nor overwritten.
    const changed = () =>
      new WorkflowError(
        `The branch "${ws.branch}" was deleted or changed in the repository while the run worked on it; nothing was pushed.`,
        {
          code: 'BRANCH_CHANGED',
          category: 'validation',
          details: { branch: ws.branch },
        },
      );
    const local = (args: string[]) => this.runGit(args, ws.dir, signal);
    const seen = await local(['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${ws.branch}`]);
    if (seen.exitCode !== 0) throw changed();
    const base = seen.stdout.trim();
    if ((await local(['merge-base', '--is-ancestor', base, 'HEAD'])).exitCode !== 0) throw changed();
    try {
      await this.git(
        ['push', `--force-with-lease=refs/heads/${ws.branch}:${base}`, 'origin', `HEAD:refs/heads/${ws.branch}`],
        ws.dir,
        signal,
        undefined,
        ws.remoteUrl,
      );
    } catch (err) {
      if (/stale info|rejected/i.test((err as Error).message)) throw changed();
      throw err;
    }
  }

  /** Removes the workspace (when the run ended well; a failed run's is kept for inspection). */
  async remove(ws: Workspace): Promise<void> {
    await removeTree(ws.dir);
  }

  /**
   * The directory of a run's workspace (it may not exist): one per run id, always inside the root. An
   * id made only of letters, digits, `.`, `_` and `-` (not starting with `.`) is the directory's name;
   * any other id is named by its letters and a hash of the whole id. Replacing characters alone gave
   * `a/b`, `a_b`, `a:b` and `a@b` one directory (a run resumed in another's work, a run's removal
   * deleting another's), and `..` the root's parent, which a finished run's removal deleted.
   * A workspace made under the old naming (a run in flight at an upgrade) is found by the run id it records.
   */
  dirOf(runId: string): string {
    const plain = runId.replace(/[^\w.-]/g, '_');
    const named = resolve(this.config.root, plain);
    const hash = createHash('sha256').update(runId).digest('hex').slice(0, 16);
    const dir = resolve(this.config.root, `${plain.replace(/^\.+/, '_').slice(0, 100)}=${hash}`);
    // A plain id's directory, unless a run of another id made it under the old naming (`a/b` made
    // `a_b`): then the hashed one, also once that other run's directory is gone.
    if (plain === runId && !runId.startsWith('.')) {
      const recorded = recordedRunId(named);
      if (recorded === runId || (recorded === null && recordedRunId(dir) !== runId)) return named;
      return dir;
    }
    // A directory (not a symlink) the old naming made for this very run.
    if (plain !== runId && !existsSync(dir) && !/^\.*$/.test(plain) && isRealDirectory(named) && recordedRunId(named) === runId) {
      return named;
    }
    return dir;
  }

  /**
   * Removes workspaces no run needs: `keep(runId)` says, for each workspace's run, whether to keep it
   * (the service keeps those of unfinished runs, and of failed runs for a while, for inspection).
   * Directories whose run is unknown (made before run ids were recorded) are left alone.
   */
  async sweep(keep: (runId: string) => Promise<boolean>): Promise<{ removed: string[]; kept: number }> {
    const removed: string[] = [];
    let kept = 0;
    const entries = await readdir(this.config.root, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const dir = join(this.config.root, entry.name);
      const runId = await readFile(join(dir, '.git', RUN_ID_FILE), 'utf8').catch(() => null);
      if (runId === null) continue;
      if (await keep(runId)) kept += 1;
      else {
        await removeTree(dir);
        removed.push(runId);
      }
    }
    return { removed, kept };
  }

  /** Removes a run's workspace by run id (the service does this when a run succeeds or is cancelled). */
  async removeRun(runId: string): Promise<void> {
    await removeTree(this.dirOf(runId));
  }
}

/**
 * The `.git/info/exclude` line that names exactly `path`: anchored, glob characters and a trailing space
 * escaped (git trims unescaped trailing spaces). A line break cannot be written in a pattern, so it is
 * matched by `?`: a file named `x\n*` made by a repository's setup command wrote a line `*`, and git
 * then ignored every new file the agent made, which its commit left out.
 */
export function excludeLine(path: string): string {
  const escaped = path.replace(/[\\*?[\]!#]/g, '\\$&').replace(/[\r\n]/g, '?');
  return `/${escaped.endsWith(' ') ? `${escaped.slice(0, -1)}\\ ` : escaped}`;
}
