/**
 * An embedded store's path that a shell would have expanded (`~/rmstore`, `$HOME/rmstore`) is refused,
 * naming the absolute path to write: from a .env file, a compose env_file or systemd, which expand
 * neither, it made a folder named `~` (or `$HOME`) in the current directory (an outside tester).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { checkDataDirSetting } from '../src/persistence/data-dir-setting.ts';
import { openDatabase } from '../src/persistence/database.ts';
import { BIN } from './helpers/processes.ts';

const cwd = realpathSync(mkdtempSync(join(tmpdir(), 'rmapp-data-dir-setting-')));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

const refusal = (value: string, what: string, folder: string, known: string | null, setting = 'RMAPP_DATA_DIR', where = process.cwd()) =>
  `${setting} is ${JSON.stringify(value)}: rmapp does not expand ${what} (a shell does, only where it is unquoted; .env files, ` +
  `compose env_file and systemd do not), so it would make a folder named "${folder}" in ${where}. ` +
  `Write the absolute path${known ? ` (${known})` : ''} in ${setting}.`;

it('a first segment ~ or ~user, or a leading $, is refused naming the path to write when it is known', () => {
  process.env.RMAPP_TEST_STORES = '/srv/stores';
  delete process.env.RMAPP_TEST_UNSET;
  const cases: [string, string, string, string | null][] = [
    ['~/rmstore', '~', '~', `${homedir()}/rmstore`],
    ['~', '~', '~', homedir()],
    ['~ada/rmstore', '~', '~ada', null],
    ['$RMAPP_TEST_STORES/rmstore', '$RMAPP_TEST_STORES', '$RMAPP_TEST_STORES', '/srv/stores/rmstore'],
    ['${RMAPP_TEST_STORES}/a', '$RMAPP_TEST_STORES', '${RMAPP_TEST_STORES}', '/srv/stores/a'],
    ['$RMAPP_TEST_UNSET/rmstore', '$RMAPP_TEST_UNSET', '$RMAPP_TEST_UNSET', null],
  ];
  try {
    for (const [value, what, folder, known] of cases)
      expect(() => checkDataDirSetting(value, 'RMAPP_DATA_DIR'), value).toThrow(refusal(value, what, folder, known));
    // A ~ elsewhere is a name like any other.
    for (const value of ['./~/rmstore', 'a~/b', 'stores/~', '/srv/$x', 'memory://'])
      expect(() => checkDataDirSetting(value, 'RMAPP_DATA_DIR'), value).not.toThrow();
  } finally {
    delete process.env.RMAPP_TEST_STORES;
  }
});

it('openDatabase names dataDir; the CLI names RMAPP_DATA_DIR, exits 1 and makes nothing', async () => {
  // existingOnly: where ~ was not refused, this opening made nothing in the repository either.
  await expect(openDatabase({ url: '', dataDir: '~/rmstore', existingOnly: true })).rejects.toMatchObject({
    code: 'DATABASE_CONFIG',
    message: refusal('~/rmstore', '~', '~', `${homedir()}/rmstore`, 'dataDir'),
  });
  for (const args of [['migrate'], ['runs', 'list']]) {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      cwd,
      env: { ...process.env, DATABASE_URL: '', RMAPP_DATA_DIR: '$HOME/rmstore', HOME: '/home/ada' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    const message = refusal('$HOME/rmstore', '$HOME', '$HOME', '/home/ada/rmstore', 'RMAPP_DATA_DIR', cwd);
    expect({ code: r.status, stdout: r.stdout, stderr: r.stderr }, args.join(' ')).toEqual({
      code: 1,
      stdout: '',
      stderr: `rmapp: ${message}\n`,
    });
  }
  expect(readdirSync(cwd)).toEqual([]);
});
