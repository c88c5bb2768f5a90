/**
 * The `rmapp` command line. User mistakes print one clear line on stderr and exit 1, never a stack
 * trace; `RMAPP_DEBUG=1` adds stacks for unexpected failures.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import type { Engine } from '../../state_machine/engine.ts';
import { WorkflowError } from '../../state_machine/errors.ts';
import { isFinalStatus, RUN_STATUSES, type RunStatus } from '../../persistence/run-status.ts';
import { formatRunDetails, formatRunList, runToJson, terminalSafe } from './format.ts';
import { addPruneCommand } from './prune-command.ts';
import { positiveInt, signalId } from './positive-int.ts';
import { addServeCommand } from './serve-command.ts';
import { addRunCommand } from './run-command.ts';
import { addVersionsCommand } from './versions-command.ts';
import { addWorkflowsCommand } from './workflows-command.ts';
import { followRun } from './progress-lines.ts';
import { connectionStringSecrets, createMasker, type Masker } from '../masking.ts';
import { jsonArgument } from './json-argument.ts';
import { withFlagNames } from './flag-names.ts';
import { rememberWorkflowsFlag, rmappCommand, runsCommand } from './shell-word.ts';
import { SERVICE_SECRET_VARIABLES } from '../sandbox/env.ts';
import { variableNamesIn, variableSecrets } from '../secret-variables.ts';
import { addDemoCommand } from './demo-command.ts';
import { releaseEarlySignals } from './early-signals.ts';
import { embeddedWaitHint, isEmbedded, onForegroundStop, reportStopped } from './foreground-stop.ts';
import { addWorkerCommand } from './worker-command.ts';
import { cliDatabase } from './database-url.ts';

// The engine, the database drivers, the service and OpenTelemetry are imported inside the commands that
// use them: `rmapp --version` and `rmapp --help` start without them (README "CLI", bench/run.ts).
const openDatabase: typeof import('../../persistence/database.ts').openDatabase = async (options) =>
  (await import('../../persistence/database.ts')).openDatabase(options);

/** The package's own version, read from its package.json (one level above dist/ and src/). */
function packageVersion(): string {
  const file = new URL('../../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** The commands that stop cleanly on SIGTERM/SIGINT, also one that came while the CLI loaded (early-signals.ts). */
const LONG_RUNNING = new Set(['worker', 'serve']);
/** The command being run, once commander has chosen it. */
let running: string | null = null;

const program = new Command();
program
  .name('rmapp')
  .description('Durable XState workflows on Postgres (or embedded PGlite when DATABASE_URL is unset).')
  .version(packageVersion(), '-V, --version', 'print the version of rmapp')
  .showHelpAfterError('(run with --help for usage)')
  // --help, --version and usage errors throw instead of calling process.exit(), which would swallow a
  // signal that came while the CLI loaded (early-signals.ts): handled below. Subcommands inherit it.
  .exitOverride()
  // A usage error quotes what was typed (`argument '…' is invalid`), which may be a secret pasted in the
  // wrong place: masked like everything else the CLI prints. Subcommands inherit it.
  // Shown terminal-safe (format.ts): a usage error quotes the value typed, which may hold a CR from a script saved with CRLF endings.
  .configureOutput({ outputError: (text, write) => write(maskedSafe(text)) })
  // `worker` and `serve` take over a signal that came while the CLI loaded; every other command ends by it.
  .hook('preAction', async (_program, command) => {
    running = command.name();
    // The commands printed for a run (`rmapp worker`, …) carry a --workflows typed here (shell-word.ts).
    rememberWorkflowsFlag(
      program.getOptionValueSource('workflows') === 'cli' ? program.opts<{ workflows?: string }>().workflows : undefined,
    );
    if (!LONG_RUNNING.has(command.name())) releaseEarlySignals();
    // What the action prints is masked with the configuration's secrets too (see `masker` below); a
    // configuration that cannot be read gives none, and the command goes on (`serve` reports it).
    const file = command.opts<{ config?: unknown }>().config;
    configSecrets = await import('../config.ts')
      .then((c) => c.configuredSecrets({ file: typeof file === 'string' ? file : undefined }))
      .catch(() => []);
    cliMasker = null;
  })
  .addOption(new Option('--workflows <module>', 'module exporting `workflows` (default: the built-in registry)').env('RMAPP_WORKFLOWS'))
  .addOption(new Option('--database-url <url>', 'Postgres connection string (default: embedded PGlite under .rmapp/)').env('DATABASE_URL'));

async function withEngine<T>(
  fn: (engine: Engine) => Promise<T>,
  extra: { concurrency?: number; leaseMs?: number; existingOnly?: boolean } = {},
): Promise<T> {
  const opts = program.opts<{ workflows?: string; databaseUrl?: string }>();
  const [{ createEngine }, { loadWorkflows }, { createLogger }] = await Promise.all([
    import('../../state_machine/engine.ts'),
    import('../workflows/load.ts'),
    import('../logger.ts'),
  ]);
  const engine = createEngine({
    logger: createLogger({ secrets: cliSecrets() }),
    workflows: await loadWorkflows(opts.workflows),
    database: cliDatabase(program) ?? (extra.existingOnly ? { existingOnly: true } : undefined),
    concurrency: extra.concurrency,
    leaseMs: extra.leaseMs,
  });
  try {
    return await fn(engine);
  } finally {
    await engine.stop();
  }
}

/**
 * The engine of a command about runs that exist already (`runs …`): on the embedded store, one that is not
 * there is not made — the command fails naming its path (`NO_STORE`, persistence/store-directory.ts).
 */
const withStoredRuns = <T>(fn: (engine: Engine) => Promise<T>): Promise<T> => withEngine(fn, { existingOnly: true });

// Output piped into a reader that stops early (`rmapp runs watch <id> | head`) ends the command quietly.
// Output that cannot be written for another reason (a full disk: `> /dev/full`) ends it with 1 and a
// line on stderr, not Node's stack trace; `worker` and `serve` write nothing to stdout they need, and go on.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  if (running !== null && LONG_RUNNING.has(running)) return;
  process.stderr.write(
    `rmapp: the output could not be written (${err.code ?? err.message}): free space on the disk it goes to, or send it elsewhere.\n`,
  );
  process.exit(1);
});
// Logs that cannot be written (stderr on a full disk, a log collector gone) are lost, and only they: a
// worker whose log destination failed ended with an uncaught error while it held runs (an adversarial
// pass filled the disk its logs went to; the warning about the full disk ended the worker).
process.stderr.on('error', () => {});

