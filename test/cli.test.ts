/** The `rmapp` command against real Postgres: JSON output, human output, and clear errors. */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { openDatabase } from '../src/persistence/database.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { BIN, killAll, ROOT, runRmapp, spawnRmapp, TEST_WORKFLOWS, TEST_WORKFLOWS_SOURCE, until } from './helpers/processes.ts';

let testDb: TestDatabase;
let env: Record<string, string>;
const rmapp = (...args: string[]) => runRmapp(['--workflows', TEST_WORKFLOWS, ...args], env);

beforeAll(async () => {
  testDb = await createTestDatabase({ empty: true });
  env = { DATABASE_URL: testDb.url };
});
afterEach(() => killAll());
afterAll(async () => {
  await testDb.drop();
});

it('starts, runs and shows a run; lists runs as JSON', async () => {
  const started = await rmapp('start', 'test.sequence', '{}', '--wait', '--json');
  expect(started.code, started.stderr).toBe(0);
  const run = JSON.parse(started.stdout) as { id: string; status: string; output: unknown };
  expect(run.status).toBe('succeeded');
  expect(run.output).toEqual({ sum: 21 });

  const list = await rmapp('runs', 'list', '--json');
  expect(list.code, list.stderr).toBe(0);
  const runs = JSON.parse(list.stdout) as Record<string, unknown>[];
  expect(runs).toHaveLength(1);
  for (const key of ['id', 'workflow', 'status', 'state', 'createdAt', 'updatedAt']) expect(runs[0]).toHaveProperty(key);
  expect(runs[0]).toMatchObject({ id: run.id, workflow: 'test.sequence', status: 'succeeded', state: 'done' });

  const filtered = await rmapp('runs', 'list', '--status', 'failed', '--json');
  expect(JSON.parse(filtered.stdout)).toEqual([]);

  const show = await rmapp('runs', 'show', run.id, '--json');
  const shown = JSON.parse(show.stdout) as { status: string; history: { type: string }[] };
  expect(shown.status).toBe('succeeded');
  expect(shown.history.map((h) => h.type)).toContain('step.succeeded');

  const text = await rmapp('runs', 'show', run.id);
  expect(text.stdout).toMatch(/Status\s+succeeded/);
  expect(text.stdout).toMatch(/History/);

  const cancel = await rmapp('runs', 'cancel', run.id);
  expect(cancel.code).toBe(0);
  expect(cancel.stdout).toMatch(/already finished \(succeeded\); nothing to cancel/);
});

