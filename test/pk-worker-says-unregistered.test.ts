/**
 * A user's run of their own workflow (`rmapp --workflows ./workflow.ts start order …`) and then a plain
 * `rmapp worker`, which loads the built-in registry: the worker started, printed its line and sat there,
 * the run waiting untouched, with nothing said on the worker's side (an outside tester). Only `runs show`
 * told why. The worker must say, when it starts, that runs it does not register wait for another worker.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, runRmapp, spawnRmapp, TEST_WORKFLOWS, until } from './helpers/processes.ts';

const dirs: string[] = [];
afterEach(() => {
  killAll();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('rmapp worker without the definition of stored runs', () => {
  it('says at start that those runs wait for a worker that registers them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pk-unreg-'));
    dirs.push(dir);
    const env = { RMAPP_DATA_DIR: join(dir, 'pgdata'), DATABASE_URL: '', RMAPP_WORKFLOWS: '' };
    const started = await runRmapp(['--workflows', TEST_WORKFLOWS, 'start', 'test.approval', '{"timeoutMs":3600000}'], env);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    const worker = spawnRmapp(['worker'], env);
    await until(() => worker.output().includes('runs at once'), 60_000, `the worker's start line; output so far:\n${worker.output()}`);
    worker.child.kill('SIGINT');
    await worker.exited;
    expect(worker.output(), `the worker said nothing of run ${id}, whose test.approval it does not register`).toMatch(
      /1 unfinished run.* not register.*test\.approval@/s,
    );
  }, 90_000);
});
