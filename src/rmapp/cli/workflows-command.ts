/**
 * `rmapp workflows list`: the registered workflows (the `--workflows` module, or the built-in
 * registry) with their versions and input schemas as JSON Schema, so a caller can see what
 * `rmapp start <workflow> <input-json>` accepts without reading the code.
 */
import type { Command } from 'commander';
import type { AnyWorkflowDefinition } from '../../state_machine/definition.ts';

/** A definition as `workflows list --json` prints it. */
export interface WorkflowListing {
  name: string;
  version: string;
  /** JSON Schema (draft 2020-12) of the input; parts zod cannot express (transforms, custom checks) are left open. */
  input: Record<string, unknown>;
}

/** Lists definitions with their input schemas converted by zod's `z.toJSONSchema`. */
export async function listWorkflows(definitions: readonly AnyWorkflowDefinition[]): Promise<WorkflowListing[]> {
  const { z } = await import('zod');
  return definitions.map((d) => ({
    name: d.name,
    version: d.version,
    input: z.toJSONSchema(d.input, { unrepresentable: 'any', io: 'input' }) as Record<string, unknown>,
  }));
}

/** The human form: one block per workflow, its input schema indented. */
export function formatWorkflowList(list: readonly WorkflowListing[]): string {
  if (list.length === 0) return 'No workflows.';
  return list
    .map((w) => {
      const { $schema: _schema, ...schema } = w.input;
      return `${w.name}@${w.version}\n  input: ${JSON.stringify(schema, null, 2).replace(/\n/g, '\n  ')}`;
    })
    .join('\n\n');
}

/** Adds `rmapp workflows list [--json]`; `modulePath` gives the program's `--workflows`. */
export function addWorkflowsCommand(program: Command, modulePath: () => string | undefined): void {
  const workflows = program.command('workflows').description('the registered workflow definitions');
  workflows
    .command('list')
    .description('names, versions and input schemas (JSON Schema) of the registered workflows')
    .option('--json', 'print a JSON array')
    .action(async (o: { json?: boolean }) => {
      const { loadWorkflows } = await import('../workflows/load.ts');
      const list = await listWorkflows(await loadWorkflows(modulePath()));
      process.stdout.write(`${o.json ? JSON.stringify(list, null, 2) : formatWorkflowList(list)}\n`);
    });
}
