/**
 * Compiles the modules the benchmark's child processes load — the rmapp workers' `--workflows` module
 * (bench/workflows.ts) and DBOS's recovery child (bench/dbos-child.ts with bench/dbos.ts) — to
 * JavaScript in bench/dist/, so that neither side's recovery time includes tsx compiling TypeScript
 * at start-up: a production deployment runs compiled JavaScript. Both sides are compiled the same way
 * (esbuild, packages left to Node's resolution), so the comparison stays fair (bench/README.md,
 * "Recovery, compiled").
 *
 * The compiled workflows module imports the engine from dist/ (`npm run build`), the same module
 * instances the compiled CLI runs, instead of a second copy of src/ compiled by tsx.
 */
import { mkdirSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = resolve(ROOT, 'bench', 'dist');

/** The compiled workflows module, for `rmapp worker --workflows`. */
export const COMPILED_WORKFLOWS = resolve(OUT, 'workflows.mjs');
/** The compiled DBOS recovery child, run as `node bench/dist/dbos-child.mjs`. */
export const COMPILED_DBOS_CHILD = resolve(OUT, 'dbos-child.mjs');

/** `../src/x/y.ts` → the compiled `dist/x/y.js`, imported (not bundled) from bench/dist/. */
const engineFromDist: Plugin = {
  name: 'engine-from-dist',
  setup(b) {
    b.onResolve({ filter: /^(\.\.\/)+src\// }, (args) => {
      const source = resolve(args.resolveDir, args.path);
      const compiled = resolve(ROOT, 'dist', relative(resolve(ROOT, 'src'), source)).replace(/\.ts$/, '.js');
      return { path: `./${relative(OUT, compiled)}`, external: true };
    });
    // The package's own entry (`../dist/index.js`, as bench/workflows.ts imports it): imported, not bundled.
    b.onResolve({ filter: /^(\.\.\/)+dist\// }, (args) => ({
      path: `./${relative(OUT, resolve(args.resolveDir, args.path))}`,
      external: true,
    }));
  },
};

/** RMAPP_BENCH_TS_CHILDREN=1: both sides' child processes load the TypeScript modules through tsx instead. */
export const TYPESCRIPT_CHILDREN = process.env.RMAPP_BENCH_TS_CHILDREN === '1';

let compiled: Promise<void> | null = null;

/** Compiles both modules once per benchmark process (about 100 ms); dist/ must be built already. */
export function compileBenchModules(): Promise<void> {
  compiled ??= (async () => {
    // Imported here, not at the top: bench/dbos.ts imports this module and is itself compiled into the
    // DBOS child, which must not load esbuild at start-up.
    const { build } = await import('esbuild');
    mkdirSync(OUT, { recursive: true });
    const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' } as const;
    await build({
      ...common,
      entryPoints: [resolve(ROOT, 'bench', 'workflows.ts')],
      outfile: COMPILED_WORKFLOWS,
      plugins: [engineFromDist],
    });
    await build({ ...common, entryPoints: [resolve(ROOT, 'bench', 'dbos-child.ts')], outfile: COMPILED_DBOS_CHILD });
  })();
  return compiled;
}
