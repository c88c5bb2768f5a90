/**
 * `rmapp demo`: the whole GitHub bot on one machine, with nothing to set up. A local GitHub (the
 * emulator, answering only as GitHub's OpenAPI description allows, with web pages to watch), a local
 * git remote holding a small repository with real tests, the sample agent (scripted, deterministic)
 * or a real one, and the service on embedded PGlite. A person files an issue and comments
 * `@rmapp implement`; once the pull request exists they leave a review comment mentioning the bot.
 * Both reach the service as signed webhooks, exactly as GitHub's would (README, "Try it: rmapp demo").
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { issueBranch } from '../../machines/issue-branch.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { createGitHubClient } from '../github/client.ts';
import { createLogger, type Logger } from '../logger.ts';
import { startService, type Service } from '../service.ts';
import { takeDemoFolder } from './demo-folder.ts';
import { createBareRemote } from './git-remote.ts';
import { GitHubEmulator } from './github-emulator.ts';
import { githubWebPage } from './github-web.ts';
import {
  SAMPLE_COMMAND,
  SAMPLE_FILES,
  SAMPLE_ISSUE,
  SAMPLE_OWNER,
  SAMPLE_PERSON,
  SAMPLE_REPO,
  SAMPLE_REVIEW,
  SAMPLE_TEST_COMMAND,
} from './sample.ts';

/** The sample agent: a script that acts on directives in the prompt (see its header). */
export const SAMPLE_AGENT = ['node', fileURLToPath(new URL('./scripted-agent.mjs', import.meta.url))];

/**
 * Variables of the caller's environment the demo passes on: how to sandbox (RMAPP_SANDBOX…) and what
 * a real agent needs (RMAPP_AGENT_ENV names its API key variable, RMAPP_AGENT_NETWORK its hosts).
 */
const PASSED_ON = /^RMAPP_(SANDBOX|AGENT_ENV|AGENT_NETWORK|AGENT_TIMEOUT|AGENT_KIND|AGENT_MAX_|TEST_TIMEOUT)/;

/** How long the demo's stop lets running steps finish. */
export const DEMO_STOP_GRACE_MS = 5_000;

export interface DemoOptions {
  /** The folder the demo keeps its state in: `<dir>/.rmapp/demo/`, emptied at start (refused while another demo holds it). */
  dir: string;
  /** Dashboard port (0: any free port). Default 3000. */
  port?: number | undefined;
  /** The agent command, as RMAPP_AGENT_COMMAND takes it (a JSON array or words); default the sample agent. */
  agent?: string | undefined;
  /** The caller's environment, for the variables in {@link PASSED_ON}. Default `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
  /** What happens, one line each (default: nothing). */
  say?: ((line: string) => void) | undefined;
  /** The service's log (default: warnings and errors on stderr). */
  log?: Logger | undefined;
}

/** A run the demo started, as the demo's stop left it. */
export interface DemoRunLeft {
  id: string;
  workflow: string;
  status: string;
  state: unknown;
}

/** One JSON document summing the demo up (`rmapp demo --json`). */
export interface DemoResult {
  runs: { id: string; workflow: string; status: string }[];
  pullRequest: { number: number; url: string } | null;
}

export interface Demo {
  dashboardUrl: string;
  /** The local GitHub's web pages. */
  githubUrl: string;
  emulator: GitHubEmulator;
  service: Service;
  /** Settles when both runs have ended (or the script could not go on: then the summary says how far it got). */
  finished: Promise<DemoResult>;
  /**
   * Stops the service (running steps finish within {@link DEMO_STOP_GRACE_MS}) and the local GitHub, and releases the folder.
   * With `readRuns`, returns every run the demo started (its webhooks' GitHubDelivery runs and the runs
   * they started) as the stop left it — read after the stop, since a step may end a run in its grace;
   * else an empty list.
   */
  stop(options?: { readRuns?: boolean }): Promise<DemoRunLeft[]>;
}

/** Starts everything and the person's script; see {@link Demo.finished}. */
export async function startDemo(options: DemoOptions): Promise<Demo> {
  const home = join(options.dir, '.rmapp', 'demo');
  const releaseFolder = await takeDemoFolder(home);
  try {
    return await startDemoIn(home, options, releaseFolder);
  } catch (err) {
    releaseFolder();
    throw err;
  }
}