/**
 * What the CLI prints goes through the service's masker (a run's error or test output may quote a
 * secret), with the secrets `rmapp serve` masks: the service's secret variables, of a database URL (the
 * variable's or `--database-url`'s) its password only, and the configuration's secrets — its
 * credentials and the values of the `agent.env` / `sandbox.env` variables named as secrets, read from
 * the file and the environment before the action runs (config.ts `configuredSecrets`; the credentials
 * of URLs in the variables this environment names for the sandbox are read before, for a usage error:
 * secret-variables.ts `variableSecrets`). Without the configuration's secrets, `runs show` printed a
 * sandbox password a test had printed, which the dashboard masked. Made at the first print, once the
 * options are parsed.
 */
let cliMasker: Masker | null = null;
/** The configuration's secrets, read by the `preAction` hook (none before it: a usage error). */
let configSecrets: string[] = [];
const cliSecrets = (): string[] => [
  // Not the URL (its password is taken below) nor the password file's path (its passwords come with configSecrets).
  ...SERVICE_SECRET_VARIABLES.filter((name) => name !== 'DATABASE_URL' && name !== 'PGPASSFILE').map((name) => process.env[name] ?? ''),
  ...connectionStringSecrets(process.env.DATABASE_URL),
  ...connectionStringSecrets(program.opts<{ databaseUrl?: string }>().databaseUrl),
  // Read before any action too: a usage error may quote a value (RMAPP_SANDBOX_ENV, RMAPP_AGENT_ENV).
  ...variableSecrets(variableNamesIn(process.env.RMAPP_SANDBOX_ENV, process.env.RMAPP_AGENT_ENV), process.env),
  ...configSecrets,
];
const masker = (): Masker => (cliMasker ??= createMasker(cliSecrets()));
/**
 * Text masked, then made terminal-safe (format.ts `terminalSafe`) — in that order: the masker finds a
 * secret split by control characters or ANSI codes by its letters and digits alone, and `terminalSafe`
 * writes each control as `\xNN`, whose letters and digits came between the secret's: escaped first, a
 * secret typed or quoted with a BEL or colour codes inside was printed in the clear
 * (test/h7-cli-mask-before-escape.test.ts).
 */
