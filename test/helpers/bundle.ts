/**
 * A test fixture run as a worker process, compiled once per test process into one ES module. Started
 * through tsx, a fixture compiles its ~150 TypeScript modules at every start (1.7–2.0 s); bundled it
 * starts in 0.7 s (measured on the 2-core CI machine), and the crash tests start a hundred workers.
 *
 * Packages stay external (resolved from the repository's node_modules, where the bundle is written).
 * Modules that find their files next to themselves (`import.meta.url`: the migrations, the dashboard,
 * the sandbox's forwarder) keep their own URL, so they find them where they are in the repository.
 */
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { ROOT } from './processes.ts';

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

const built = new Map<string, Promise<string>>();

/** The path of `entry` (a .ts file) bundled for `node <path>`; built on first use in this process. */
export function bundledScript(entry: string): Promise<string> {
  let script = built.get(entry);
  if (!script) {
    // One folder per test process: files running in parallel never write each other's bundle.
    const dir = join(ROOT, 'node_modules', '.cache', 'rmapp-test', String(process.pid));
    mkdirSync(dir, { recursive: true });
    const outfile = join(dir, basename(entry).replace(/\.ts$/, '.mjs'));
    script = build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      logLevel: 'warning',
      plugins: [ownUrl],
    }).then(() => outfile);
    built.set(entry, script);
  }
  return script;
}