it('reports user mistakes on stderr with exit 1 and no stack trace', async () => {
  const cases: [string[], RegExp][] = [
    [['runs', 'show', 'nope'], /No run with id "nope"/],
    [['start', 'test.sequence', '{"slowMs":"x"}'], /slowMs/],
    [['start', 'test.unknown'], /Unknown workflow "test.unknown"\. Registered workflows: test\.sequence, test\.fails, test\.flaky/],
    [['start', 'test.sequence', '{oops'], /input is not valid JSON/],
    // A large argument made the error as large.
    [
      ['start', 'test.sequence', `{${'x'.repeat(100_000)}`],
      new RegExp(`not valid JSON: \\{${'x'.repeat(199)}… \\(100001 characters\\)\\.`),
    ],
    [
      ['start', 'test.sequence', '{"slowMs":12345678901234567890123}'],
      /The input holds the number 12345678901234567890123, which JSON numbers cannot keep exactly/,
    ],
    [['runs', 'list', '--status', 'bogus'], /Allowed choices are pending, running/],
    [['runs', 'retry', 'nope'], /No run with id/],
    // An id that would rewrite the terminal is echoed escaped; a 10 kB one is cut.
    [['runs', 'show', 'a\x1b[31mRED\x07b'], /No run with id "a\\u001b\[31mRED\\u0007b"/],
    [['runs', 'show', 'x'.repeat(10_000)], new RegExp(`No run with id "${'x'.repeat(200)}…"`)],
    [['runs', 'show', 'a\u009b31mX\u202eY\u007fZ'], /No run with id "a\\u009b31mX\\u202eY\\u007fZ"/],
  ];
  for (const [args, pattern] of cases) {
    const r = await rmapp(...args);
    expect(r.code, args.join(' ')).toBe(1);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const controls = [...r.stderr].filter((c) => {
      const code = c.charCodeAt(0);
      return (code < 0x20 && c !== '\n' && c !== '\t') || (code >= 0x7f && code <= 0x9f) || (code >= 0x202a && code <= 0x202e);
    });
    expect(controls, 'control characters on stderr').toEqual([]);
  }
  // A log level pino does not know: pino's own error named neither the variable nor the levels.
  const level = await runRmapp(['--workflows', TEST_WORKFLOWS, 'worker'], { ...env, RMAPP_LOG_LEVEL: 'bogus' });
  expect(level.code).toBe(1);
  expect(level.stderr).toMatch(/RMAPP_LOG_LEVEL "bogus" is not a log level: use one of fatal, error, warn, info, debug, trace, silent/);
  // An inspector address that is none is the option's mistake (it was "Invalid URL: notaurl").
  const inspect = await runRmapp(['--workflows', TEST_WORKFLOWS, 'serve', '--inspect', 'notaurl'], env);
  expect(inspect.code).toBe(1);
  expect(inspect.stderr).toMatch(/--inspect \[ws-url\]' argument 'notaurl' is invalid\. is not a URL/);
  const missing = await runRmapp(['--workflows', 'does/not/exist.ts', 'runs', 'list'], env);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/Workflows module not found/);
  // A module that throws while it loads: its error, said to come from loading the workflows module.
  const dir = mkdtempSync(join(tmpdir(), 'rmapp-cli-'));
  try {
    writeFileSync(join(dir, 'throws.mjs'), "throw new Error('boom in module');\n");
    const throws = await runRmapp(['--workflows', join(dir, 'throws.mjs'), 'runs', 'list'], env);
    expect(throws.code).toBe(1);
    expect(throws.stderr).toContain(
      `rmapp: Loading the workflows module ${join(dir, 'throws.mjs')} (--workflows or RMAPP_WORKFLOWS) failed: boom in module`,
    );
    // Look-alikes of definitions reached the engine, which failed with its own TypeErrors; one
    // definition listed twice was listed twice.
    writeFileSync(join(dir, 'fake.mjs'), 'export const workflows = [{ name: "x", version: "1", machine: {}, input: {} }];\n');
    writeFileSync(
      join(dir, 'twice.mjs'),
      `import { workflows as all } from ${JSON.stringify(TEST_WORKFLOWS)};\nexport const workflows = [all[0], all[0]];\n`,
    );
    writeFileSync(
      join(dir, 'prev-fake.mjs'),
      `export { workflows } from ${JSON.stringify(TEST_WORKFLOWS)};\nexport const previousVersions = [{ name: "w", version: "old", machine: {} }];\n`,
    );
    writeFileSync(
      join(dir, 'prev-current.mjs'),
      `import { workflows as all } from ${JSON.stringify(TEST_WORKFLOWS)};\nexport const workflows = all;\nexport const previousVersions = [all[0]];\n`,
    );
    writeFileSync(join(dir, 'getter.mjs'), 'export const workflows = [{ get name() { throw new Error("getter exploded"); } }];\n');
    writeFileSync(
      join(dir, 'proxy.mjs'),
      'export const workflows = new Proxy([{ name: "fake", version: "1" }], { get: (t, k) => (k === "every" ? () => true : t[k]) });\n',
    );
    for (const [file, message] of [
      [
        'fake.mjs',
        /must export `workflows`: an array of defineWorkflow\(\.\.\.\) results \(item 0: its machine is not an XState machine\)\./,
      ],
      ['twice.mjs', /Workflow \S+ is registered twice in /],
      ['getter.mjs', /must export `workflows`: .*\(item 0: reading it threw \(getter exploded\)\)\./],
      ['proxy.mjs', /must export `workflows`: .*\(item 0: its machine is not an XState machine\)\./],
    ] as const) {
      for (const args of [
        ['workflows', 'list'],
        ['start', 'x', '{}'],
        ['versions', 'check'],
      ]) {
        const r = await runRmapp(['--workflows', join(dir, file), ...args], env);
        expect(r.code, `${file} ${args.join(' ')}: ${r.stderr}`).toBe(1);
        expect(r.stderr, `${file} ${args.join(' ')}`).toMatch(message);
      }
    }
    // A look-alike among the previous versions got past both, and a worker took its runs back from
    // itself after every lease; a current version listed again as a previous one was listed twice.
    for (const [file, message] of [
      ['prev-fake.mjs', /must export `previousVersions`: .*\(item 0: its machine is not an XState machine\)\./],
      ['prev-current.mjs', /is registered twice \(previousVersions holds only versions that are not current\)/],
    ] as const) {
      for (const args of [['versions', 'check'], ['worker']]) {
        const r = await runRmapp(['--workflows', join(dir, file), ...args], env);
        expect(r.code, `${file} ${args.join(' ')}: ${r.stderr}`).toBe(1);
        expect(r.stderr, `${file} ${args.join(' ')}`).toMatch(message);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // About 30 CLI processes one after another: a bound for a loaded 2-core machine, where 60 s ran out twice
  // (2026-12-07, load average 6–8), not a figure of speed.
}, 180_000);

it('shows the database URL it used, masking only its password, also in errors and from --database-url', async () => {
  // A URL without a password is no secret: `rmapp migrate` printed "[REDACTED]" for the whole of it.
  expect((await runRmapp(['migrate'], env)).code).toBe(0);
  const plain = await runRmapp(['migrate'], env);
  expect(plain.code, plain.stderr).toBe(0);
  expect(plain.stdout).toContain(`Up to date: ${testDb.url}.`);
  // Trust authentication takes any password: the URL works, and the password is what is secret.
  const password = 'Swordfish-7731-zz';
  const withPassword = new URL(testDb.url);
  withPassword.password = password;
  const flagArgs = ['--workflows', TEST_WORKFLOWS, '--database-url', withPassword.toString()];
  const variableArgs = ['--workflows', TEST_WORKFLOWS];
  const byFlag = (...args: string[]) => runRmapp([...flagArgs, ...args], { DATABASE_URL: undefined });
  const byVariable = (...args: string[]) => runRmapp([...variableArgs, ...args], { DATABASE_URL: withPassword.toString() });
  const masked = `${withPassword.protocol}//${withPassword.username}:[REDACTED]@${withPassword.host}`;
  for (const [how, run, startWorker] of [
    ['--database-url', byFlag, () => spawnRmapp([...flagArgs, 'worker'], { DATABASE_URL: undefined })],
    ['DATABASE_URL', byVariable, () => spawnRmapp([...variableArgs, 'worker'], { DATABASE_URL: withPassword.toString() })],
  ] as const) {
    const migrated = await run('migrate');
    expect(migrated.code, `${how}: ${migrated.stderr}`).toBe(0);
    expect(migrated.stdout, how).toContain(`Up to date: ${masked}`);
    // The worker's start line masks it as migrate does: it printed `:***@`, its own marker.
    const worker = startWorker();
    await until(() => / on .*: test\./.test(worker.output()) || worker.child.exitCode !== null, 60_000, 'the worker to start');
    worker.child.kill('SIGTERM');
    expect(await worker.exited, worker.output()).toBe(0);
    expect(worker.output(), how).toMatch(new RegExp(`^rmapp worker \\S+ on ${masked.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/`));
    expect(worker.output(), how).not.toContain(password);
    // An error quoting the password (here an id given on the command line) is masked too.
    const shown = await run('runs', 'show', password);
    expect(shown.code, how).toBe(1);
    expect(shown.stderr, how).toMatch(/No run with id "\[REDACTED\]"/);
    // So is a usage error quoting it (commander's own message, printed before any command runs).
    const usage = await run('runs', 'list', '--status', password);
    expect(usage.code, how).toBe(1);
    expect(usage.stderr, how).toMatch(/argument '\[REDACTED\]' is invalid/);
    expect(`${migrated.stdout}${migrated.stderr}${shown.stdout}${shown.stderr}${usage.stderr}`, how).not.toContain(password);
  }
});

it('prints its version and the registered workflows with their input schemas', async () => {
  const version = await runRmapp(['--version']);
  expect(version.stdout.trim()).toBe((JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string }).version);
  // The workflows module as a user writes it, TypeScript: the CLI loads it through tsx (the other
  // commands here load the run's bundle of it, test/helpers/fixture-bundles.ts, to start faster).
  const list = await runRmapp(['--workflows', TEST_WORKFLOWS_SOURCE, 'workflows', 'list', '--json'], env);
  expect(list.code, list.stderr).toBe(0);
  const workflows = JSON.parse(list.stdout) as {
    name: string;
    version: string;
    input: { type?: string; properties?: Record<string, { type?: string }> };
  }[];
  expect(workflows.map((w) => w.name)).toEqual(['test.sequence', 'test.fails', 'test.flaky', ...workflows.slice(3).map((w) => w.name)]);
  expect(workflows[0]?.input).toMatchObject({ type: 'object', properties: { everyMs: { type: 'integer' }, slowStep: { type: 'string' } } });
  const text = await rmapp('workflows', 'list');
  expect(text.stdout).toMatch(new RegExp(`^test\\.sequence@${workflows[0]?.version}\n  input: \\{`));
});

it('start --wait prints the steps as they happen; runs watch follows a run another process executes', async () => {
  const waited = await rmapp('start', 'test.sequence', '{"everyMs":20}', '--wait');
  expect(waited.code, waited.stderr).toBe(0);
  const out = waited.stdout;
  expect(out).toMatch(/^run \S+: test\.sequence\n/);
  // Each state entered, and the step it invokes (src `add`) starting and finishing, before the summary.
  for (const line of ['→ step1', '  add (attempt 1)…', '  add done', '→ step6', '→ done']) expect(out).toContain(line);
  expect(out.indexOf('→ done'), 'progress before the summary').toBeLessThan(out.indexOf('Status    succeeded'));

  const id = (await rmapp('start', 'test.sequence', '{"everyMs":50}')).stdout.trim();
  const watch = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'runs', 'watch', id, '--poll-ms', '50'], env);
  // The run is pending until a worker in another process takes it.
  spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--poll-ms', '100'], env);
  expect(await watch.exited, watch.output()).toBe(0);
  expect(watch.output()).toContain('→ step3\n  add (attempt 1)…');
  expect(watch.output()).toMatch(/Status\s+succeeded/);
});

