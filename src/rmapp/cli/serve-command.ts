/** `rmapp serve`: the service (HTTP server + worker) until SIGTERM/SIGINT. */
import { exitSoonAfterStop } from './stopped-exit.ts';
import { cliDatabase } from './database-url.ts';
import type { Command } from 'commander';
import { listenPort, positiveInt, webSocketUrl } from './positive-int.ts';
import { exitNow, exitOnLaterSignals, takeEarlySignal } from './early-signals.ts';

/** The serve command's options, as commander parses them. */
interface ServeCommandOptions {
  config?: string;
  port?: number;
  host?: string;
  inspect?: string | boolean;
  otel?: boolean;
  metrics?: boolean;
  graceMs?: number;
}

export function addServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the service: GitHub webhooks, dashboard, JSON API and a worker (PGlite under .rmapp/ unless DATABASE_URL is set)')
    .option('--config <file>', 'configuration file (default: rmapp.config.json or rmapp.config.ts here, if present)')
    .option('--port <port>', 'HTTP port (overrides PORT; 0: any free port)', listenPort)
    .option('--host <host>', 'bind address (overrides RMAPP_HOST; beyond localhost needs RMAPP_DASHBOARD_TOKEN)')
    .option(
      '--inspect [ws-url]',
      "stream every run's actors to a Stately Inspector WebSocket endpoint (default ws://localhost:8080)",
      webSocketUrl,
    )
    .option('--otel', 'export traces and metrics over OTLP/HTTP, configured by the OTEL_* environment variables')
    .option('--metrics', 'serve Prometheus metrics at /metrics')
    .option('--grace-ms <ms>', "how long running steps may take to finish on shutdown (default: the engine's, 10 s)", positiveInt)
    .action(async (o: ServeCommandOptions) => {
      // One listener from the start, also for a signal that came while the CLI loaded (early-signals.ts):
      // before the service runs it gives the start up (a database being waited for, say); after, it stops it.
      const giveUp = new AbortController();
      const onSignal = (sig: NodeJS.Signals) => {
        if (giveUp.signal.aborted) exitNow('serve', sig);
        giveUp.abort();
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      if (takeEarlySignal()) giveUp.abort();
      try {
        await serve(program, o, giveUp.signal);
      } finally {
        exitOnLaterSignals(onSignal);
      }
    });
}

async function serve(program: Command, o: ServeCommandOptions, stopped: AbortSignal): Promise<void> {
  // Loaded here, not at the top: the CLI starts without them (README "CLI").
  const [{ loadConfig }, { startService }, { loadWorkflowSet }] = await Promise.all([
    import('../config.ts'),
    import('../service.ts'),
    import('./versions-command.ts'),
  ]);
  const env = { ...process.env, ...(o.port !== undefined ? { PORT: String(o.port) } : {}), ...(o.host ? { RMAPP_HOST: o.host } : {}) };
  // A problem with a value given by a flag names the flag, not the variable it is passed through.
  const flags = { ...(o.port !== undefined ? { 'server.port': '--port' } : {}), ...(o.host ? { 'server.host': '--host' } : {}) };
  const config = await loadConfig({ env, file: o.config, flags });
  const globals = program.opts<{ workflows?: string; databaseUrl?: string }>();
  if (globals.databaseUrl) config.databaseUrl = globals.databaseUrl;
  // The built-in example workflows only when GitHub is off (a dashboard to try); a module always.
  const extra =
    globals.workflows || !config.githubEnabled ? await loadWorkflowSet(globals.workflows) : { workflows: [], previousVersions: [] };
  if (stopped.aborted) return stoppedBeforeStart();
  const service = await startService({
    signal: stopped,
    config,
    extraWorkflows: extra.workflows,
    previousVersions: extra.previousVersions,
    inspectUrl: o.inspect === true ? 'ws://localhost:8080' : o.inspect || undefined,
    otel: o.otel,
    metrics: o.metrics,
    database: cliDatabase(program),
  }).catch((err: unknown) => {
    // Given up by a signal: not a failure.
    if (stopped.aborted) return null;
    throw err;
  });
  if (!service) return stoppedBeforeStart();
  process.stderr.write(`rmapp serve: dashboard at ${service.url}/\n`);
  if (!stopped.aborted) await new Promise((resolve) => stopped.addEventListener('abort', resolve, { once: true }));
  service.log.info('rmapp serve: shutting down, finishing running steps');
  await service.stop({ graceMs: o.graceMs });
  process.stderr.write('rmapp serve: stopped.\n');
  exitSoonAfterStop();
}

function stoppedBeforeStart(): void {
  process.stderr.write('rmapp serve: stopped before it started.\n');
}
