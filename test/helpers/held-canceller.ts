/**
 * A real process that cancels a run through an engine registering one workflow of a fixture module, its
 * cancellation's answer held back a minute (`RMAPP_DB_FAULT=cancel:delay:60000`): the run is cancelled
 * in the database, and its cleanup marked owed, while the process has not heard it — what a test kills
 * to leave the cleanup owed by a process that died.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './processes.ts';

export interface HeldCanceller {
  child: ChildProcess;
  /** What the process wrote so far (stdout and stderr); `returned` once its cancel returned. */
  output(): string;
  /** Its exit: the signal that ended it, or its exit code. */
  exited: Promise<NodeJS.Signals | number | null>;
}

/**
 * Starts the process. `fixture` is a path under test/fixtures' parent (e.g. `test/fixtures/x.ts`),
 * `exportName` the workflow definition it exports; `env` is added to the process's environment.
 */
export function spawnHeldCanceller(opts: {
  fixture: string;
  exportName: string;
  databaseUrl: string;
  runId: string;
  reason: string;
  env?: Record<string, string>;
}): HeldCanceller {
  const script = [
    `import { createEngine } from ${JSON.stringify(join(ROOT, 'src/index.ts'))};`,
    `import { ${opts.exportName} } from ${JSON.stringify(join(ROOT, opts.fixture))};`,
    `const engine = createEngine({ database: process.env.DATABASE_URL, workflows: [${opts.exportName}] });`,
    `await engine.cancel(process.env.RUN_ID, ${JSON.stringify(opts.reason)});`,
    `process.stdout.write('returned\\n');`,
  ].join('\n');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: opts.databaseUrl, RUN_ID: opts.runId, RMAPP_DB_FAULT: 'cancel:delay:60000', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  return { child, output: () => out, exited };
}
