/**
 * The issue templates by the names users give them (`@rmapp implement bugfix`, a label, `rmapp run
 * bugfix`), each with the workflow that implements it. The one table of them: the configuration's label
 * schema, the comment command parser, the CLI and the executor all read it. It imports nothing, so the
 * CLI can check a template name without loading the workflows.
 */

/**
 * Template name → workflow name. The workflows themselves are `ISSUE_TEMPLATES` in
 * `issue-implementation.ts`, keyed by these workflow names.
 *
 * @example
 * engine.start(TEMPLATE_WORKFLOWS.bugfix, input); // 'BugFix'
 */
export const TEMPLATE_WORKFLOWS = {
  /** simple issue: plan, implement, test (looping back on failure), PR. */
  simple: 'IssueImplementation',
  /** complex feature: the plan waits for `approve`. */
  feature: 'ComplexFeature',
  /** bug fix: a failing test that reproduces the bug first. */
  bugfix: 'BugFix',
  /** documentation update: no test step. */
  docs: 'DocsUpdate',
} as const;

/** A template's name as users give it. */
export type TemplateName = keyof typeof TEMPLATE_WORKFLOWS;
/** The name of a template's workflow. */
export type IssueWorkflowName = (typeof TEMPLATE_WORKFLOWS)[TemplateName];

/**
 * The template names, in the order help texts list them (a non-empty tuple, as `z.enum` wants).
 *
 * @example
 * `use one of ${TEMPLATE_NAMES.join(', ')}` // 'use one of simple, feature, bugfix, docs'
 */
export const TEMPLATE_NAMES = Object.keys(TEMPLATE_WORKFLOWS) as [TemplateName, ...TemplateName[]];

/**
 * Other words a comment may use for a template (`@rmapp implement fix`); each template's own name is
 * accepted too.
 *
 * @example
 * TEMPLATE_ALIASES.fix; // 'bugfix'
 */
export const TEMPLATE_ALIASES: Readonly<Record<string, TemplateName>> = {
  complex: 'feature',
  bug: 'bugfix',
  fix: 'bugfix',
  documentation: 'docs',
};

/**
 * The template a word names (its own name or an alias, any case), or null.
 *
 * @example
 * templateNamed('Bug'); // 'bugfix'
 */
export function templateNamed(word: string): TemplateName | null {
  const w = word.toLowerCase();
  if ((TEMPLATE_NAMES as readonly string[]).includes(w)) return w as TemplateName;
  return Object.hasOwn(TEMPLATE_ALIASES, w) ? (TEMPLATE_ALIASES[w] as TemplateName) : null;
}
