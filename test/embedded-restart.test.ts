/**
 * The embedded store lets one process in at a time, so the leases it holds when a process opens it
 * were all a dead process's: a worker restarted after a SIGKILL takes its runs back at once. It waited
 * out the lease (30 s by default) first (an adversarial pass). The lease here is ten minutes: a restart
 * that waited for it would not resume the run within the test.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, silentLogger, step } from '../src/index.ts';
import { killAll, runRmapp, spawnRmapp, TEST_WORKFLOWS, until } from './helpers/processes.ts';

afterEach(() => killAll());

it('a worker restarted on an embedded store after a SIGKILL takes the dead process’s runs back at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rmapp-embedded-restart-'));
  const counter = join(dir, 'attempts.jsonl');
  const env = { DATABASE_URL: '', RMAPP_DATA_DIR: join(dir, 'store'), RMAPP_TEST_COUNTER_FILE: counter };
  const hangs = () => {
    try {
      return readFileSync(counter, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"name":"hang"')).length;
    } catch {
      return 0;
    }
  };
  const started = await runRmapp(['--workflows', TEST_WORKFLOWS, 'start', 'test.hanging', '{}'], env);
  expect(started.code, started.stderr).toBe(0);
  const runId = started.stdout.trim();
  const first = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--lease-ms', '600000'], env);
  await until(() => hangs() === 1, 60_000, 'the first worker to start the step');
  first.child.kill('SIGKILL');
  await first.exited;
  const second = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker'], env);
  await until(
    () => hangs() === 2,
    60_000,
    `the restarted worker to run the step again (it waited for the dead worker's lease): ${second.output()}`,
  );
  second.child.kill('SIGTERM');
  await second.exited;
  const shown = await runRmapp(['--workflows', TEST_WORKFLOWS, 'runs', 'show', runId], env);
  expect(shown.stdout.match(/step\.started 0\.hanging\.working hang/g), shown.stdout).toHaveLength(2);
}, 150_000);

it.each([undefined, 'fixed-worker'])(
  "a worker started again in the process whose earlier worker's step still runs does not take its run over (workerId %s)",
  async (workerId) => {
    // An adversarial pass: after a crash simulated in-process and the store closed and opened again, the
    // new worker took the lease the process's own running step held, and ran that step a second time at once.
    let executions = 0;
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = step(async () => {
      executions++;
      await gate;
      return 1;
    });
    const quick = step(async () => 1);
    const workflow = defineWorkflow({
      name: 'test.embedded-slow',
      input: z.object({ slow: z.boolean() }),
      machine: setup({ types: {} as { input: { slow: boolean } }, actors: { slow, quick } }).createMachine({
        initial: 'pick',
        context: ({ input }) => input,
        states: {
          pick: { always: [{ guard: ({ context }) => context.slow, target: 'slow' }, { target: 'quick' }] },
          slow: { invoke: { src: 'slow', onDone: 'done' } },
          quick: { invoke: { src: 'quick', onDone: 'done' } },
          done: { type: 'final' },
        },
      }),
    });
    const dataDir = join(mkdtempSync(join(tmpdir(), 'rmapp-embedded-again-')), 'store');
    // Under an id the operator chose, the restart takes its previous incarnation's runs back at once:
    // not those of an incarnation in this very process, whose step may still run.
    const engine = createEngine({
      database: { url: '', dataDir },
      workflows: [workflow],
      logger: silentLogger,
      leaseMs: 600_000,
      workerId,
    });
    try {
      await engine.startWorker();
      await engine.start(workflow, { slow: true });
      await until(() => executions === 1, 30_000, 'the slow step to start');
      engine.simulateCrash();
      await engine.stop({ graceMs: 200 });
      await engine.startWorker();
      // The restarted worker claims and finishes a run of its own: by then it has claimed what it could.
      await engine.waitFor(await engine.start(workflow, { slow: false }), { timeoutMs: 30_000 });
      expect(executions, "the slow step's executions").toBe(1);
    } finally {
      release();
      await engine.stop({ graceMs: 200 });
    }
  },
  60_000,
);