const maskText = (text: string): string => masker().text(text);
const maskedSafe = (text: string): string => terminalSafe(maskText(text));
/**
 * Prints text, or a value as JSON, masked. A value is masked as the API masks its answers (masker.value:
 * secret-named keys' values replaced as well), then as text: `runs show --json` printed a run's
 * `{"apiKey": …}` in the clear where the API and the dashboard showed it masked.
 */
const print = (value: unknown) =>
  process.stdout.write(`${masker().text(typeof value === 'string' ? value : JSON.stringify(masker().value(value), null, 2))}\n`);
/** A run as the API shows it, for the plain-text views (its output and state may hold secret-named keys). */
const shown = <T>(value: T): T => masker().value(value);

program
  .command('migrate')
  .description('apply database migrations (also done automatically at start-up)')
  .action(async () => {
    const db = await openDatabase({ ...cliDatabase(program) });
    try {
      const { applied } = await (await import('../../persistence/migrate.ts')).migrate(db);
      print(applied.length ? `Applied ${applied.join(', ')} on ${db.description}.` : `Up to date: ${db.description}.`);
    } finally {
      await db.close();
    }
  });

addWorkerCommand(program);

program
  .command('start <workflow> [input-json]')
  .description(
    'start a run; prints its id (with --wait, runs it here, printing its steps as they happen, until it finishes). input-json: the JSON, - (read from standard input) or @FILE (read from a file); default {}',
  )
  .option('--id <runId>', 'choose the run id')
  .option('--idempotency-key <key>', 'starting twice with one key returns the first run')
  .option('--wait', 'execute the run in this process and follow it to the end')
  .option('--json', 'print JSON (with --wait: the finished run; the progress lines go to stderr)')
  .action(
    async (
      workflow: string,
      inputJson: string | undefined,
      o: { id?: string; idempotencyKey?: string; wait?: boolean; json?: boolean },
    ) => {
      const input =
        inputJson === undefined ? {} : await jsonArgument(inputJson, { what: 'input', example: `'{"orderId":"o-1","amountCents":1200}'` });
      // With --wait this process executes the run: Ctrl-C hands it over as `rmapp worker` does (foreground-stop.ts).
      const stop = o.wait ? onForegroundStop('start') : null;
      try {
        await withEngine(async (engine) => {
          const id = await engine
            .start(workflow, input, { runId: o.id, idempotencyKey: o.idempotencyKey })
            .catch((err: unknown) => Promise.reject(withFlagNames(err, { runId: '--id', idempotencyKey: '--idempotency-key' })));
          if (!stop) return print(o.json ? { id } : id);
          // With --json, stdout stays one JSON document (scripts parse it) and the progress goes to stderr.
          const progress = o.json ? (line: string) => process.stderr.write(`${masker().text(line)}\n`) : print;
          progress(`run ${id}: ${workflow}`);
          if (!stop.signal.aborted) await engine.startWorker();
          const embedded = await isEmbedded(engine);
          let hinted = false;
          const onStatus = (r: { status: string; wakeAt: Date | null }) => {
            const hint = embedded && !hinted ? embeddedWaitHint(id, r.status, r.wakeAt) : null;
            if (hint) process.stderr.write(`${masker().text(hint)}\n`);
            hinted ||= hint !== null;
          };
          let run = await followRun(engine, id, progress, { signal: stop.signal, onStatus, mask: maskText });
          const sig = stop.signalled();
          if (sig && !isFinalStatus(run.status)) {
            // Its last step may finish it during the stop's grace (or between the follow's last read and
            // the stop): then it is printed as it ended. Read once the stop is over, not listened for.
            await engine.stop();
            const after = await engine.get(id);
            if (!isFinalStatus(after.status)) return reportStopped('start', id, sig, run.status, embedded);
            run = after;
          }
          print(o.json ? runToJson(run) : formatRunDetails(shown(run), []));
          if (run.status !== 'succeeded') process.exitCode = 1;
        });
      } finally {
        stop?.dispose();
      }
    },
  );

const runs = program.command('runs').description('inspect and steer runs');

