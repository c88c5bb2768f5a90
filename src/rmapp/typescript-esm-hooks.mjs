/**
 * Module hooks (node:module `register`) that load a user's `.ts` module as an ES module where Node would
 * take it for CommonJS: its package.json has no `"type": "module"`, or there is none. tsx's ESM hooks
 * (which the CLI registers first, src/rmapp/typescript-modules.ts) then hand such a file to Node's
 * CommonJS loader, which reads it as JavaScript: `const n: number = 1` failed as `Missing initializer in
 * const declaration`. tsx's CommonJS hooks would compile it, but a module they load `require`s the
 * `rmapp` it imports as a second copy of the package, whose steps the engine would not recognise.
 *
 * Only a `.ts`/`.tsx` file outside node_modules that is written as an ES module (a line beginning with
 * `import` or `export`) and shows nothing of CommonJS (`require(`, `module.exports`, `exports.x =`) is
 * switched: a CommonJS file with such a line in a comment or a string loaded before and must still
 * (an adversarial pass).
 */
import { readFile } from 'node:fs/promises';

const TYPESCRIPT = /\.tsx?$/;
const ESM_SYNTAX = /^\s*(import\s*[\w*{'"]|export[\s{*])/m;
const CJS_SYNTAX = /\brequire\s*\(|\bmodule\.exports\b|\bexports\.\w+\s*=/;

/** Node's resolve hook: the format `module` for a user's ES-module `.ts` resolved as `commonjs`. */
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  if (resolved.format !== 'commonjs' || !resolved.url.startsWith('file:') || resolved.url.includes('/node_modules/')) return resolved;
  const url = new URL(resolved.url);
  if (!TYPESCRIPT.test(url.pathname)) return resolved;
  const source = await readFile(url, 'utf8').catch(() => '');
  return ESM_SYNTAX.test(source) && !CJS_SYNTAX.test(source) ? { ...resolved, format: 'module' } : resolved;
}
