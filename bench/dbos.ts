/**
 * The DBOS Transact side of the benchmark (`@dbos-inc/dbos-sdk`, the same workload as rmapp's):
 * a workflow of 6 sequential no-op steps, each a `DBOS.runStep`, so DBOS checkpoints a row in
 * `dbos.operation_outputs` after every step.
 *
 * Where DBOS keeps its state: everything lives in the database named by `databaseUrl` (DBOS
 * creates that database if it is missing), in the schema `dbos` (tables `workflow_status`,
 * `operation_outputs`, `workflow_inputs`, `dbos_migrations`, …). Each benchmark call drops that
 * schema first, so every run starts from an empty system database, and DBOS re-creates it on
 * launch (its migrations run before any timing starts).
 *
 * `dbosThroughput` runs DBOS in the calling process: DBOS is a process-wide singleton, but
 * `DBOS.shutdown()` followed by a new `DBOS.setConfig()` + `DBOS.launch()` works, so the function
 * may be called repeatedly. `dbosRecovery` uses child processes (`bench/dbos-child.ts`), because it
 * has to SIGKILL the process running the workflows.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { DBOS } from '@dbos-inc/dbos-sdk';
import postgres from 'postgres';
import { COMPILED_DBOS_CHILD, compileBenchModules, TYPESCRIPT_CHILDREN } from './compile.ts';
import { cpuMs, postgresCpu, postgresCpuSince } from './measure.ts';

/** The schema DBOS uses for its system tables (its default). */
export const DBOS_SCHEMA = 'dbos';
/** DBOS's application name; it scopes the workflows in the system database. */
const APP_NAME = 'rmapp-bench';
/**
 * A fixed application version. Without one, DBOS hashes the registered workflows' source, and
 * recovery on launch only picks up PENDING workflows of the same version and executor ID
 * (`local`): pinning it keeps the crashing child and the recovering child on the same version.
 */
const APP_VERSION = 'rmapp-bench-1';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHILD_SCRIPT = resolve(ROOT, 'bench', 'dbos-child.ts');
/** Workflow IDs of the recovery scenario. */
export const RECOVERY_ID_PREFIX = 'dbos-bench-recovery-';

/**
 * DBOS's pool runs a `SET …` in its `connect` handler, and pg 8.x then warns once per process
 * ("Calling client.query() when the client is already executing a query is deprecated") when the
 * pool queues the caller's query behind it. Harmless; drop just that warning so it does not land
 * in the benchmark's output. Every other warning passes through.
 */
const PG_QUEUED_QUERY_WARNING = 'Calling client.query() when the client is already executing a query';
const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]): void => {
  const text = typeof warning === 'string' ? warning : warning.message;
  if (text.startsWith(PG_QUEUED_QUERY_WARNING)) return;
  emitWarning(warning, ...rest);
}) as typeof process.emitWarning;

// ---------------------------------------------------------------------------------------------
// The workload

async function noop(): Promise<void> {}

/**
 * What step 4 does besides nothing; set only by the child that is to be killed mid-workflow
 * (there it blocks forever). Everywhere else step 4 is a no-op like the others.
 */
let step4Hook: (() => Promise<void>) | undefined;

/** For bench/dbos-child.ts: make step 4 run `hook` (undefined: a plain no-op). */
export function setStep4Hook(hook: (() => Promise<void>) | undefined): void {
  step4Hook = hook;
}

async function step4(): Promise<void> {
  if (step4Hook) await step4Hook();
}

async function sixStepWorkflow(n: number): Promise<number> {
  await DBOS.runStep(noop, { name: 'step1' });
  await DBOS.runStep(noop, { name: 'step2' });
  await DBOS.runStep(noop, { name: 'step3' });
  await DBOS.runStep(step4, { name: 'step4' });
  await DBOS.runStep(noop, { name: 'step5' });
  await DBOS.runStep(noop, { name: 'step6' });
  return n;
}

/** Registered once, at import (DBOS requires registration before launch). */
export const benchWorkflow = DBOS.registerWorkflow(sixStepWorkflow, { name: 'rmappBenchSixSteps' });

// ---------------------------------------------------------------------------------------------
// Lifecycle helpers (also used by bench/dbos-child.ts)

