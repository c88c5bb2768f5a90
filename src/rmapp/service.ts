/**
 * `rmapp serve`: one process with the HTTP server (webhooks, dashboard, API, metrics) and a worker.
 * With GitHub configured it runs the GitHub workflows, keeps a progress comment per run and removes
 * a run's workspace when it succeeds or is cancelled (a failed run's is kept for inspection). With no
 * GitHub settings it still serves the dashboard and runs the other registered workflows.
 */
import type { InspectionEvent } from 'xstate';
import { createEngine, type Engine, type EngineOptions } from '../state_machine/engine.ts';
import { RunNotFoundError, stoppedWhileStarting, ValidationError } from '../state_machine/errors.ts';
import type { AnyWorkflowDefinition } from '../state_machine/definition.ts';
import { isFinalStatus } from '../persistence/run-status.ts';
import { issueBranch } from '../machines/issue-branch.ts';
import { createGitHubAccess, createRoutedGitHubClient, type GitHubOctokit } from './github/client.ts';
import { gitUrlFor, sandboxSecretSources, secretsOf, webUrl, type RmappConfig } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { connectionStringSecrets, createMasker, type Masker } from './masking.ts';
import { startInspector } from './inspector.ts';
import { attachProgressComments, type ProgressCommentOptions } from './progress-comment.ts';
import { startServiceServer } from './server/http-server.ts';
import { webhookHandler } from './server/webhook-handler.ts';
import { githubWorkflows, stagesOf } from './workflows/github-workflows.ts';
import type { WorkflowExecutor } from './workflows/executor.ts';
import { secretFinder } from './secret-scan.ts';
import { serviceSecretSources } from './service-secret-sources.ts';
import { Workspaces } from './workspace.ts';
import { createSandbox, DEFAULT_LIMITS, type Sandbox } from './sandbox/index.ts';

export interface ServiceOptions {
  config: RmappConfig;
  /** Extra workflows (`--workflows`), run next to the GitHub ones. */
  extraWorkflows?: readonly AnyWorkflowDefinition[] | undefined;
  /** Old versions that unfinished runs still use (`previousVersions` of the workflows module). */
  previousVersions?: readonly AnyWorkflowDefinition[] | undefined;
  /** Stately Inspector WebSocket URL (`--inspect`). */
  inspectUrl?: string | undefined;
  otel?: boolean | undefined;
  metrics?: boolean | undefined;
  /** Overrides for tests: a GitHub client (e.g. pointed at the emulator with no throttling). */
  github?: GitHubOctokit | undefined;
  log?: Logger | undefined;
  /** The store (tests: in-memory PGlite); default `config.databaseUrl`, else PGlite under `.rmapp/`. */
  database?: EngineOptions['database'];
  /** Engine tuning (tests use short polls). */
  engine?: { pollMs?: number; leaseMs?: number; workerId?: string } | undefined;
  progressIntervalMs?: number | undefined;
  /**
   * Gives the start up (`rmapp serve` aborts it on SIGTERM/SIGINT): the wait for a database that is not
   * reachable ends, what started is stopped, and startService rejects.
   */
  signal?: AbortSignal | undefined;
}

export interface Service {
  engine: Engine;
  executor: WorkflowExecutor | null;
  /** Run workspaces (GitHub mode). */
  workspaces: Workspaces | null;
  url: string;
  log: Logger;
  stop(options?: { graceMs?: number }): Promise<void>;
}

/** Kept here for the callers that import it with the service (defined with the configuration). */
export { secretsOf };

/**
 * Masks what the service writes to GitHub (comment and reply bodies, PR titles and bodies): a test's
 * output or an agent's error quoted in a comment never carries a secret.
 */
export function maskGitHubWrites(github: GitHubOctokit, masker: Masker): GitHubOctokit {
  github.hook.before('request', (options) => {
    for (const key of ['body', 'title'] as const) if (typeof options[key] === 'string') options[key] = masker.text(options[key] as string);
  });
  return github;
}

/** What {@link githubRuntime} builds. */
export interface GitHubRuntime {
  github: GitHubOctokit;
  workspaces: Workspaces;
  registry: ReturnType<typeof githubWorkflows>;
  sandbox: Sandbox;
}

/**
 * The GitHub side, built from the configuration: the client (token, or App installations routed per
 * repository), the workspaces (git authenticated with the same tokens) and the workflow registry.
 * Shared by `rmapp serve`, `rmapp worker`, `rmapp run` and `rmapp versions check`.
 */
