/** `rmapp worker`: runs workflows until SIGTERM/SIGINT, then stops gracefully (README "CLI"). */
import { checkEngineFlags } from './engine-flags.ts';
import type { Command } from 'commander';
import { portNumber, positiveInt } from './positive-int.ts';
import { exitSoonAfterStop } from './stopped-exit.ts';
import { cliDatabase, type CliDatabase } from './database-url.ts';
import { limitWorkerHeapGrowth } from './heap-growth.ts';
import { delayTierUpDuringStartup } from './startup-tiering.ts';
import { exitNow, exitOnLaterSignals, takeEarlySignal } from './early-signals.ts';
import { describeRetention, retentionAgeOption } from './retention-age.ts';
import { retentionForgetsDeliveries } from '../webhooks/event-age.ts';

/**
 * The settings only `rmapp serve` reads: its HTTP server's. `server.publicUrl` is not among them: the
 * GitHub workflows a worker runs link to the dashboard with it.
 */
const SERVE_ONLY_SETTINGS = ['server.host', 'server.port', 'server.dashboardToken', 'server.allowedHosts'];

/** The worker command's options, as commander parses them. */
interface WorkerCommandOptions {
  concurrency?: number;
  leaseMs?: number;
  graceMs?: number;
  evictAfterMs?: number;
  pollMs?: number;
  workerId?: string;
  otel?: boolean;
  metricsPort?: number;
  retention: boolean;
  retainSucceeded: number;
  retainFailed: number;
  retainCancelled: number;
}

/** Adds `rmapp worker` to the program. */
export function addWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run workflows until SIGTERM/SIGINT (graceful: running steps finish, leases are released)')
    .option(
      '-c, --concurrency <n>',
      "runs executed at once (default: the configuration's concurrency / RMAPP_CONCURRENCY when set or when running the GitHub workflows, else the engine's 50)",
      positiveInt,
    )
    .option('--lease-ms <ms>', "lease length; a dead worker's runs move on after it", positiveInt)
    .option('--grace-ms <ms>', "how long running steps may take to finish on shutdown (default: the engine's, 10 s)", positiveInt)
    .option('--evict-after-ms <ms>', 'runs that only wait longer than this leave memory', positiveInt)
    .option('--poll-ms <ms>', 'fallback polling interval when no notification arrives', positiveInt)
    .option('--worker-id <id>', 'stable id, unique among live workers: a restarted worker takes its old runs back at once')
    .option('--otel', 'export traces and metrics over OTLP/HTTP, configured by the OTEL_* environment variables')
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://<host>:<port>/metrics', portNumber)
    .addOption(retentionAgeOption('retain-succeeded', 'succeeded', 'prune succeeded runs this long after they finish'))
    .addOption(retentionAgeOption('retain-failed', 'failed', 'prune failed runs this long after they finish'))
    .addOption(retentionAgeOption('retain-cancelled', 'cancelled', 'prune cancelled runs this long after they finish'))
    .option('--no-retention', 'do not prune finished runs from this worker')
    .action(async (o: WorkerCommandOptions) => {
      const opts = program.opts<{ workflows?: string; databaseUrl?: string }>();
      // One listener for the whole life of the worker, from before anything loads: a signal that arrives
      // while the event loop is blocked (PGlite's open) is delivered to the listener present when the
      // loop runs again, and one removed and re-added meanwhile lost it. One that came while the CLI
      // loaded is taken over (early-signals.ts). Until the engine exists, a signal only gives the start up.
      const giveUp = new AbortController();
      let signalled: NodeJS.Signals | null = null;
      let onStop: (sig: NodeJS.Signals) => void = () => giveUp.abort();
      const onSignal = (sig: NodeJS.Signals) => {
        if (signalled) {
          exitNow('worker', sig);
        }
        signalled = sig;
        onStop(sig);
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      const early = takeEarlySignal();
      if (early) onSignal(early);
      try {
        await runWorker(
          o,
          { ...opts, database: cliDatabase(program) },
          { giveUp, signalled: () => signalled, setOnStop: (fn) => (onStop = fn) },
        );
      } finally {
        exitOnLaterSignals(onSignal);
      }
    });
}

/** What the worker command's signal handler shares with {@link runWorker}. */
interface WorkerSignals {
  /** Aborted by the first SIGTERM/SIGINT. */
  giveUp: AbortController;
  signalled(): NodeJS.Signals | null;
  /** Replaces what the first signal does (it is called at once if one came already, by the caller). */
  setOnStop(fn: (sig: NodeJS.Signals) => void): void;
}

