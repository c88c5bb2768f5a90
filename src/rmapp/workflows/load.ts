/**
 * Finds the workflows a worker runs: the built-in registry, or a module the user names with
 * `--workflows <path>` / `RMAPP_WORKFLOWS` that exports `workflows` (or a default export) as an array
 * of definitions from `defineWorkflow`.
 *
 * The CLI runs compiled JavaScript. A `.ts` module is loaded through tsx's loader, registered only
 * then and only when the user's project has `tsx` installed (README "CLI"); without it the error says
 * to install tsx or to point at the compiled `.js`.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ValidationError } from '../../state_machine/errors.ts';
import type { WorkflowDefinition } from '../../state_machine/definition.ts';

/** What a workflows module may export. */
export interface WorkflowsModule {
  workflows?: unknown;
  default?: unknown;
  previousVersions?: unknown;
}

function isDefinition(value: unknown): value is WorkflowDefinition {
  const v = value as WorkflowDefinition | null;
  return !!v && typeof v.name === 'string' && typeof v.version === 'string' && !!v.machine && !!v.input;
}

const TYPESCRIPT = /\.(c|m)?tsx?$/;
let tsxRegistered = false;

/** Registers tsx's ESM loader once, so that `import()` of a `.ts` file works in compiled code. */
async function registerTypeScript(file: string): Promise<void> {
  if (tsxRegistered) return;
  let api: { register: () => unknown };
  try {
    api = (await import('tsx/esm/api')) as { register: () => unknown };
  } catch {
    throw new ValidationError(
      `${file} is TypeScript, and loading it needs tsx: install it in this project (npm install --save-dev tsx) or point --workflows at the compiled .js module.`,
    );
  }
  api.register();
  tsxRegistered = true;
}

/** Imports the workflows module at `modulePath`, or the built-in registry when it is undefined. */
export async function importWorkflowsModule(modulePath?: string): Promise<WorkflowsModule> {
  if (!modulePath) return (await import('./registry.ts')) as WorkflowsModule;
  const file = resolve(modulePath);
  if (!existsSync(file)) {
    throw new ValidationError(`Workflows module not found: ${file}. Pass --workflows <path to a .ts or .js module> or set RMAPP_WORKFLOWS.`);
  }
  if (TYPESCRIPT.test(file)) await registerTypeScript(file);
  return (await import(pathToFileURL(file).href)) as WorkflowsModule;
}

/** Loads definitions from `modulePath`, or the built-in registry when it is undefined. */
export async function loadWorkflows(modulePath?: string): Promise<WorkflowDefinition[]> {
  const mod = await importWorkflowsModule(modulePath);
  const list = mod.workflows ?? mod.default;
  if (!Array.isArray(list) || !list.every(isDefinition)) {
    throw new ValidationError(
      `${modulePath ? resolve(modulePath) : 'the built-in registry'} must export \`workflows\` (or a default export): an array of defineWorkflow(...) results.`,
    );
  }
  return list;
}