export function githubRuntime(
  config: RmappConfig,
  overrides: {
    github?: GitHubOctokit | undefined;
    remoteUrl?: ((owner: string, repo: string) => string) | undefined;
    /**
     * Where the GitHub client's warnings and errors go: the process's masked logger (logger.ts
     * `createLogger` with the configuration's secrets). Required: the client's fallback writes plain
     * stderr lines, unmasked, and `rmapp versions check`, which passed none, would have printed a
     * configured token quoted in an Octokit warning in clear.
     */
    log: Logger;
    /**
     * The database URL this process uses when it is not the configuration's (`rmapp worker` and `rmapp
     * run` take `--database-url`): its password is masked in what the service writes to GitHub and in its
     * commit messages, and refuses a commit, as the configuration's is. Without it a password given on
     * the command line only (not in `DATABASE_URL`) reached a comment in the clear.
     */
    databaseUrl?: string | undefined;
  },
): GitHubRuntime {
  const clientConfig = {
    log: overrides.log,
    baseUrl: config.github.apiUrl,
    token: config.github.appId ? undefined : config.github.token,
    app: config.github.appId ? { appId: config.github.appId, privateKey: config.github.privateKey as string } : undefined,
  };
  const access = createGitHubAccess(clientConfig);
  const masker = createMasker([...secretsOf(config), ...connectionStringSecrets(overrides.databaseUrl)]);
  const github = maskGitHubWrites(overrides.github ?? createRoutedGitHubClient(access, clientConfig), masker);
  const workspaces = new Workspaces({
    mask: masker.text,
    // The sandbox's secrets, and the service's own (which the sandbox never holds: one in a commit came
    // some way the sandbox did not close, and would be pushed for anyone who reads the branch).
    findSecret: secretFinder([...sandboxSecretSources(config), ...serviceSecretSources(config, process.env, overrides.databaseUrl)]),
    root: config.workspaceRoot,
    author: { name: config.botName, email: `${config.botName.replace(/\[bot\]$/, '')}@users.noreply.github.com` },
    token: async (url) => {
      const m = /[/:]([^/:]+)\/([^/]+?)(\.git)?$/.exec(url);
      return m ? access.tokenForRepo(m[1] as string, m[2] as string) : undefined;
    },
  });
  const sandbox = sandboxOf(config, overrides.log);
  const registry = githubWorkflows({
    github,
    workspaces,
    remoteUrl: overrides.remoteUrl ?? ((owner, repo) => gitUrlFor(config, owner, repo)),
    agent: {
      kind: config.agent.kind,
      command: config.agent.command ?? [],
      timeoutMs: config.agent.timeout,
      sandbox,
      env: config.agent.env,
      network: config.agent.network,
      budget: {
        maxTurns: config.agent.budget.maxTurns,
        maxTokens: config.agent.budget.maxTokens,
        maxCostUsd: config.agent.budget.maxCostUsd,
        maxTimeMs: config.agent.budget.maxTime,
      },
      masker,
    },
    tests: { command: config.tests.command as string[], timeoutMs: config.tests.timeout, sandbox },
    botName: config.botName,
    labels: config.labels,
    maxTestAttempts: config.maxTestAttempts,
    publicUrl: config.server.publicUrl,
    docsRunTests: config.docsRunTests,
    reviewAnyBranch: config.reviewAnyBranch,
  });
  return { github, workspaces, registry, sandbox };
}

/**
 * The sandbox of the configuration (`sandbox.*`, with `agent.env`/`agent.network` added per agent run).
 * What it could not do but its step survives (a container `docker rm -f` could not remove) is a warning
 * of `log`, naming the container, when one is given (else a process warning on stderr).
 */
export function sandboxOf(config: RmappConfig, log?: Logger): Sandbox {
  const s = config.sandbox;
  return createSandbox(
    {
      driver: s.driver,
      image: s.image,
      runtime: s.runtime,
      network: s.network,
      allowPrivateNetwork: s.allowPrivateNetwork,
      env: s.env,
      readOnlyPaths: s.readOnlyPaths,
      limits: { ...DEFAULT_LIMITS, memoryBytes: s.memory, processes: s.processes },
    },
    { warn: log ? (message, details) => log.warn(details, message) : undefined },
  );
}

/**
 * Checks at start-up that the sandbox works here (a process that cannot isolate the agent refuses to
 * run it) and says what it enforces; `sandbox.driver: none` gets a loud warning.
 */
