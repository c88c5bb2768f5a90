/**
 * Plans are rmplan YAML: a `goal`, `details`, and `tasks[]` of `title`, `description`, `files[]` and
 * `steps[]` of `prompt` + `done`. The coding agent is asked for the plan as JSON (easier to validate
 * and to re-ask for), and rmapp renders it as YAML: the form people read in comments and PRs, that is
 * committed on the run's branch under `tasks/`, and that rmplan itself can pick up and continue.
 */
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { ValidationError } from '../state_machine/errors.ts';

/**
 * One step of a task: the prompt an agent would be given for it. `done` defaults to `false` so an
 * agent that leaves it out is not sent back for a field it cannot get wrong.
 */
export const planStepSchema = z.object({
  prompt: z.string().trim().min(1),
  done: z.boolean().default(false),
});

/** One task of a plan; at least one step, since a task without steps gives the implementer nothing. */
export const planTaskSchema = z.object({
  title: z.string().trim().min(1),
  description: z.string().default(''),
  files: z.array(z.string().trim().min(1)).default([]),
  steps: z.array(planStepSchema).min(1),
});

/**
 * The rmplan plan. Unknown keys are dropped rather than refused: an agent that adds a field should
 * not cost a corrective re-ask.
 *
 * @example
 * const plan = planSchema.parse({ goal: 'Add --json', tasks: [{ title: 'CLI flag', steps: [{ prompt: 'Add the flag' }] }] });
 */
export const planSchema = z.object({
  goal: z.string().trim().min(1),
  details: z.string().default(''),
  tasks: z.array(planTaskSchema).min(1),
});

/** A validated plan (defaults filled in). */
export type Plan = z.output<typeof planSchema>;

/** Where the plan of an issue is committed on the run's branch. */
export function planPath(issueNumber: number): string {
  return `tasks/issue-${issueNumber}.yml`;
}

/**
 * The plan as rmplan YAML. Validates first, so a file rmapp writes always parses back.
 *
 * @example
 * writeFileSync(planPath(7), renderPlanYaml(plan));
 */
export function renderPlanYaml(plan: z.input<typeof planSchema>): string {
  // lineWidth 0: long prompts stay on one line instead of being folded mid-sentence.
  return stringify(planSchema.parse(plan), { lineWidth: 0 });
}

/**
 * Parses and validates rmplan YAML; a {@link ValidationError} names each problem by path, so a
 * hand-edited plan file that went wrong says where.
 */
export function parsePlanYaml(text: string): Plan {
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    throw new ValidationError(`The plan is not valid YAML: ${(err as Error).message}`, [{ path: '', message: 'invalid YAML' }]);
  }
  const result = planSchema.safeParse(data);
  if (!result.success) {
    const issues = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new ValidationError(
      `The plan does not match the rmplan schema: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  return result.data;
}

/**
 * The YAML in a fenced ```yaml block for Markdown (comments, PR bodies, prompts). The fence grows if
 * the text itself holds a fence, so an odd plan cannot break out of its block.
 */
export function yamlBlock(yaml: string): string {
  let fence = '```';
  while (yaml.includes(fence)) fence += '`';
  return `${fence}yaml\n${yaml.trimEnd()}\n${fence}`;
}