runs
  .command('list')
  .description('list runs, newest first')
  .addOption(new Option('--status <status>', 'only runs with this status').choices(RUN_STATUSES))
  .option('--workflow <name>', 'only runs of this workflow')
  .option('--id-prefix <prefix>', 'only runs whose id starts with this (matched as typed: % _ \\ are no wildcards)')
  .option('--parent <run-id>', 'only the runs this run started (its child runs)')
  .option('--limit <n>', 'at most this many', positiveInt, 50)
  .option('--json', 'print a JSON array')
  .action(async (o: { status?: RunStatus; workflow?: string; idPrefix?: string; parent?: string; limit: number; json?: boolean }) => {
    // Checked as `GET /api/runs?idPrefix=&parentRunId=` checks them, with the same words (run-list-filters.ts),
    // before the store is opened. Shown terminal-safe: the message quotes what was typed. Imported here: the
    // run id's rule is a zod schema, and zod is not loaded for `rmapp --version` and `--help`.
    const { CLI_FILTERS, idPrefixProblem, parentRunIdProblem } = await import('../run-list-filters.ts');
    const problem =
      (o.idPrefix !== undefined ? idPrefixProblem(o.idPrefix, CLI_FILTERS) : null) ??
      (o.parent !== undefined ? parentRunIdProblem(o.parent, CLI_FILTERS) : null);
    if (problem) {
      process.stderr.write(`rmapp: ${maskedSafe(problem)}\n`);
      process.exitCode = 1;
      return;
    }
    const filter = { status: o.status, workflow: o.workflow, idPrefix: o.idPrefix, parentRunId: o.parent, limit: o.limit };
    const list = await withStoredRuns((engine) => engine.list(filter)).catch((err: { code?: string; dir?: string }) => {
      // No store: no runs, which is the answer (a project before its first run), said with where it looked.
      if (err.code !== 'NO_STORE') throw err;
      process.stderr.write(
        `rmapp: no rmapp store at ${err.dir}, so no runs: run from the project's folder, or set RMAPP_DATA_DIR or DATABASE_URL to its store.\n`,
      );
      return [];
    });
    print(o.json ? list.map(runToJson) : formatRunList(list));
  });

runs
  .command('show <id>')
  .description('show a run: state, status, children, error and history')
  .option('--json', 'print one JSON document')
  .action(async (id: string, o: { json?: boolean }) => {
    await withStoredRuns(async (engine) => {
      const run = await engine.get(id);
      const history = await engine.history(id);
      // A failed run's queued signals are what a retry delivers, and what `retry --drop-signal <id>` can leave out.
      const queued = run.status === 'failed' ? await engine.queuedSignals(id, 10) : undefined;
      print(
        o.json
          ? { ...runToJson(run), history, ...(queued ? { queuedSignals: queued } : {}) }
          : formatRunDetails(shown(run), shown(history), queued),
      );
    });
  });

/**
 * Before `runs watch` follows a run that has not finished: on the embedded store, this command holds the
 * store (PGlite serves one process), so no worker can run the run while it watches — it waited for ever,
 * printing nothing (an outside tester); it is refused, naming what does work. On Postgres a pending run
 * waits for a worker on that database, which is said once (watching goes on: one may start).
 */
async function sayWhoRuns(engine: Engine, id: string): Promise<void> {
  const { status } = await engine.get(id);
  if (isFinalStatus(status)) return;
  // The commands named are written to be pasted: an id starting with `-` after `--` (shell-word.ts).
  const waitsFor =
    status === 'waiting'
      ? `it waits for an event (send it with \`${runsCommand('send', id, { rest: `'{"type":"…"}'` })}\`) or a timer, which a worker runs: `
      : '';
  if ((await engine.db()).soleHolder)
    throw new WorkflowError(
      `Run ${id} is ${status}, and on the embedded store no worker can run it while this command holds the store: ${waitsFor}run it ` +
        `with \`${rmappCommand('worker')}\` and then \`${runsCommand('show', id)}\`, start runs with \`${rmappCommand('start --wait')}\` to follow them as they run, ` +
        'or set DATABASE_URL to a Postgres that workers and `runs watch` can share.',
      { code: 'WATCH_HOLDS_STORE', category: 'validation' },
    );
  if (status === 'pending') process.stderr.write(`rmapp: run ${id} is pending: waiting for a worker on this database to take it.\n`);
}

