/**
 * Finds the workflows a worker runs: the built-in registry, or a module the user names with
 * `--workflows <path>` / `RMAPP_WORKFLOWS` that exports `workflows` (or a default export) as an array
 * of definitions from `defineWorkflow`.
 *
 * The CLI runs compiled JavaScript: a `.ts` module is loaded through tsx (`importUserModule`).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ValidationError } from '../../state_machine/errors.ts';
import type { WorkflowDefinition } from '../../state_machine/definition.ts';
import { importUserModule } from '../typescript-modules.ts';

/** What a workflows module may export. */
export interface WorkflowsModule {
  workflows?: unknown;
  default?: unknown;
  previousVersions?: unknown;
}

/**
 * A `defineWorkflow(...)` result, as far as the engine will use it: an XState machine (its `root` and
 * `transition`) and a schema that parses. Fields merely present let `{ machine: {}, input: {} }` through
 * to a TypeError from inside the engine.
 */
function isDefinition(value: unknown): value is WorkflowDefinition {
  const v = value as {
    name?: unknown;
    version?: unknown;
    machine?: { root?: unknown; transition?: unknown };
    input?: { safeParse?: unknown };
  } | null;
  return (
    !!v &&
    typeof v.name === 'string' &&
    typeof v.version === 'string' &&
    typeof v.machine?.transition === 'function' &&
    typeof v.machine.root === 'object' &&
    typeof v.input?.safeParse === 'function'
  );
}

/** Imports the workflows module at `modulePath`, or the built-in registry when it is undefined. */
export async function importWorkflowsModule(modulePath?: string): Promise<WorkflowsModule> {
  if (!modulePath) return (await import('./registry.ts')) as WorkflowsModule;
  const file = resolve(modulePath);
  if (!existsSync(file)) {
    throw new ValidationError(
      `Workflows module not found: ${file}. Pass --workflows <path to a .ts or .js module> or set RMAPP_WORKFLOWS.`,
    );
  }
  try {
    return (await importUserModule(file, 'module')) as WorkflowsModule;
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    // The module's own error (it threw while loading, or is not a module Node can import) said nothing
    // of where it came from: `rmapp: boom` after any command.
    throw new Error(
      `Loading the workflows module ${file} (--workflows or RMAPP_WORKFLOWS) failed: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

/** Loads definitions from `modulePath`, or the built-in registry when it is undefined. */
export async function loadWorkflows(modulePath?: string): Promise<WorkflowDefinition[]> {
  const mod = await importWorkflowsModule(modulePath);
  const list = mod.workflows ?? mod.default;
  if (!Array.isArray(list) || !list.every(isDefinition)) {
    throw new ValidationError(
      `${modulePath ? resolve(modulePath) : 'the built-in registry'} must export \`workflows\` (or a default export): an array of defineWorkflow(...) results${Array.isArray(list) ? ` (item ${list.findIndex((d) => !isDefinition(d))} is not one)` : ''}.`,
    );
  }
  const seen = new Set<string>();
  for (const d of list) {
    const key = `${d.name}@${d.version}`;
    // As the engine says when it is given them (run-queries.ts): `workflows list` listed both.
    if (seen.has(key))
      throw new ValidationError(`Workflow ${key} is registered twice in ${modulePath ? resolve(modulePath) : 'the built-in registry'}.`);
    seen.add(key);
  }
  return list;
}
