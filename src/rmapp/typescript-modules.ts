/**
 * Importing a user's module (a `--workflows` module, an `rmapp.config.ts`) from the compiled CLI: tsx's
 * ESM loader is registered the first time a TypeScript one is imported, and only when the user's project
 * has `tsx` installed (README "CLI"). Without it the error names the fix: install tsx, or use `.js`.
 * typescript-esm-hooks.mjs is registered after it, so that a `.ts` file outside an ESM package loads too.
 */
import { statSync } from 'node:fs';
import { register } from 'node:module';
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ValidationError } from '../state_machine/errors.ts';

const TYPESCRIPT = /\.(c|m)?tsx?$/;
let registered = false;

/**
 * The extensions of a module the CLI can import: Node's own, and TypeScript's through tsx. Anything else
 * (a `.yml`, a directory) failed in Node's loader's words (`Unknown file extension ".yml"`, `Directory
 * import … is not supported resolving ES modules imported from …/dist/…`), naming rmapp's internals.
 */
export const MODULE_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'] as const;

/** The accepted extensions in words: `.js, .mjs, .cjs, .ts, .mts or .cts`. */
export const inWords = (extensions: readonly string[]) => `${extensions.slice(0, -1).join(', ')} or ${extensions.at(-1) ?? ''}`;

/**
 * What is wrong with `file` as one of `extensions` (`a directory, not a file`, `a .yml file`), or
 * undefined when it can be tried. A missing file is the caller's to name (undefined here).
 */
export function userFileProblem(file: string, extensions: readonly string[]): string | undefined {
  let directory: boolean;
  try {
    directory = statSync(file).isDirectory();
  } catch {
    return undefined;
  }
  if (directory) return 'a directory, not a file';
  const extension = extname(file);
  if (extensions.includes(extension)) return undefined;
  return extension ? `a ${extension} file` : 'a file without an extension';
}

/** Imports `file` (an absolute path), through tsx's loader when it is TypeScript. */
export async function importUserModule(file: string, what: string): Promise<unknown> {
  if (TYPESCRIPT.test(file) && !registered) {
    let api: { register: () => unknown };
    try {
      api = (await import('tsx/esm/api')) as { register: () => unknown };
    } catch {
      throw new ValidationError(
        `${file} is TypeScript, and loading it needs tsx: install it in this project (npm install --save-dev tsx) or use the compiled .js ${what}.`,
      );
    }
    api.register();
    // Registered last, so asked first: it changes the format tsx's resolve hook gives.
    register(new URL('./typescript-esm-hooks.mjs', import.meta.url));
    registered = true;
  }
  return import(pathToFileURL(file).href);
}
