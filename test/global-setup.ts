/**
 * Once per `vitest run` (vitest.config.ts `globalSetup`): bundles the fixtures that tests start as child
 * processes (test/helpers/fixture-bundles.ts), so that no test process compiles them again and no
 * worker or CLI process compiles TypeScript at start-up. The folder is named in the environment, which
 * the test processes inherit, and removed at the end of the run.
 *
 * Also gives the run a temporary directory of its own (`TMPDIR`, which `os.tmpdir()` and every process
 * the tests start read): the tests' worlds, workspaces and ledgers go there, and it is removed at the
 * end, so a run leaves nothing in the machine's /tmp (one run left ~100 folders there).
 *
 * And makes sure the server has a migrated template for the tests' Postgres databases
 * (test/helpers/migrated-template.ts); it is kept after the run, for the next run of the same tree.
 * The test databases the files finished with are dropped at the end, all together
 * (test/helpers/postgres.ts `retireTestDatabase`).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundle } from './helpers/bundle.ts';
import { BUNDLE_DIR_ENV, FIXTURES } from './helpers/fixture-bundles.ts';
import { ensureMigratedTemplate } from './helpers/migrated-template.ts';
import { dropRetiredTestDatabases, TEMPLATE_ENV } from './helpers/postgres.ts';
import { ROOT } from './helpers/processes.ts';

const dir = join(ROOT, 'node_modules', '.cache', 'rmapp-test', `run-${process.pid}`);

let runTmp: string | undefined;

export async function setup(): Promise<void> {
  const [template] = await Promise.all([ensureMigratedTemplate(), ...FIXTURES.map((f) => bundle(f, dir))]);
  process.env[TEMPLATE_ENV] = template;
  process.env[BUNDLE_DIR_ENV] = dir;
  runTmp = mkdtempSync(join(tmpdir(), 'rmapp-tests-'));
  // Open as /tmp is: tests run commands as other users (a private cluster as postgres, a store as nobody).
  chmodSync(runTmp, 0o1777);
  process.env.TMPDIR = runTmp;
}

export async function teardown(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  if (runTmp) rmSync(runTmp, { recursive: true, force: true });
  await dropRetiredTestDatabases();
}