it('worker --metrics-port on a port in use or out of range exits 1 naming it (the worker ran without an endpoint)', async () => {
  const holder: Server = await new Promise((resolve) => {
    const server = createServer().listen(0, '0.0.0.0', () => resolve(server));
  });
  try {
    const port = (holder.address() as { port: number }).port;
    const taken = await runRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--metrics-port', String(port)], env);
    expect(taken.code, taken.stderr).toBe(1);
    expect(taken.stderr).toMatch(
      new RegExp(`Cannot serve metrics on 0\\.0\\.0\\.0:${port} \\(the port is in use\\): choose another --metrics-port`),
    );
  } finally {
    holder.close();
  }
  for (const bad of ['70000', '0x50', '0']) {
    const r = await runRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--metrics-port', bad], env);
    expect(r.code, `--metrics-port ${bad}: ${r.stderr}`).toBe(1);
    expect(r.stderr, bad).toMatch(/option '--metrics-port <port>' argument .* is invalid\. must be a port number from 1 to 65535/);
  }
});

it('number options take decimal digits only, and prune --batch-size refuses what the database cannot hold', async () => {
  for (const args of [
    ['prune', '--batch-size', '1e20', '--succeeded', '0d'],
    ['runs', 'list', '--limit', '0x10'],
    ['serve', '--port', '0x50'],
    ['worker', '--lease-ms', '1e4'],
  ]) {
    const r = await rmapp(...args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
    expect(r.stderr, args.join(' ')).toMatch(
      /argument '.*' is invalid\. must be a (positive integer up to 2147483647|port number from 1 to 65535)/,
    );
  }
});

it('a second SIGTERM or SIGINT stops the worker at once, as a crash would; the run resumes elsewhere', async () => {
  // The first signal's stop is bounded by the grace and half the lease: with a long lease a stop waiting
  // for the database took days, and a second signal only said "already stopping".
  // The run's state is read here, not with `rmapp runs show` (a process of ~1 s of CPU for each poll).
  const db = await openDatabase({ url: testDb.url, maxConnections: 1 });
  const stateOf = async (id: string) =>
    (await db.query<{ state_value: unknown }>('select state_value from rmapp_runs where id = $1', [id]))[0]?.state_value;
  try {
    await stopsTwice(stateOf);
  } finally {
    await db.close();
  }
});

/** Both signals in turn: a worker stopped twice inside step 2, then the run resumed by another worker. */
async function stopsTwice(stateOf: (id: string) => Promise<unknown>): Promise<void> {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const id = (await rmapp('start', 'test.sequence', '{}')).stdout.trim();
    const worker = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--grace-ms', '600000', '--lease-ms', '2000', '--poll-ms', '100'], {
      ...env,
      RMAPP_TEST_SLOW_STEP: 'step2',
      RMAPP_TEST_SLOW_MS: '600000',
    });
    await until(async () => (await stateOf(id)) === 'step2', 30_000, 'the run inside step 2');
    worker.child.kill(signal);
    await until(() => /finishing running steps/.test(worker.output()), 10_000, 'the worker to begin its stop');
    worker.child.kill(signal);
    expect(await worker.exited, worker.output()).toBe(signal === 'SIGINT' ? 130 : 143);
    expect(worker.output()).toMatch(new RegExp(`rmapp worker: ${signal} again: stopping now without waiting`));
    const next = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--lease-ms', '2000', '--poll-ms', '100'], env);
    const done = await runRmapp(['--workflows', TEST_WORKFLOWS, 'runs', 'watch', id, '--poll-ms', '100'], env);
    expect(done.stdout + done.stderr, 'the run after the forced stop').toMatch(/succeeded/);
    next.child.kill('SIGTERM');
    await next.exited;
  }
}