/** Configure and launch DBOS against `databaseUrl`; recovers PENDING workflows of executor `local`. */
export async function launchDbos(databaseUrl: string): Promise<void> {
  DBOS.setConfig({
    name: APP_NAME,
    systemDatabaseUrl: databaseUrl,
    applicationVersion: APP_VERSION,
    logLevel: 'error',
  });
  await DBOS.launch();
}

export async function shutdownDbos(): Promise<void> {
  await DBOS.shutdown();
}

function sqlClient(url: string): postgres.Sql {
  return postgres(url, { max: 1, onnotice: () => {}, connection: { application_name: 'rmapp-bench-dbos-admin' } });
}

/** Create the database if it is missing, and drop DBOS's schema in it: an empty system database. */
export async function resetDbosDatabase(databaseUrl: string): Promise<void> {
  const target = new URL(databaseUrl);
  const dbName = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!dbName) throw new Error(`dbos bench: no database name in ${target.host}`);
  const adminUrl = new URL(databaseUrl);
  adminUrl.pathname = '/postgres';
  const admin = sqlClient(adminUrl.toString());
  try {
    const rows = await admin`SELECT 1 FROM pg_database WHERE datname = ${dbName}`;
    if (rows.length === 0) await admin.unsafe(`CREATE DATABASE "${dbName.replaceAll('"', '""')}"`);
  } finally {
    await admin.end();
  }
  const sql = sqlClient(databaseUrl);
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${DBOS_SCHEMA}" CASCADE`);
  } finally {
    await sql.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Throughput

/**
 * Launches DBOS on a fresh system database, runs `workflows` six-step workflows with at most
 * `concurrency` in flight, and shuts DBOS down. `latenciesMs[i]` is workflow i's time from
 * `DBOS.startWorkflow` to its handle's `getResult()`; `totalMs` is the batch's wall time
 * (launch and shutdown excluded).
 */
export async function dbosThroughput(opts: {
  databaseUrl: string;
  workflows: number;
  concurrency: number;
}): Promise<{ latenciesMs: number[]; totalMs: number }> {
  const { databaseUrl, workflows } = opts;
  const concurrency = Math.max(1, Math.min(opts.concurrency, workflows));
  await resetDbosDatabase(databaseUrl);
  await launchDbos(databaseUrl);
  try {
    const latenciesMs = new Array<number>(workflows).fill(0);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= workflows) return;
        const started = performance.now();
        const handle = await DBOS.startWorkflow(benchWorkflow)(i);
        const result = await handle.getResult();
        latenciesMs[i] = performance.now() - started;
        if (result !== i) throw new Error(`dbos bench: workflow ${i} returned ${String(result)}`);
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const totalMs = performance.now() - t0;
    return { latenciesMs, totalMs };
  } finally {
    await shutdownDbos();
  }
}

// ---------------------------------------------------------------------------------------------
// Recovery

/** Messages from bench/dbos-child.ts over the IPC channel. */
export type ChildMessage = { type: 'blocked' } | { type: 'launched' } | { type: 'error'; message: string };

