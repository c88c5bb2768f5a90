/**
 * Crash tests of the GitHub workflows with real processes: the GitHub emulator and a bare git remote
 * live in the test process; workers are child processes (test/fixtures/github-worker.ts) that reach
 * them over HTTP and the file system, share one Postgres database, and are killed with SIGKILL (by an
 * armed fault point, RMAPP_FAULT, or by the emulator in the middle of a request). A fresh worker then
 * resumes, and the test counts the effects: PRs, comments, replies, commits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine, openDatabase, type Database, type Engine } from '../../src/index.ts';
import { createGitHubClient, type GitHubOctokit } from '../../src/rmapp/github/client.ts';
import { runCommand } from '../../src/rmapp/process.ts';
import { GitHubEmulator } from './github-emulator.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';
import { ROOT } from './processes.ts';
import { createBareRemote } from './git-remote.ts';
import { bundledScript } from './bundle.ts';

export const GITHUB_WORKER = join(ROOT, 'test/fixtures/github-worker.ts');
export const TOKEN = 't0ken';

import { crashTestDeps, crashTestWorkflows } from './github-crash-workflows.ts';

export { crashTestDeps, crashTestWorkflows, STAGES } from './github-crash-workflows.ts';

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface CrashWorld {
  emulator: GitHubEmulator;
  /** A client for the emulator from the test process (seeding PRs). */
  github: GitHubOctokit;
  remote: string;
  db: Database;
  /** Starts runs and reads them; runs no worker. */
  client: Engine;
  git(cwd: string, ...args: string[]): Promise<string>;
  /** Spawns a worker; `fault` arms RMAPP_FAULT in it. */
  /** A worker process; with `workerId`, under that stable id (a restart under it takes its runs back at once). */
  worker(options?: { fault?: string | undefined; workerId?: string | undefined }): WorkerProcess;
  /** SIGKILLs every worker still alive. */
  killWorkers(): void;
  close(): Promise<void>;
}

/** A bare remote with `main` (app.txt), the emulator with `acme/widgets`, a fresh Postgres database. */
export async function createCrashWorld(options: { leaseMs?: number } = {}): Promise<CrashWorld> {
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-crash-gh-'));
  const git = async (cwd: string, ...args: string[]) => (await runCommand(['git', ...args], { cwd })).stdout.trim();
  const remote = await createBareRemote(tmp, 'widgets', { 'app.txt': 'let foo = 1;\n' });

  const emulator = new GitHubEmulator(TOKEN);
  const baseUrl = await emulator.start();
  emulator.repos.set('acme/widgets', { default_branch: 'main' });
  const github = createGitHubClient({ baseUrl, token: TOKEN, minWriteIntervalMs: 0, minNotifyingWriteIntervalMs: 0, retryBaseMs: 10 });
  const testDb: TestDatabase = await createTestDatabase('rmapp_crash_gh');
  const db = await openDatabase({ url: testDb.url });
  const workspaces = join(tmp, 'runs');
  const client = createEngine({ database: db, workflows: crashTestWorkflows(crashTestDeps({ github, remote, workspaces })) });
  await client.list({ limit: 1 }); // migrations applied here, before any worker starts
  const script = await bundledScript(GITHUB_WORKER);

  const children = new Set<ChildProcess>();
  const worker = ({ fault, workerId }: { fault?: string | undefined; workerId?: string | undefined } = {}): WorkerProcess => {
    const env: Record<string, string | undefined> = {
      ...process.env,
      DATABASE_URL: testDb.url,
      RMAPP_TEST_GITHUB_URL: baseUrl,
      RMAPP_TEST_GITHUB_TOKEN: TOKEN,
      RMAPP_TEST_REMOTE: remote,
      RMAPP_TEST_WORKSPACES: workspaces,
      // 2 s, as the crash matrix's (test/helpers/crash-matrix.ts): a worker starved of CPU for a second
      // lost its own 1 s lease and took its run back, one `run.resumed` more than a crash makes.
      RMAPP_TEST_LEASE_MS: String(options.leaseMs ?? 2_000),
      RMAPP_FAULT: fault,
      RMAPP_TEST_WORKER_ID: workerId,
    };
    if (!fault) delete env.RMAPP_FAULT;
    if (!workerId) delete env.RMAPP_TEST_WORKER_ID;
    const child = spawn(process.execPath, [script], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (out += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => {
        children.delete(child);
        resolve({ code, signal });
      }),
    );
    return { child, output: () => out, exited };
  };
  const killWorkers = () => {
    for (const c of children) c.kill('SIGKILL');
  };
  return {
    emulator,
    github,
    remote,
    db,
    client,
    git,
    worker,
    killWorkers,
    async close() {
      killWorkers();
      await client.stop();
      await db.close();
      await emulator.stop();
      await testDb.drop();
    },
  };
}

/** Stops a worker gracefully (SIGTERM: it flushes its progress comments and releases its runs). */
export async function stopWorker(w: WorkerProcess): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  w.child.kill('SIGTERM');
  await w.exited;
}