async function runWorker(
  o: WorkerCommandOptions,
  opts: { workflows?: string; databaseUrl?: string; database: CliDatabase | undefined },
  { giveUp, signalled, setOnStop }: WorkerSignals,
): Promise<void> {
  // Before the claims' garbage grows the heap (heap-growth.ts: the peak RSS of a worker).
  limitWorkerHeapGrowth();
  // Before the start-up burst (a backlog or a restart's runs): TurboFan waits for it to pass.
  delayTierUpDuringStartup();
  // The OpenTelemetry SDK and the GitHub service stack (Octokit, the HTTP server, the sandbox, the
  // inspector) are imported only when this worker uses them: together they cost a worker without them
  // ~0.9 s of CPU at start-up (which a restarted worker's recovery waits for) and ~50 MB of RSS
  // (bench/README.md, "What was changed").
  const [
    { createEngine },
    { DEFAULT_ENGINE_OPTIONS, resolveEngineOptions },
    { loadConfig, secretsOf },
    { createLogger },
    { serviceWorkflowSet },
    { connectionStringSecrets, createMasker },
  ] = await Promise.all([
    import('../../state_machine/engine.ts'),
    import('../../state_machine/engine-options.ts'),
    import('../config.ts'),
    import('../logger.ts'),
    import('./versions-command.ts'),
    import('../masking.ts'),
  ]);
  // Before the configuration, the telemetry and the GitHub stack are set up for nothing.
  checkEngineFlags(
    resolveEngineOptions,
    { workflows: [], concurrency: o.concurrency, leaseMs: o.leaseMs, evictAfterMs: o.evictAfterMs, pollMs: o.pollMs, workerId: o.workerId },
    { concurrency: '-c', leaseMs: '--lease-ms', evictAfterMs: '--evict-after-ms', pollMs: '--poll-ms', workerId: '--worker-id' },
  );
  const retention = o.retention
    ? { policy: { succeededMs: o.retainSucceeded, failedMs: o.retainFailed, cancelledMs: o.retainCancelled } }
    : undefined;
  // With GitHub settings in the environment (as `rmapp serve` has them), this worker runs the GitHub
  // workflows too: extra workers of a service share its configuration.
  // A flag wins over the file and the environment (`-c 5` over RMAPP_CONCURRENCY=abc), and what only
  // `serve` reads (where it listens, who may use its dashboard) does not stop a worker: it is left unchecked.
  const config = await loadConfig({
    requireWebhookSecret: false,
    serves: false,
    ignore: [...(o.concurrency !== undefined ? ['concurrency'] : []), ...SERVE_ONLY_SETTINGS],
  });
  // What `serve` masks (its credentials, the database's password, the agent's and tests' variables),
  // in the log and the exported spans alike.
  const secrets = [...secretsOf(config), ...connectionStringSecrets(opts.databaseUrl)];
  const masker = createMasker(secrets);
  // What this worker writes for the person at the terminal goes through that masker too, as all the CLI
  // prints does: its start line showed the database's password as `***` (the store's own redaction),
  // where `rmapp migrate` showed it `[REDACTED]`.
  const say = (line: string) => process.stderr.write(`${masker.text(line)}\n`);
  // The SDK is set up before the engine so that the engine's first spans and instruments use it.
  const telemetry =
    o.otel || o.metricsPort
      ? await (await import('../otel.ts')).startTelemetry({ otlp: !!o.otel, prometheusPort: o.metricsPort, masker })
      : null;
  const log = createLogger({ secrets });
  const service = config.githubEnabled ? await import('../service.ts') : null;
  const github = service && config.githubEnabled ? service.githubRuntime(config, { log, databaseUrl: opts.databaseUrl }) : null;
  const forgets = service && retention ? retentionForgetsDeliveries(retention.policy) : null;
  if (forgets) log.warn(forgets);
  if (service && github) await service.checkSandbox(github.sandbox, log);
  const { workflows, previousVersions } = await serviceWorkflowSet(github, opts.workflows);
  // `-c`, else the configuration's `concurrency` when it was set or this worker runs the GitHub
  // workflows (as `serve` does: an extra worker given serve's environment runs as serve would), else
  // the engine's default. With -c, the configuration's was not read.
  const concurrency = o.concurrency ?? (config.concurrencySet || github ? config.concurrency : DEFAULT_ENGINE_OPTIONS.concurrency);
  const engine = createEngine({
    workflows,
    previousVersions,
    database: opts.database,
    concurrency,
    // The agent's steps as `serve` bounds them (service.ts): at most 4 at once, whatever the concurrency.
    ...(github ? { stepConcurrency: { agent: Math.max(1, Math.min(concurrency, 4)) } } : {}),
    leaseMs: o.leaseMs,
    evictAfterMs: o.evictAfterMs,
    pollMs: o.pollMs,
    workerId: o.workerId,
    retention,
    logger: log,
  });
  github?.registry.bind(engine);
  const detach = service && github ? service.attachGitHubFollowers(engine, config, github, log) : null;
  // A database that is down or restarting at start-up is waited for (SIGTERM/SIGINT give up, also
  // during an attempt: a migration waiting for another's lock, a server that does not answer).
  setOnStop(() => {
    giveUp.abort();
    void engine.stop({ graceMs: 0 }).catch(() => {});
  });
  try {
    if (!giveUp.signal.aborted)
      await engine.startWorker({
        retry: {
          signal: giveUp.signal,
          onRetry: (err, attempt, delayMs) =>
            say(`rmapp worker: the database is not reachable (${(err as Error).message}); try ${attempt + 1} in ${delayMs} ms`),
        },
      });
  } catch (err) {
    if (!giveUp.signal.aborted) throw err;
  }
  if (giveUp.signal.aborted) {
    await engine.stop({ graceMs: 0 });
    await detach?.();
    await telemetry?.shutdown().catch(() => {});
    say('rmapp worker: stopped before it started.');
    return;
  }
  const db = await engine.db();
  say(
    `rmapp worker ${engine.workerId} on ${db.description}: ${workflows.map((w) => `${w.name}@${w.version}`).join(', ')}; ` +
      `${concurrency} runs at once; ` +
      `${retention ? `keeps finished runs: ${describeRetention(retention.policy)}` : 'keeps finished runs forever (--no-retention)'}`,
  );
  await new Promise<void>((resolve) => {
    const onStop = (sig: NodeJS.Signals) => {
      say(`rmapp worker: ${sig}, finishing running steps${o.graceMs ? ` (up to ${o.graceMs} ms)` : ''}…`);
      resolve();
    };
    setOnStop(onStop);
    const sig = signalled();
    if (sig) onStop(sig);
  });
  await engine.stop({ graceMs: o.graceMs });
  await detach?.();
  await telemetry?.shutdown().catch((err: unknown) => say(`rmapp worker: telemetry shutdown failed: ${(err as Error).message}`));
  say('rmapp worker: stopped.');
  exitSoonAfterStop();
}