async function startDemoIn(home: string, options: DemoOptions, releaseFolder: () => void): Promise<Demo> {
  const say = options.say ?? (() => {});
  mkdirSync(join(home, 'remotes'), { recursive: true });
  const token = randomBytes(16).toString('hex');
  const secret = randomBytes(16).toString('hex');
  const emulator = new GitHubEmulator(token, 'rmapp[bot]');
  const gitDir = (owner: string, repo: string) =>
    owner === SAMPLE_OWNER && repo === SAMPLE_REPO ? join(home, 'remotes', `${SAMPLE_REPO}.git`) : undefined;
  const apiUrl = await emulator.start({ web: (path) => githubWebPage(emulator, path, { gitDir }) });
  const githubUrl = apiUrl.replace(/\/api\/v3$/, '');
  emulator.webUrl = githubUrl;
  const fullName = `${SAMPLE_OWNER}/${SAMPLE_REPO}`;
  emulator.repos.set(fullName, { default_branch: 'main' });
  emulator.permissions.set(`${fullName}:${SAMPLE_PERSON}`, 'write');
  await createBareRemote(join(home, 'remotes'), SAMPLE_REPO, SAMPLE_FILES);

  const port = options.port ?? 3000;
  const passed = Object.fromEntries(
    Object.entries(options.env ?? process.env).filter(([name, value]) => PASSED_ON.test(name) && value !== undefined),
  );
  let service: Service;
  try {
    const config = await loadConfig({
      cwd: home, // no rmapp.config.* there: the demo is configured here and only here
      env: {
        ...passed,
        GITHUB_TOKEN: token,
        GITHUB_API_URL: apiUrl,
        GITHUB_WEBHOOK_SECRET: secret,
        RMAPP_GIT_URL: join(home, 'remotes', '{repo}.git'),
        RMAPP_AGENT_COMMAND: options.agent ?? JSON.stringify(SAMPLE_AGENT),
        // The sample agent prints plain text: RMAPP_AGENT_KIND applies to a real agent given with --agent.
        ...(options.agent ? {} : { RMAPP_AGENT_KIND: 'command' }),
        RMAPP_TEST_COMMAND: JSON.stringify(SAMPLE_TEST_COMMAND),
        RMAPP_WORKSPACE_ROOT: join(home, 'workspaces'),
        RMAPP_HOST: '127.0.0.1',
        PORT: String(port),
        ...(port ? { RMAPP_PUBLIC_URL: `http://127.0.0.1:${port}` } : {}),
      },
    }).catch((err: unknown) => {
      // The agent's command came from --agent, not from a variable the user set.
      if (options.agent && err instanceof ConfigError)
        throw new ConfigError(
          err.problems.map((p) =>
            p
              .replaceAll('agent.command (env RMAPP_AGENT_COMMAND)', '--agent')
              .replace(/ — set RMAPP_AGENT_COMMAND to the coding agent, .*$/, ''),
          ),
        );
      throw err;
    });
    service = await startService({
      config,
      database: { url: '', dataDir: join(home, 'pgdata') },
      // The local GitHub has no secondary rate limits: no spacing of writes (GitHub's needs 1 s, 3 s
      // for comments), so the demo moves at the pace of the work.
      github: createGitHubClient({ baseUrl: apiUrl, token, minWriteIntervalMs: 0, minNotifyingWriteIntervalMs: 0 }),
      engine: { pollMs: 250 },
      progressIntervalMs: 500,
      log: options.log ?? createLogger({ level: 'warn', secrets: [token, secret] }),
    });
  } catch (err) {
    await emulator.stop();
    throw err;
  }
  say(`Dashboard:    ${service.url}/`);
  say(`Local GitHub: ${githubUrl}/`);

  const deliver = async (event: string, payload: object): Promise<string> => {
    const body = JSON.stringify(payload);
    const res = await fetch(`${service.url}/webhooks/github`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': event,
        'x-github-delivery': randomUUID(),
        'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
      },
      body,
    });
    const answer = (await res.json()) as { runId?: string; error?: string; ignored?: string };
    if (!answer.runId) throw new Error(`The service did not take the ${event} webhook (${res.status}): ${answer.error ?? answer.ignored}`);
    return answer.runId;
  };
  /** The run a delivery started (GitHubDelivery's outcome). */
  const startedBy = async (deliveryRunId: string): Promise<string> => {
    const delivery = await service.engine.waitFor(deliveryRunId);
    const outcome = (delivery.output as { outcome?: { action: string; runId?: string } } | null)?.outcome;
    if (outcome?.action !== 'started' || !outcome.runId)
      throw new Error(`The webhook started no run: ${JSON.stringify(delivery.output)} (${delivery.status})`);
    return outcome.runId;
  };
  const repository = {
    name: SAMPLE_REPO,
    full_name: fullName,
    owner: { login: SAMPLE_OWNER, type: 'Organization' },
    html_url: `${githubUrl}/${fullName}`,
  };
  const person = { login: SAMPLE_PERSON, type: 'User' };

  const runs: DemoResult['runs'] = [];
  /** The ids of every run the demo started, in order: each webhook's delivery, then the run it started. */
  const started: string[] = [];
  const startedRun = async (event: string, payload: object): Promise<string> => {
    const delivery = await deliver(event, payload);
    started.push(delivery);
    const id = await startedBy(delivery);
    started.push(id);
    return id;
  };
  let pullRequest: DemoResult['pullRequest'] = null;
  const script = async (): Promise<void> => {
    emulator.issues.set(`${fullName}#${SAMPLE_ISSUE.number}`, { title: SAMPLE_ISSUE.title, body: SAMPLE_ISSUE.body });
    const commentId = emulator.addIssueComment(SAMPLE_OWNER, SAMPLE_REPO, SAMPLE_ISSUE.number, SAMPLE_COMMAND, SAMPLE_PERSON);
    say(
      `${SAMPLE_PERSON} opened issue #${SAMPLE_ISSUE.number} and commented "@rmapp implement": ${githubUrl}/${fullName}/issues/${SAMPLE_ISSUE.number}`,
    );
    const implementationId = await startedRun('issue_comment', {
      action: 'created',
      issue: { number: SAMPLE_ISSUE.number, title: SAMPLE_ISSUE.title, body: SAMPLE_ISSUE.body, state: 'open', user: person },
      comment: {
        id: commentId,
        body: SAMPLE_COMMAND,
        created_at: new Date().toISOString(),
        user: person,
        html_url: `${githubUrl}/${fullName}/issues/${SAMPLE_ISSUE.number}#issuecomment-${commentId}`,
      },
      repository,
      sender: person,
    });
    say(`IssueImplementation started: ${service.url}/runs/${encodeURIComponent(implementationId)}`);
    const implementation = await service.engine.waitFor(implementationId);
    runs.push({ id: implementation.id, workflow: implementation.workflow, status: implementation.status });
    say(`IssueImplementation ${implementation.status}`);
    const pull = (emulator.pulls.get(fullName) ?? []).find((p) => p.head === issueBranch(SAMPLE_ISSUE.number));
    if (!pull) return;
    pullRequest = { number: pull.number, url: `${githubUrl}/${fullName}/pull/${pull.number}` };
    say(`Pull request #${pull.number}: ${pullRequest.url}`);

    const reviewCommentId = emulator.addReviewComment(SAMPLE_OWNER, SAMPLE_REPO, pull.number, SAMPLE_REVIEW.body, SAMPLE_PERSON, {
      path: SAMPLE_REVIEW.path,
      line: SAMPLE_REVIEW.line,
    });
    say(`${SAMPLE_PERSON} left a review comment on ${SAMPLE_REVIEW.path} mentioning @rmapp`);
    const reviewId = await startedRun('pull_request_review_comment', {
      action: 'created',
      pull_request: {
        number: pull.number,
        title: pull.title,
        state: pull.state,
        head: { ref: pull.head },
        base: { ref: pull.base },
        user: { login: 'rmapp[bot]', type: 'Bot' },
      },
      comment: {
        id: reviewCommentId,
        body: SAMPLE_REVIEW.body,
        created_at: new Date().toISOString(),
        path: SAMPLE_REVIEW.path,
        line: SAMPLE_REVIEW.line,
        user: person,
        pull_request_review_id: null,
      },
      repository,
      sender: person,
    });
    say(`PRReview started: ${service.url}/runs/${encodeURIComponent(reviewId)}`);
    const review = await service.engine.waitFor(reviewId);
    runs.push({ id: review.id, workflow: review.workflow, status: review.status });
    say(`PRReview ${review.status}`);
  };
  const finished = script().then(
    () => ({ runs, pullRequest }),
    (err: unknown) => {
      say(`The demo could not go on: ${(err as Error).message}`);
      return { runs, pullRequest };
    },
  );

  return {
    dashboardUrl: `${service.url}/`,
    githubUrl: `${githubUrl}/`,
    emulator,
    service,
    finished,
    async stop(stopOptions = {}) {
      try {
        await service.stop({ graceMs: DEMO_STOP_GRACE_MS });
        const left: DemoRunLeft[] = [];
        if (stopOptions.readRuns) {
          // The engine opens its store again to read them, and closes it before the folder is released.
          for (const id of started) {
            const run = await service.engine.get(id);
            left.push({ id, workflow: run.workflow, status: run.status, state: run.state });
          }
          await service.engine.stop();
        }
        await emulator.stop();
        return left;
      } finally {
        releaseFolder();
      }
    },
  };
}
