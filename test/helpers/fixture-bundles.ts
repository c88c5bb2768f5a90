/**
 * Where the run's bundled fixtures are (test/helpers/bundle.ts builds them, test/global-setup.ts once per
 * run). Kept apart from bundle.ts so that the process helpers and the bundled workers themselves import
 * neither esbuild nor vitest.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The environment variable naming the folder of the run's bundles (set by test/global-setup.ts). */
export const BUNDLE_DIR_ENV = 'RMAPP_TEST_BUNDLE_DIR';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The fixtures child processes load: workflows modules for `rmapp --workflows` and worker scripts. */
export const FIXTURES = [
  'test/fixtures/test-workflows.ts',
  'test/fixtures/conformance-workflows.ts',
  'test/fixtures/versioned-workflows.ts',
  'test/fixtures/github-worker.ts',
  'test/fixtures/b2-sleep-crash.ts',
].map((f) => join(ROOT, f));

/** The file name of `entry`'s bundle. */
export const bundleName = (entry: string) => basename(entry).replace(/\.ts$/, '.mjs');

/**
 * The module a child process should load for the fixture `entry` (absolute .ts path): its bundle when
 * the run has one, else the TypeScript source (the CLI loads it through tsx, only slower).
 */
export function fixtureModule(entry: string): string {
  const dir = process.env[BUNDLE_DIR_ENV];
  const bundled = dir ? join(dir, bundleName(entry)) : '';
  return bundled && existsSync(bundled) ? bundled : entry;
}