/** The child as JavaScript compiled by bench/compile.ts, like rmapp's worker's workflows module (or both through tsx). */
function startChild(mode: 'crash' | 'recover', databaseUrl: string, workflows: number): ChildProcess {
  const script = TYPESCRIPT_CHILDREN ? ['--import', 'tsx', CHILD_SCRIPT] : [COMPILED_DBOS_CHILD];
  return spawn(process.execPath, [...script, mode, databaseUrl, String(workflows)], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** Resolves with the first message of type `type`; rejects if the child exits or errors first. */
function waitForMessage(child: ChildProcess, type: ChildMessage['type'], timeoutMs: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => finish(new Error(`dbos bench: no '${type}' from the child in ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (raw: unknown): void => {
      const msg = raw as ChildMessage;
      if (msg.type === 'error') finish(new Error(`dbos bench child: ${msg.message}`));
      else if (msg.type === type) finish();
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
      finish(new Error(`dbos bench: child exited (code ${code}, signal ${signal}) before '${type}'`));
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolvePromise();
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolvePromise();
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Crash-recovery time for `workflows` workflows:
 * 1. a child process (DBOS launched on a fresh system database) starts the workflows; step 4 of
 *    each blocks forever. Once every workflow is inside step 4 (the child says so over IPC, and
 *    `dbos.operation_outputs` holds steps 1-3 of each, `dbos.workflow_status` shows them PENDING),
 *    the child is SIGKILLed;
 * 2. a second child launches DBOS, whose launch re-enqueues the PENDING workflows of executor
 *    `local` and runs them from step 4 (which does not block there).
 * `recoveryMs` runs from just before the second child is spawned (so it includes Node start, tsx with
 * RMAPP_BENCH_TS_CHILDREN=1,
 * loading DBOS and its launch) until `dbos.workflow_status` shows every workflow SUCCESS (polled
 * every 20 ms).
 */
export async function dbosRecovery(opts: {
  databaseUrl: string;
  workflows: number;
}): Promise<{ recoveryMs: number; childCpuMs: number; postgresCpuMs: number }> {
  const { databaseUrl, workflows } = opts;
  if (!TYPESCRIPT_CHILDREN) await compileBenchModules();
  await resetDbosDatabase(databaseUrl);
  const sql = sqlClient(databaseUrl);
  const children: ChildProcess[] = [];
  try {
    // Phase 1: run to step 4, then SIGKILL.
    const crashing = startChild('crash', databaseUrl, workflows);
    children.push(crashing);
    await waitForMessage(crashing, 'blocked', 300_000);
    const [progress] = await sql.unsafe<{ done: string; pending: string }[]>(
      `SELECT (SELECT count(*) FROM "${DBOS_SCHEMA}".operation_outputs
                WHERE function_name IN ('step1', 'step2', 'step3')) AS done,
              (SELECT count(*) FROM "${DBOS_SCHEMA}".workflow_status WHERE status = 'PENDING') AS pending`,
    );
    if (Number(progress?.done) !== 3 * workflows || Number(progress?.pending) !== workflows) {
      throw new Error(
        `dbos bench: before the kill expected ${3 * workflows} step rows and ${workflows} PENDING, got ${progress?.done} and ${progress?.pending}`,
      );
    }
    crashing.kill('SIGKILL');
    await waitForExit(crashing, 10_000);

    // Phase 2: a new process recovers them.
    const pgCpu0 = postgresCpu();
    const t0 = performance.now();
    const recovering = startChild('recover', databaseUrl, workflows);
    children.push(recovering);
    let exited: string | undefined;
    recovering.once('exit', (code, signal) => {
      exited = `code ${code}, signal ${signal}`;
    });
    const deadline = t0 + 300_000;
    for (;;) {
      const [row] = await sql.unsafe<{ success: string; failed: string }[]>(
        `SELECT count(*) FILTER (WHERE status = 'SUCCESS') AS success,
                count(*) FILTER (WHERE status IN ('ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')) AS failed
           FROM "${DBOS_SCHEMA}".workflow_status`,
      );
      if (Number(row?.success) === workflows) break;
      if (Number(row?.failed) > 0) throw new Error(`dbos bench: ${row?.failed} workflows failed during recovery`);
      if (exited) throw new Error(`dbos bench: recovering child exited (${exited}) with ${row?.success}/${workflows} done`);
      if (performance.now() > deadline) throw new Error(`dbos bench: recovery not done after 300 s (${row?.success}/${workflows})`);
      await sleep(20);
    }
    const recoveryMs = performance.now() - t0;
    const childCpuMs = cpuMs(recovering.pid as number);
    const postgresCpuMs = postgresCpuSince(pgCpu0);

    const [steps] = await sql.unsafe<{ n: string }[]>(
      `SELECT count(*) AS n FROM "${DBOS_SCHEMA}".operation_outputs WHERE function_name LIKE 'step_'`,
    );
    if (Number(steps?.n) !== 6 * workflows) {
      throw new Error(`dbos bench: expected ${6 * workflows} step rows after recovery, got ${steps?.n}`);
    }
    if (recovering.connected) recovering.send({ type: 'shutdown' });
    await waitForExit(recovering, 15_000);
    return { recoveryMs, childCpuMs, postgresCpuMs };
  } finally {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await sql.end();
  }
}
