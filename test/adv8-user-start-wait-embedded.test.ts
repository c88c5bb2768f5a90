/**
 * `rmapp start --wait` on the embedded store of a run that waits for an event (a new user's pass through
 * the README: its `order` workflow waits a day for `approve`): the command holds the store, so no other
 * process can send the event, and it waited for ever printing nothing. It now says so once, naming the
 * way out (Ctrl-C keeps the run; `runs send`, then `rmapp worker`), and Ctrl-C hands the run over.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { embeddedWaitHint } from '../src/rmapp/cli/foreground-stop.ts';
import { killAll, spawnRmapp, TEST_WORKFLOWS, until } from './helpers/processes.ts';

describe('rmapp start --wait on the embedded store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rmapp-adv8-wait-'));
  afterAll(() => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says that a run waiting for an event cannot get one while it holds the store', async () => {
    const started = spawnRmapp(
      ['--workflows', TEST_WORKFLOWS, 'start', 'test.approval', JSON.stringify({ timeoutMs: 86_400_000 }), '--wait'],
      {
        DATABASE_URL: undefined,
        RMAPP_DATA_DIR: join(dir, 'store'),
      },
    );
    await until(() => started.output().includes('waits for an event'), 90_000, 'the hint');
    const runId = /run (\S+): test\.approval/.exec(started.output())?.[1];
    expect(started.output()).toContain(`rmapp runs send ${runId} '{"type":"…"}'`);
    started.child.kill('SIGINT');
    expect(await started.exited, started.output()).toBe(130);
    expect(started.output()).toContain(`run ${runId} did not finish here (it was waiting)`);
  }, 150_000);

  it('says nothing of a run whose timer is due within a minute, or that is not waiting', () => {
    const now = Date.parse('2026-12-06T12:00:00Z');
    expect(embeddedWaitHint('r', 'waiting', new Date(now + 5_000), now)).toBeNull();
    expect(embeddedWaitHint('r', 'running', null, now)).toBeNull();
    expect(embeddedWaitHint('r', 'waiting', null, now)).toContain('waits for an event, and');
    expect(embeddedWaitHint('r', 'waiting', new Date(now + 3_600_000), now)).toContain('its timer, at 2026-12-06T13:00:00.000Z');
  });
});
