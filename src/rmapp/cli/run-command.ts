/**
 * `rmapp run <template> --repo <owner/name|path> --issue <n>`: one issue workflow in the foreground,
 * with its steps printed as they happen (`--json`: one JSON object per line, then the run). The run
 * is durable like any other: interrupted, it stays in the database, and `rmapp serve` or `rmapp worker`
 * on the same database finishes it (`rmapp runs watch <id>` follows it there).
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { ValidationError, WaitStoppedError } from '../../state_machine/errors.ts';
import { TEMPLATE_NAMES, type TemplateName } from '../../machines/issue-templates.ts';
import { formatRunDetails, runToJson } from './format.ts';
import { isEmbedded, onForegroundStop, reportStopped } from './foreground-stop.ts';
import { testAttempts } from './positive-int.ts';
import { exitSoonAfterStop } from './stopped-exit.ts';
import { cliDatabase } from './database-url.ts';
import { connectionStringSecrets, createMasker } from '../masking.ts';

/** `owner/name`, or a local clone whose `origin` is on GitHub (its git remote is then the local path). */
export async function resolveRepo(repo: string): Promise<{ owner: string; name: string; localPath: string | null }> {
  const local = resolve(repo);
  if (existsSync(local)) {
    // Imported here: process.ts loads OpenTelemetry's API, which `rmapp --version` and `--help` do not need.
    const { runCommand } = await import('../process.ts');
    const r = await runCommand(['git', 'remote', 'get-url', 'origin'], { cwd: local });
    const m = /[/:]([^/:]+)\/([^/]+?)(\.git)?\/?$/.exec(r.stdout.trim());
    if (r.exitCode !== 0 || !m)
      throw new ValidationError(
        `--repo ${repo}: a local path must be a git clone whose origin is the GitHub repository (git remote get-url origin failed or is not owner/name).`,
      );
    return { owner: m[1] as string, name: m[2] as string, localPath: local };
  }
  const m = /^([\w.-]+)\/([\w.-]+)$/.exec(repo);
  if (!m) throw new ValidationError(`--repo ${repo}: use owner/name (e.g. acme/widgets) or the path of a local clone.`);
  return { owner: m[1] as string, name: m[2] as string, localPath: null };
}