it('serve on a port in use exits 1 and names --port and PORT', async () => {
  const holder: Server = await new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => resolve(server));
  });
  try {
    const port = (holder.address() as { port: number }).port;
    const r = await runRmapp(['serve', '--port', String(port)], env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `rmapp: Cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use by another process\\. Choose another with --port <port> or PORT=<port>`,
      ),
    );
  } finally {
    holder.close();
  }
});

/**
 * `rmapp worker` with `args`, once its start line (the runs at once, what it keeps) is out — or the
 * test fails with what it printed if it exits first.
 */
async function startedWorker(args: readonly string[], environment: NodeJS.ProcessEnv) {
  const worker = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', ...args], environment);
  const started = await Promise.race([
    worker.exited.then((code) => `exited ${code}`),
    (async () => {
      while (!/keeps finished runs/.test(worker.output())) await new Promise((r) => setTimeout(r, 50));
      return 'started';
    })(),
  ]);
  expect(started, worker.output()).toBe('started');
  return worker;
}

it('worker takes every retention age its help offers, never included, and says what it keeps', async () => {
  const help = await rmapp('worker', '--help');
  // Help wraps at the terminal's width: one line per option once the whitespace is collapsed.
  const options = help.stdout.replace(/\s+/g, ' ').split(/ (?=--)/);
  for (const flag of ['--retain-succeeded', '--retain-failed', '--retain-cancelled']) {
    expect(
      options.find((o) => o.startsWith(`${flag} <age>`)),
      `${flag}'s help`,
    ).toContain('or never');
  }
  const worker = await startedWorker(['--retain-failed', 'never', '--retain-succeeded', '12h'], env);
  expect(worker.output()).toContain('keeps finished runs: succeeded 12h, failed forever, cancelled 7d');
  expect(worker.output(), 'the engine default concurrency').toContain('50 runs at once');
  worker.child.kill('SIGTERM');
  expect(await worker.exited, worker.output()).toBe(0);

  // RMAPP_CONCURRENCY (serve's setting, documented for extra workers) was checked, then ignored: a
  // worker given serve's environment ran 50 runs at once. `-c` still wins.
  for (const [args, expected] of [
    [[], '3 runs at once'],
    [['-c', '5'], '5 runs at once'],
  ] as const) {
    const configured = await startedWorker(args, { ...env, RMAPP_CONCURRENCY: '3' });
    expect(configured.output(), `RMAPP_CONCURRENCY=3 ${args.join(' ')}`).toContain(expected);
    configured.child.kill('SIGTERM');
    expect(await configured.exited, configured.output()).toBe(0);
  }

  const bad = await rmapp('worker', '--retain-failed', 'soon');
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/--retain-failed <age>.*Invalid duration "soon".*or never/);
  expect(bad.stderr).not.toMatch(/\n\s+at /);
});