runs
  .command('watch <id>')
  .description('follow a run, whichever process executes it: its steps as they happen, then the run (exit 1 unless it succeeded)')
  .option('--json', 'print one JSON object per event, then the run')
  .option('--poll-ms <ms>', 'how often the history is read', positiveInt, 250)
  .action(async (id: string, o: { json?: boolean; pollMs: number }) => {
    await withStoredRuns(async (engine) => {
      await sayWhoRuns(engine, id);
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      try {
        const run = await followRun(engine, id, print, {
          json: o.json,
          pollMs: o.pollMs,
          signal: stop.signal,
          mask: maskText,
        });
        print(
          o.json ? { event: isFinalStatus(run.status) ? 'finished' : 'stopped', run: runToJson(run) } : formatRunDetails(shown(run), []),
        );
        if (run.status !== 'succeeded') process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSignal);
      }
    });
  });

runs
  .command('cancel <id>')
  .description('cancel a run (a finished run is left as it is)')
  .option('--reason <text>', 'recorded with the cancellation', 'cancelled from the CLI')
  .action(async (id: string, o: { reason: string }) => {
    await withStoredRuns(async (engine) => print((await engine.cancel(id, o.reason)).message));
  });

runs
  .command('retry <id>')
  .description(
    'retry a failed run from the step whose error it did not handle (a run its workflow ended in a failure state is refused: start a new one)',
  )
  .option(
    '--drop-signal [signal-id]',
    'leave out the signal the run failed handling (an event its workflow throws on), or the queued signal with this id (`runs show` lists them), recorded as signal.dropped',
    signalId,
  )
  .action(async (id: string, o: { dropSignal?: true | number }) => {
    await withStoredRuns(async (engine) =>
      // The message names the dropped signal's type, which whoever sent the signal chose.
      print(maskedSafe((await engine.retry(id, o.dropSignal === undefined ? {} : { dropSignal: o.dropSignal })).message)),
    );
  });

runs
  .command('send <id> <event-json>')
  .description(
    'send an event to a run through its durable inbox. event-json: the JSON, - (read from standard input) or @FILE (read from a file)',
  )
  .option('--dedupe-key <key>', 'an event with a key already used for this run is not sent again')
  .action(async (id: string, eventJson: string, o: { dedupeKey?: string }) => {
    const event = (await jsonArgument(eventJson, { what: 'event', example: `'{"type":"approve"}'` })) as { type: string };
    await withStoredRuns(async (engine) => {
      const { delivered, differentEvent } = await engine
        .send(id, event, { dedupeKey: o.dedupeKey })
        .catch((err: unknown) => Promise.reject(withFlagNames(err, { dedupeKey: '--dedupe-key' })));
      // A key reused for another event is said so: "already has an event" alone read as this one sent.
      const other = differentEvent ? ', and it is another event than this one: send this one with a new key' : '';
      print(
        maskedSafe(
          delivered ? `Sent ${event.type} to ${id}.` : `Not sent: ${id} already has an event with dedupe key ${o.dedupeKey}${other}.`,
        ),
      );
    });
  });

addPruneCommand(program, () => openDatabase({ ...cliDatabase(program), existingOnly: true }));
addVersionsCommand(program);
addServeCommand(program);
addRunCommand(program);
addWorkflowsCommand(program, () => program.opts<{ workflows?: string }>().workflows);
addDemoCommand(program);

try {
  await program.parseAsync(process.argv);
  // --help, --version and a usage error run no action: a signal that came meanwhile ends the process now.
  releaseEarlySignals();
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander has printed the help, the version or the usage error already.
    process.exitCode = err.exitCode;
    releaseEarlySignals();
  } else {
    // By name: the migrations module (where these errors live) is loaded only by the commands that use it.
    const name = (err as Error | null)?.name;
    const known =
      err instanceof WorkflowError || ['DatabaseTooNewError', 'MigrationPrivilegeError', 'MigrationRecordError'].includes(name ?? '');
    const message = err instanceof Error ? err.message : String(err);
    // Terminal-safe (format.ts), as `runs show` prints a run's messages: a refusal quotes the run's error
    // (`runs retry --drop-signal` of a run that failed on no signal), which an agent's or a test's
    // output wrote, escape sequences included — they reached the operator's terminal, which obeyed them.
    process.stderr.write(`rmapp: ${maskedSafe(message)}\n`);
    if (!known && process.env.RMAPP_DEBUG) process.stderr.write(`${maskedSafe(String((err as Error).stack))}\n`);
    process.exitCode = 1;
    // Whatever a failed command left open (a connection, a timer) must not keep a dead process looking alive.
    setTimeout(() => process.exit(1), 2_000).unref();
  }
}
