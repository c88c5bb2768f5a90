/**
 * Test fixtures run as child processes, compiled into one ES module each. Started through tsx, a
 * fixture compiles its ~150 TypeScript modules at every start (1.7–2.0 s, 0.6–0.7 s of CPU); bundled it
 * starts in 0.7 s (0.3 s of CPU), measured on the 2-core CI machine — and the process tests start a
 * few hundred workers and CLI commands per run.
 *
 * test/global-setup.ts bundles {@link FIXTURES} once per `vitest run` into a folder it names in
 * {@link BUNDLE_DIR_ENV}; {@link fixtureModule} and {@link bundledScript} use those files. Without that
 * folder (a helper used outside vitest) `bundledScript` builds on first use in this process, and
 * `fixtureModule` gives the TypeScript source, which the CLI loads through tsx.
 *
 * Packages stay external (resolved from the repository's node_modules, where the bundles are written).
 * Modules that find their files next to themselves (`import.meta.url`: the migrations, the dashboard,
 * the sandbox's forwarder) keep their own URL, so they find them where they are in the repository.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { BUNDLE_DIR_ENV, bundleName, FIXTURES } from './fixture-bundles.ts';
import { ROOT } from './processes.ts';

export { BUNDLE_DIR_ENV, FIXTURES };

const ownUrl: Plugin = {
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.(ts|mjs|js)$/ }, async (args) => {
      if (args.path.includes('/node_modules/')) return undefined;
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      return {
        contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
        loader: args.path.endsWith('.ts') ? 'ts' : 'js',
      };
    });
  },
};

/** Bundles `entry` (an absolute .ts path) into `dir`; resolves with the bundle's path. */
export async function bundle(entry: string, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, bundleName(entry));
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
    plugins: [ownUrl],
  });
  return outfile;
}

const built = new Map<string, Promise<string>>();

/** The path of `entry` (a .ts file) bundled for `node <path>`: the run's bundle, or built on first use in this process. */
export function bundledScript(entry: string): Promise<string> {
  const shared = process.env[BUNDLE_DIR_ENV];
  if (shared && existsSync(join(shared, bundleName(entry)))) return Promise.resolve(join(shared, bundleName(entry)));
  let script = built.get(entry);
  if (!script) {
    // One folder per test process: files running in parallel never write each other's bundle.
    script = bundle(entry, join(ROOT, 'node_modules', '.cache', 'rmapp-test', String(process.pid)));
    built.set(entry, script);
  }
  return script;
}
