/** `rmapp serve`: the service (HTTP server + worker) until SIGTERM/SIGINT. */
import type { Command } from 'commander';
import { positiveInt } from './positive-int.ts';

export function addServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the service: GitHub webhooks, dashboard, JSON API and a worker (PGlite under .rmapp/ unless DATABASE_URL is set)')
    .option('--config <file>', 'configuration file (default: rmapp.config.json or rmapp.config.ts here, if present)')
    .option('--port <port>', 'HTTP port (overrides PORT)')
    .option('--host <host>', 'bind address (overrides RMAPP_HOST; beyond localhost needs RMAPP_DASHBOARD_TOKEN)')
    .option('--inspect [ws-url]', "stream every run's actors to a Stately Inspector WebSocket endpoint", false)
    .option('--otel', 'export traces and metrics over OTLP/HTTP, configured by the OTEL_* environment variables')
    .option('--metrics', 'serve Prometheus metrics at /metrics')
    .option('--grace-ms <ms>', "how long running steps may take to finish on shutdown (default: the engine's, 10 s)", positiveInt)
    .action(
      async (o: {
        config?: string;
        port?: string;
        host?: string;
        inspect: string | boolean;
        otel?: boolean;
        metrics?: boolean;
        graceMs?: number;
      }) => {
        // Loaded here, not at the top: the CLI starts without them (README "CLI").
        const [{ loadConfig }, { startService }, { loadWorkflowSet }] = await Promise.all([
          import('../config.ts'),
          import('../service.ts'),
          import('./versions-command.ts'),
        ]);
        const env = { ...process.env, ...(o.port ? { PORT: o.port } : {}), ...(o.host ? { RMAPP_HOST: o.host } : {}) };
        const config = await loadConfig({ env, file: o.config });
        const globals = program.opts<{ workflows?: string; databaseUrl?: string }>();
        if (globals.databaseUrl) config.databaseUrl = globals.databaseUrl;
        // The built-in example workflows only when GitHub is off (a dashboard to try); a module always.
        const extra =
          globals.workflows || !config.githubEnabled ? await loadWorkflowSet(globals.workflows) : { workflows: [], previousVersions: [] };
        const service = await startService({
          config,
          extraWorkflows: extra.workflows,
          previousVersions: extra.previousVersions,
          inspectUrl: o.inspect === true ? 'ws://localhost:8080' : o.inspect || undefined,
          otel: o.otel,
          metrics: o.metrics,
        });
        process.stderr.write(`rmapp serve: dashboard at ${service.url}/\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', () => resolve());
          process.once('SIGINT', () => resolve());
        });
        service.log.info('rmapp serve: shutting down, finishing running steps');
        await service.stop({ graceMs: o.graceMs });
        process.stderr.write('rmapp serve: stopped.\n');
      },
    );
}