export async function checkSandbox(sandbox: Sandbox, log: Logger, options: { announce?: boolean } = {}): Promise<void> {
  await sandbox.check();
  const { summary, warnings } = sandbox.describe();
  if (options.announce !== false) log.info({ sandbox: summary }, `sandbox: ${summary}`);
  for (const w of warnings) log.warn(`SANDBOX WARNING: ${w}`);
}

/**
 * Progress-comment options of the GitHub workflows: stages, links to the branch and the dashboard, and
 * the process's logger, where a comment GitHub refused is reported (required here: the service and
 * `rmapp run` always have one).
 */
export function progressOptions(
  config: RmappConfig,
  workflows: AnyWorkflowDefinition[],
  log: Logger,
  minIntervalMs?: number,
): ProgressCommentOptions {
  return {
    log,
    stages: stagesOf(workflows.filter((w) => w.name !== 'GitHubDelivery')),
    minIntervalMs,
    webUrl: webUrl(config.github.apiUrl),
    dashboardUrl: config.server.publicUrl,
    botName: config.botName,
    branchOf: (run) => {
      const n = (run.input as { issueNumber?: number } | null)?.issueNumber;
      return n ? issueBranch(n) : null;
    },
  };
}

/**
 * Removes the workspaces no run needs any more: those of runs that succeeded, were cancelled or are
 * gone (pruned), and of runs that failed longer than `keepFailedMs` ago. Unfinished runs keep theirs.
 */
export async function sweepWorkspaces(
  engine: Engine,
  workspaces: Workspaces,
  keepFailedMs: number,
): Promise<{ removed: string[]; kept: number }> {
  return workspaces.sweep(async (runId) => {
    const run = await engine.get(runId).catch((err: unknown) => {
      if (err instanceof RunNotFoundError) return null;
      throw err;
    });
    if (!run) return false;
    if (run.status === 'failed') return !!run.finishedAt && Date.now() - run.finishedAt.getTime() < keepFailedMs;
    return !isFinalStatus(run.status); // failed: above
  });
}

/**
 * What every process that runs GitHub workflows does besides running them (`serve` and `worker`):
 * keep each run's progress comment, and remove a run's workspace when it succeeds or is cancelled
 * (a failed run's is kept for inspection). Returns the function that stops both.
 */
export function attachGitHubFollowers(
  engine: Engine,
  config: RmappConfig,
  runtime: ReturnType<typeof githubRuntime>,
  log: Logger,
  progressIntervalMs?: number,
): () => Promise<void> {
  const progress = attachProgressComments(
    engine,
    runtime.github,
    progressOptions(config, runtime.registry.workflows, log, progressIntervalMs),
  );
  void progress.catchUp().catch((err: unknown) => log.warn({ err }, 'progress comments: catching up failed'));
  // Failed runs' workspaces are kept for inspection, then swept (at start and hourly).
  const sweep = () =>
    void sweepWorkspaces(engine, runtime.workspaces, config.keepFailedWorkspaces)
      .then((r) => r.removed.length && log.info({ removed: r.removed.length, kept: r.kept }, 'workspaces swept'))
      .catch((err: unknown) => log.warn({ err }, 'workspace sweep failed'));
  sweep();
  const sweeper = setInterval(sweep, 3600_000);
  sweeper.unref();
  const off = engine.on('run.finished', (e) => {
    if (e.status === 'failed')
      return log.info({ runId: e.runId, workspace: runtime.workspaces.dirOf(e.runId) }, 'run failed; workspace kept for inspection');
    void runtime.workspaces.removeRun(e.runId).catch((err: unknown) => log.warn({ runId: e.runId, err }, 'workspace removal failed'));
  });
  return async () => {
    // Pending edits are written before the process goes (a SIGTERM'd worker's last word is "Done").
    await progress.flush().catch((err: unknown) => log.warn({ err }, 'progress comments not flushed'));
    progress.stop();
    off();
    clearInterval(sweeper);
  };
}

