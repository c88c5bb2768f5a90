/**
 * The commands the CLI prints for a run can be pasted as they are (README "CLI"). A user who started a run
 * of their own workflow with `rmapp --workflows ./workflow.ts start order … --wait` on the embedded store
 * was told to go on with `rmapp worker`: pasted, that worker loads the built-in registry, which has no
 * `order`, and leaves the run waiting without a word. The printed `rmapp worker` must name the module.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, spawnRmapp, TEST_WORKFLOWS, until } from './helpers/processes.ts';
import { shellWord } from '../src/rmapp/cli/shell-word.ts';

const dirs: string[] = [];
afterEach(() => {
  killAll();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('commands printed for a run started with --workflows', () => {
  it('name the workflows module in the `rmapp worker` they tell the user to run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pk-hint-'));
    dirs.push(dir);
    const env = { RMAPP_DATA_DIR: join(dir, 'pgdata'), DATABASE_URL: '', RMAPP_WORKFLOWS: '' };
    const p = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'start', 'test.approval', '{"timeoutMs":3600000}', '--wait'], env);
    await until(() => p.output().includes('waits for an event'), 60_000, `the embedded wait hint; output so far:\n${p.output()}`);
    p.child.kill('SIGINT');
    expect(await p.exited).toBe(130);
    const worker = `rmapp --workflows ${shellWord(TEST_WORKFLOWS)} worker`;
    const lines = p.output().split('\n');
    const hint = lines.find((l) => l.includes('waits for an event')) ?? '';
    const stopped = lines.find((l) => l.includes('did not finish here')) ?? '';
    expect(hint, `the wait hint names a worker without the --workflows module it needs:\n${hint}`).toContain(worker);
    expect(stopped, `the stop line names a worker without the --workflows module it needs:\n${stopped}`).toContain(worker);
  }, 90_000);
});
