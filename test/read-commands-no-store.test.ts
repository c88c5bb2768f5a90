/**
 * Commands about stored runs (`runs list|show|watch|cancel|retry|send`) make no embedded store where
 * there is none (persistence/store-directory.ts `NO_STORE`). An outside tester's `runs show <id>` in a
 * subfolder of the project made a 39 MB store there and said `No run with id "…"`: the run looked gone.
 * Nor do `versions check` (a deploy gate) and `prune`. Commands that write (`start`, `migrate`…) still make it.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { BIN, TEST_WORKFLOWS } from './helpers/processes.ts';

const project = realpathSync(mkdtempSync(join(tmpdir(), 'rmapp-no-store-')));
afterAll(() => rmSync(project, { recursive: true, force: true }));

/** `rmapp <args>` in `cwd`, on the embedded store (DATABASE_URL and RMAPP_DATA_DIR unset unless given). */
function rmapp(cwd: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, '--workflows', TEST_WORKFLOWS, ...args], {
    cwd,
    env: { ...process.env, DATABASE_URL: '', RMAPP_DATA_DIR: '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const noStore = (dir: string) =>
  `rmapp: No rmapp store at ${dir} (this command acts on runs already stored, and makes none): run it from the project's folder, ` +
  'or set RMAPP_DATA_DIR (or DATABASE_URL) to the store that holds the runs.\n';

it('where there is no store, runs commands say so naming its path, exit 1 (list: no runs, exit 0), and make none', () => {
  const sub = join(project, 'src');
  mkdirSync(sub);
  const store = join(sub, '.rmapp', 'pgdata');
  for (const args of [
    ['runs', 'show', 'r-1'],
    ['runs', 'watch', 'r-1'],
    ['runs', 'cancel', 'r-1'],
    ['runs', 'retry', 'r-1'],
    ['runs', 'send', 'r-1', '{"type":"go"}'],
  ]) {
    const r = rmapp(sub, args);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }, args.join(' ')).toEqual({ code: 1, stdout: '', stderr: noStore(store) });
  }
  const listNote = `rmapp: no rmapp store at ${store}, so no runs: run from the project's folder, or set RMAPP_DATA_DIR or DATABASE_URL to its store.\n`;
  expect(rmapp(sub, ['runs', 'list']), 'runs list').toEqual({ code: 0, stdout: 'No runs.\n', stderr: listNote });
  expect(rmapp(sub, ['runs', 'list', '--json']), 'runs list --json').toEqual({ code: 0, stdout: '[]\n', stderr: listNote });
  // RMAPP_DATA_DIR naming a store that is not there: that path is named.
  const moved = join(project, 'elsewhere', 'store');
  expect(rmapp(project, ['runs', 'show', 'r-1'], { RMAPP_DATA_DIR: moved }).stderr).toBe(noStore(moved));
  expect(readdirSync(sub), 'a store made in the subfolder').toEqual([]);
  expect(readdirSync(project).sort(), 'a store made in the project').toEqual(['src']);
});

it('versions check and prune make no store either: the deploy gate fails naming the path, prune prunes nothing (exit 0)', () => {
  // An outside tester: `versions check` from the wrong folder made a store there and passed the deploy
  // with "stranded": 0; `prune` made one and deleted nothing from it.
  const sub = join(project, 'deploy');
  mkdirSync(sub);
  const store = join(sub, '.rmapp', 'pgdata');
  expect(rmapp(sub, ['versions', 'check', '--json']), 'versions check').toEqual({ code: 1, stdout: '', stderr: noStore(store) });
  const pruneNote = `rmapp: no rmapp store at ${store}, so nothing to prune: run from the project's folder, or set RMAPP_DATA_DIR or DATABASE_URL to its store.\n`;
  const pruned = rmapp(sub, ['prune']);
  expect({ code: pruned.code, stderr: pruned.stderr }, 'prune').toEqual({ code: 0, stderr: pruneNote });
  expect(pruned.stdout).toMatch(
    /^Deleted 0 finished runs \(succeeded 0, failed 0, cancelled 0\), 0 history rows, 0 signals and 0 artifacts; kept: /,
  );
  const json = rmapp(sub, ['prune', '--dry-run', '--json']);
  expect({ code: json.code, stderr: json.stderr }, 'prune --json').toEqual({ code: 0, stderr: pruneNote });
  expect(JSON.parse(json.stdout)).toMatchObject({ dryRun: true, runs: 0, historyRows: 0, signals: 0, artifacts: 0 });
  expect(readdirSync(sub), 'a store made in the folder').toEqual([]);
});

it('a file where the store should be is named as one, not taken for no store', () => {
  // An outside tester: RMAPP_DATA_DIR=<a regular file> rmapp runs list said "No runs.", exit 0.
  const file = join(project, 'not-a-dir');
  writeFileSync(file, 'mine');
  for (const dir of [file, join(file, 'below')]) {
    const inTheWay =
      `rmapp: The embedded database's directory ${dir} cannot be created (a file is in the way): ` +
      'set dataDir (RMAPP_DATA_DIR for the CLI) to a directory this process may write.\n';
    const commands = dir === file ? [['runs', 'list'], ['runs', 'show', 'r-1'], ['versions', 'check'], ['prune']] : [['runs', 'list']];
    for (const args of commands)
      expect(rmapp(project, args, { RMAPP_DATA_DIR: dir }), `${args.join(' ')} on ${dir}`).toEqual({
        code: 1,
        stdout: '',
        stderr: inTheWay,
      });
  }
});

it("a store directory this user cannot read is named as such, not taken for no store (as another user's)", () => {
  // An outside tester: a store of mode 700 owned by another user, `runs list` said "No runs.", exit 0.
  // The test runs as root (as CI does); the command runs as nobody, which cannot read root's directory.
  const store = join(project, 'theirs');
  mkdirSync(join(store, 'base'), { recursive: true });
  writeFileSync(join(store, 'PG_VERSION'), '17\n');
  chmodSync(project, 0o755);
  chmodSync(store, 0o700);
  const unreadable =
    `rmapp: The embedded database's directory ${store} cannot be read by this process (EACCES): give this user access to it and the folders ` +
    'above it (chown or chmod), or set dataDir (RMAPP_DATA_DIR for the CLI) to a directory it may read and write.\n';
  for (const args of [['runs', 'list'], ['runs', 'show', 'r-1'], ['versions', 'check'], ['prune'], ['migrate']]) {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      cwd: project,
      env: { ...process.env, DATABASE_URL: '', RMAPP_DATA_DIR: store },
      encoding: 'utf8',
      timeout: 60_000,
      uid: 65534,
      gid: 65534,
    });
    expect({ code: r.status, stdout: r.stdout, stderr: r.stderr }, args.join(' ')).toEqual({ code: 1, stdout: '', stderr: unreadable });
  }
  expect(readdirSync(store).sort()).toEqual(['PG_VERSION', 'base']);
});

it('a command that writes makes the store; runs commands then read it', () => {
  const started = rmapp(project, ['start', 'test.sequence', '{}', '--id', 'r-1']);
  expect(started.code, started.stderr).toBe(0);
  expect(existsSync(join(project, '.rmapp', 'pgdata', 'PG_VERSION'))).toBe(true);
  const shown = rmapp(project, ['runs', 'show', 'r-1', '--json']);
  expect(shown.code, shown.stderr).toBe(0);
  expect(JSON.parse(shown.stdout)).toMatchObject({ id: 'r-1', status: 'pending' });
  expect(rmapp(project, ['runs', 'show', 'r-2']).stderr).toMatch(/No run with id "r-2"/);
});