/** Starts the service. */
export async function startService(options: ServiceOptions): Promise<Service> {
  const { config } = options;
  const secrets = secretsOf(config);
  const log = options.log ?? createLogger({ secrets });
  const masker = createMasker(secrets);
  const telemetry =
    // The OpenTelemetry SDK is imported only when asked for: ~580 ms of CPU and 31 MB otherwise paid by every `serve`.
    options.otel || options.metrics
      ? await (await import('./otel.ts')).startTelemetry({ otlp: !!options.otel, prometheusEmbedded: !!options.metrics, masker })
      : null;

  const runtime = config.githubEnabled ? githubRuntime(config, { github: options.github, log }) : null;
  const gh = runtime?.registry ?? null;
  const workspaces = runtime?.workspaces ?? null;
  const workflows: AnyWorkflowDefinition[] = [...(gh?.workflows ?? [])];
  workflows.push(...(options.extraWorkflows ?? []));

  let inspect: ((ev: InspectionEvent) => void) | undefined;
  let stopInspector: (() => void) | undefined;
  if (options.inspectUrl) {
    // Every inspection event is masked whole (snapshot context, output and error, events, definitions).
    const inspector = startInspector(options.inspectUrl, masker, log);
    inspect = inspector.inspect;
    stopInspector = () => inspector.stop();
  }

  const engine = createEngine({
    workflows,
    previousVersions: [...(gh?.previousVersions ?? []), ...(options.previousVersions ?? [])],
    database:
      options.database ?? (config.databaseUrl ? { url: config.databaseUrl, urlSource: "the configuration's databaseUrl" } : undefined),
    concurrency: config.concurrency,
    inspect,
    pollMs: options.engine?.pollMs,
    leaseMs: options.engine?.leaseMs,
    workerId: options.engine?.workerId,
    retention: { policy: {} },
    stepConcurrency: { agent: Math.max(1, Math.min(config.concurrency, 4)) },
    logger: log,
  });
  if (runtime) await checkSandbox(runtime.sandbox, log);
  const executor = gh ? gh.bind(engine) : null;
  const detach = runtime ? attachGitHubFollowers(engine, config, runtime, log, options.progressIntervalMs) : async () => {};

  // A database that is down or restarting at start-up is waited for, with a log line per try, until
  // options.signal gives up (also during an attempt: a migration waiting for another's lock).
  const giveUp = () => void engine.stop({ graceMs: 0 }).catch(() => {});
  options.signal?.addEventListener('abort', giveUp, { once: true });
  try {
    if (options.signal?.aborted) throw stoppedWhileStarting();
    await engine.startWorker({
      retry: {
        signal: options.signal,
        onRetry: (err, attempt, delayMs) =>
          log.warn({ err: (err as Error).message, attempt, delayMs }, 'the database is not reachable; trying again'),
      },
    });
  } catch (err) {
    // Nothing may outlive a start that failed: the followers' timers, the inspector's socket, telemetry.
    await engine.stop({ graceMs: 0 });
    await detach();
    stopInspector?.();
    await telemetry?.shutdown().catch(() => {});
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', giveUp);
  }
  // The port is taken or not ours to bind: stop what started, so the process exits instead of running a
  // worker without the server it was asked for, and name the fix.
  const server = await startServiceServer({
    engine,
    log,
    masker,
    host: config.server.host,
    port: config.server.port,
    dashboardToken: config.server.dashboardToken,
    publicUrl: config.server.publicUrl,
    allowedHosts: config.server.allowedHosts,
    webhook:
      executor && config.github.webhookSecret
        ? webhookHandler({ secret: config.github.webhookSecret, botName: config.botName, labels: config.labels, executor, log })
        : null,
    prometheus: telemetry?.prometheus,
  }).catch(async (err: NodeJS.ErrnoException) => {
    await engine.stop({ graceMs: 0 });
    await detach();
    stopInspector?.();
    await telemetry?.shutdown().catch(() => {});
    if (err.code === 'EADDRINUSE' || err.code === 'EACCES') {
      const what = err.code === 'EADDRINUSE' ? 'is in use by another process' : 'needs privileges this process does not have';
      throw new ValidationError(
        `Cannot listen on ${config.server.host}:${config.server.port}: the port ${what}. Choose another with --port <port> or PORT=<port> (0 picks a free one), or stop the process that holds it.`,
      );
    }
    throw err;
  });
  const db = await engine.db();
  log.info(
    {
      url: server.url,
      database: db.description,
      github: config.githubEnabled,
      workflows: workflows.map((w) => `${w.name}@${w.version}`),
      config: config.sources,
    },
    `rmapp serve: dashboard at ${server.url}${config.githubEnabled ? `, webhooks at ${server.url}/webhooks/github` : ' (GitHub not configured: webhooks answer 503)'}`,
  );

  return {
    engine,
    executor,
    workspaces,
    url: server.url,
    log,
    async stop(stopOptions = {}) {
      await server.close();
      await engine.stop({ graceMs: stopOptions.graceMs });
      await detach();
      stopInspector?.();
      await telemetry?.shutdown().catch(() => {});
    },
  };
}
