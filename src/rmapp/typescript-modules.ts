/**
 * Importing a user's TypeScript module (a `--workflows` module, an `rmapp.config.ts`) from the compiled
 * CLI: tsx's ESM loader is registered the first time one is imported, and only when the user's project
 * has `tsx` installed (README "CLI"). Without it the error names the fix: install tsx, or use `.js`.
 */
import { pathToFileURL } from 'node:url';
import { ValidationError } from '../state_machine/errors.ts';

const TYPESCRIPT = /\.(c|m)?tsx?$/;
let registered = false;

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
    registered = true;
  }
  return import(pathToFileURL(file).href);
}
