/**
 * Finds the workflows a worker runs: the built-in registry, or a module the user names with
 * `--workflows <path>` / `RMAPP_WORKFLOWS` that exports `workflows` (or a default export) as an array
 * of definitions from `defineWorkflow`.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ValidationError } from '../../state_machine/errors.ts';
import type { WorkflowDefinition } from '../../state_machine/definition.ts';

function isDefinition(value: unknown): value is WorkflowDefinition {
  const v = value as WorkflowDefinition | null;
  return !!v && typeof v.name === 'string' && typeof v.version === 'string' && !!v.machine && !!v.input;
}

/** Loads definitions from `modulePath`, or the built-in registry when it is undefined. */
export async function loadWorkflows(modulePath?: string): Promise<WorkflowDefinition[]> {
  if (!modulePath) return (await import('./registry.ts')).workflows;
  const file = resolve(modulePath);
  if (!existsSync(file)) {
    throw new ValidationError(`Workflows module not found: ${file}. Pass --workflows <path to a .ts or .js module> or set RMAPP_WORKFLOWS.`);
  }
  const mod = (await import(pathToFileURL(file).href)) as { workflows?: unknown; default?: unknown };
  const list = mod.workflows ?? mod.default;
  if (!Array.isArray(list) || !list.every(isDefinition)) {
    throw new ValidationError(
      `${file} must export \`workflows\` (or a default export): an array of defineWorkflow(...) results.`,
    );
  }
  return list;
}