it('a worker whose logs cannot be written (stderr on a full disk) goes on working; output that cannot be written is a one-line error', async () => {
  // An adversarial pass: `rmapp worker 2>/dev/full` ended with an uncaught ENOSPC from its first log
  // line, and `rmapp runs list >/dev/full` printed Node's stack trace.
  const full = openSync('/dev/full', 'w');
  const worker = spawn(process.execPath, [BIN, '--workflows', TEST_WORKFLOWS, 'worker'], {
    cwd: ROOT,
    env: { ...process.env, ...env, RMAPP_LOG_LEVEL: 'debug' },
    stdio: ['ignore', full, full],
  });
  const exited = new Promise<number | null>((resolve) => worker.on('exit', resolve));
  try {
    const started = await rmapp('start', 'test.sequence', '{}', '--wait', '--json');
    expect(started.code, started.stderr).toBe(0);
    expect((JSON.parse(started.stdout) as { status: string }).status).toBe('succeeded');
    expect(worker.exitCode, 'the worker, after logging to a full disk').toBeNull();
    const listed = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, '--workflows', TEST_WORKFLOWS, 'runs', 'list'], {
        cwd: ROOT,
        env: { ...process.env, ...env },
        stdio: ['ignore', full, 'pipe'],
      });
      let stderr = '';
      child.stderr?.on('data', (d) => (stderr += d));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
    expect(listed.code).toBe(1);
    expect(listed.stderr.trim()).toBe(
      'rmapp: the output could not be written (ENOSPC): free space on the disk it goes to, or send it elsewhere.',
    );
  } finally {
    worker.kill('SIGTERM');
    await exited;
    closeSync(full);
  }
});