export function addRunCommand(program: Command): void {
  program
    .command('run <template>')
    .description(`run one issue workflow in the foreground; template: ${TEMPLATE_NAMES.join(', ')}`)
    .requiredOption('--repo <repo>', 'owner/name, or the path of a local clone (pushes go to that clone)')
    .requiredOption('--issue <n>', 'issue number', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
      return n;
    })
    .option('--config <file>', 'configuration file')
    .option('--max-attempts <n>', 'test-and-fix attempts (1 to 10)', testAttempts)
    .option('--json', 'print JSON lines (events, then the run)')
    .action(async (template: string, o: { repo: string; issue: number; config?: string; maxAttempts?: number; json?: boolean }) => {
      if (!(TEMPLATE_NAMES as readonly string[]).includes(template))
        throw new ValidationError(`Unknown template "${template}": use one of ${TEMPLATE_NAMES.join(', ')}.`);
      const [
        { createEngine },
        { loadConfig },
        { attachProgressComments },
        { checkSandbox, githubRuntime, progressOptions, secretsOf },
        { createLogger },
      ] = await Promise.all([
        import('../../state_machine/engine.ts'),
        import('../config.ts'),
        import('../progress-comment.ts'),
        import('../service.ts'),
        import('../logger.ts'),
      ]);
      const config = await loadConfig({ file: o.config, requireWebhookSecret: false });
      if (!config.githubEnabled)
        throw new ValidationError(
          'rmapp run needs GitHub: set GITHUB_TOKEN (or the GitHub App settings), RMAPP_AGENT_COMMAND and RMAPP_TEST_COMMAND.',
        );
      const globals = program.opts<{ databaseUrl?: string }>();
      const repo = await resolveRepo(o.repo);
      // What this command prints or logs is masked like the service's output: the configuration's
      // secrets, the agent's and tests' variables, and the database password (`--database-url`'s too).
      const secrets = [...secretsOf(config), ...connectionStringSecrets(globals.databaseUrl)];
      const masker = createMasker(secrets);
      const log = createLogger({ secrets });
      // Whoever runs this command is the operator: their --max-attempts is the ceiling too (a comment's is capped by it).
      const ceiling = { ...config, maxTestAttempts: Math.max(config.maxTestAttempts, o.maxAttempts ?? 0) };
      const runtime = githubRuntime(ceiling, {
        remoteUrl: repo.localPath ? () => repo.localPath as string : undefined,
        log,
        // Its password masked in comments and refusing commits, as DATABASE_URL's is.
        databaseUrl: globals.databaseUrl,
      });
      // A foreground command: only the sandbox's warnings, if any, reach stderr.
      await checkSandbox(runtime.sandbox, log, { announce: false });
      const engine = createEngine({
        workflows: runtime.registry.workflows,
        previousVersions: runtime.registry.previousVersions,
        database:
          cliDatabase(program) ??
          (config.databaseUrl ? { url: config.databaseUrl, urlSource: 'databaseUrl in the configuration file' } : undefined),
        concurrency: 4,
        logger: log,
      });
      const executor = runtime.registry.bind(engine);
      const progress = attachProgressComments(engine, runtime.github, progressOptions(config, runtime.registry.workflows, log));
      // As the API masks (masker.value: secret-named keys too), then as text.
      const out = (line: unknown) => process.stdout.write(`${masker.text(o.json ? JSON.stringify(masker.value(line)) : String(line))}\n`);
      let runId = '';
      const mine = (e: { runId: string }) => e.runId === runId;
      engine.on(
        'state.entered',
        (e) =>
          mine(e) &&
          e.path === '' &&
          out(o.json ? { event: 'state', state: e.state } : `→ ${typeof e.state === 'string' ? e.state : JSON.stringify(e.state)}`),
      );
      engine.on(
        'step.started',
        (e) => mine(e) && out(o.json ? { event: 'step.started', step: e.step, attempt: e.attempt } : `  ${e.step} (attempt ${e.attempt})…`),
      );
      engine.on(
        'step.retrying',
        (e) =>
          mine(e) &&
          out(
            o.json
              ? { event: 'step.retrying', step: e.step, error: e.error, delayMs: e.delayMs }
              : `  ${e.step} failed (${e.error.category}: ${e.error.message}); retrying in ${e.delayMs} ms`,
          ),
      );
      engine.on(
        'step.failed',
        (e) =>
          mine(e) &&
          out(
            o.json ? { event: 'step.failed', step: e.step, error: e.error } : `  ${e.step} failed: ${e.error.category}: ${e.error.message}`,
          ),
      );
      engine.on('progress', (e) => mine(e) && out(o.json ? { event: 'progress', message: e.message } : `  · ${e.message}`));
      // This process executes the run: Ctrl-C hands it over as `rmapp worker` does (foreground-stop.ts).
      const stop = onForegroundStop('run');
      try {
        runId = await executor.startIssueWorkflow({
          owner: repo.owner,
          repo: repo.name,
          issueNumber: o.issue,
          template: template as TemplateName,
          requestedBy: process.env.USER ?? 'cli',
          options: o.maxAttempts !== undefined ? { maxTestAttempts: o.maxAttempts } : {},
          key: `cli-${randomUUID()}`,
        });
        if (!o.json) out(`run ${runId}: ${template} on ${repo.owner}/${repo.name}#${o.issue}`);
        if (!stop.signal.aborted) await engine.startWorker();
        const embedded = await isEmbedded(engine);
        const stopping = new Promise<null>((resolve) =>
          stop.signal.aborted ? resolve(null) : stop.signal.addEventListener('abort', () => resolve(null), { once: true }),
        );
        const waiting = engine.waitFor(runId);
        let run = await Promise.race([waiting, stopping]);
        if (run === null) {
          // The stop ends the wait (ENGINE_STOPPED) unless the run finished during the stop's grace.
          const status = (await engine.get(runId)).status;
          await engine.stop();
          run = await waiting.catch((err: unknown) => {
            if (err instanceof WaitStoppedError) return null;
            throw err;
          });
          if (run === null) return reportStopped('run', runId, stop.signalled() ?? 'SIGINT', status, embedded);
        }
        await progress.flush();
        out(o.json ? { event: 'finished', run: runToJson(run) } : formatRunDetails(masker.value(run), []));
        if (run.status !== 'succeeded') process.exitCode = 1;
      } finally {
        stop.dispose();
        progress.stop();
        await engine.stop();
        // A GitHub request of the stopped run waiting for its client's retry (the bot's login, say) kept
        // the process alive for half a minute after the run was handed over (stopped-exit.ts).
        exitSoonAfterStop();
      }
    });
}
