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
import { definitionProblem, type WorkflowDefinition } from '../../state_machine/definition.ts';
import { syntaxErrorLocation } from '../syntax-error-location.ts';
import { importUserModule, inWords, MODULE_EXTENSIONS, userFileProblem } from '../typescript-modules.ts';

/** TypeScript, parsed by tsx: its errors are its own. */
const TYPESCRIPT = /\.(c|m)?tsx?$/;

/** What a workflows module may export. */
export interface WorkflowsModule {
  workflows?: unknown;
  default?: unknown;
  previousVersions?: unknown;
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
  const wrong = userFileProblem(file, MODULE_EXTENSIONS);
  if (wrong) {
    throw new ValidationError(
      `The workflows module ${file} is ${wrong}: pass --workflows (or set RMAPP_WORKFLOWS to) a ${inWords(MODULE_EXTENSIONS)} module that exports \`workflows\`.`,
    );
  }
  try {
    return commonJsExports((await importUserModule(file, 'module')) as WorkflowsModule);
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    // The module's own error (it threw while loading, or is not a module Node can import) said nothing
    // of where it came from: `rmapp: boom` after any command.
    // A syntax error says where: Node 20 gave an ES module's only its message.
    const at = TYPESCRIPT.test(file) ? undefined : syntaxErrorLocation(err, file);
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(
      `Loading the workflows module ${file} (--workflows or RMAPP_WORKFLOWS) failed: ${at ? `SyntaxError at ${at}: ` : ''}${message}${requireUnderHooks(file, message)}`,
      { cause: err },
    );
  }
}

/**
 * What to do when a `.cts` module's `require()` of an ES module (rmapp, which every workflows module loads)
 * fails under tsx's loader hooks: Node 20 cannot finish it there and says only `request for
 * './state_machine/engine.js' is not in cache` (test/pk-commonjs-workflows-modules.test.ts).
 */
function requireUnderHooks(file: string, message: string): string {
  if (!/\.cts$/.test(file) || !/is not in cache/.test(message)) return '';
  return (
    '. A .cts module cannot require() the ES module rmapp through the TypeScript loader on this Node: ' +
    'write it with import/export as a .ts or .mts module (a .ts loads as an ES module also without "type": "module")'
  );
}

/**
 * A CommonJS module's exports as its own: `module.exports = { workflows: [defineWorkflow(…)] }` reaches an
 * `import()` only as the default export's properties, since Node finds a CommonJS module's named exports by
 * scanning its source, which does not see a property whose value is an array. Such a `.cjs` module was
 * refused as exporting no `workflows` (test/pk-commonjs-workflows-modules.test.ts).
 */
function commonJsExports(mod: WorkflowsModule): WorkflowsModule {
  const d = mod.default;
  if (mod.workflows !== undefined || d === null || typeof d !== 'object' || Array.isArray(d) || !('workflows' in d)) return mod;
  return { ...(d as WorkflowsModule), default: d };
}

/**
 * The list a workflows module exports as `name` (its words in the message), checked item by item: a ValidationError naming the
 * module, the export, the item and what is wrong with it.
 */
export function definitionList(list: unknown, where: string, name: string): WorkflowDefinition[] {
  if (!Array.isArray(list)) throw new ValidationError(`${where} must export ${name}: an array of defineWorkflow(...) results.`);
  // Copied first: a Proxy's own `every` or `map` is not asked (one that lied let look-alikes through).
  const items: unknown[] = Array.prototype.slice.call(list);
  const seen = new Set<string>();
  items.forEach((d, i) => {
    const problem = definitionProblem(d);
    if (problem)
      throw new ValidationError(`${where} must export ${name}: an array of defineWorkflow(...) results (item ${i}: ${problem}).`);
    const key = `${(d as WorkflowDefinition).name}@${(d as WorkflowDefinition).version}`;
    // As the engine says when it is given them (run-queries.ts): `workflows list` listed both.
    if (seen.has(key)) throw new ValidationError(`Workflow ${key} is registered twice in ${where}.`);
    seen.add(key);
  });
  return items as WorkflowDefinition[];
}

/** Loads definitions from `modulePath`, or the built-in registry when it is undefined. */
export async function loadWorkflows(modulePath?: string): Promise<WorkflowDefinition[]> {
  const mod = await importWorkflowsModule(modulePath);
  const where = modulePath ? resolve(modulePath) : 'the built-in registry';
  // `workflows` when it is exported at all (an empty list is a choice), else the default export.
  if (mod.workflows !== undefined) return definitionList(mod.workflows, where, '`workflows`');
  return definitionList(mod.default, where, '`workflows` (or a default export)');
}
