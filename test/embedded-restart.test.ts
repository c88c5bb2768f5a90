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
