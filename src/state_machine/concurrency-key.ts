/**
 * How a run's concurrency key is stored (`rmapp_runs.concurrency_key`, the text every admission counts
 * by) and shown. The stored text says the key's scope first, so that a key of one scope is never equal to
 * a key of the other, whatever the workflow's name or the key contain:
 *
 * - `g:<key>`: a `scope: 'global'` key, shared by every workflow that uses it;
 * - `w:<workflow>:<key>`: a key of one workflow (the default scope);
 * - `w:<workflow>`: a workflow's own limit, without a key function.
 *
 * The workflow's name has its `%` and `:` escaped (`%25`, `%3A`), so the first `:` after it ends it. The
 * form before (migration 0023 rewrote it) was `<workflow>:<key>`, `<workflow>` and a global key as it
 * was: a global key `Deploy:prod` was workflow `Deploy`'s key `prod`, and the two shared one limit.
 */

/** Which runs share a key: those of one workflow, or those of every workflow with a global key. */
export type ConcurrencyScope = 'workflow' | 'global';

const GLOBAL = 'g:';
const WORKFLOW = 'w:';

function escapeName(name: string): string {
  return name.replace(/%/g, '%25').replace(/:/g, '%3A');
}

function unescapeName(escaped: string): string {
  return escaped.replace(/%3A/g, ':').replace(/%25/g, '%');
}

/**
 * The stored form of a run's concurrency key: `key` of `scope`, or, with a null key, the per-workflow
 * limit of `workflow`.
 *
 * @example
 * storedConcurrencyKey('Deploy', 'prod', 'workflow'); // 'w:Deploy:prod'
 * storedConcurrencyKey('Deploy', 'Deploy:prod', 'global'); // 'g:Deploy:prod'
 * storedConcurrencyKey('Deploy', null, 'workflow'); // 'w:Deploy'
 */
export function storedConcurrencyKey(workflow: string, key: string | null, scope: ConcurrencyScope): string {
  if (key === null) return `${WORKFLOW}${escapeName(workflow)}`;
  return scope === 'global' ? `${GLOBAL}${key}` : `${WORKFLOW}${escapeName(workflow)}:${key}`;
}

/**
 * A stored concurrency key as people read it: a global key as its workflow gave it (`issue:o/r#7`), a
 * workflow's key after the workflow's name (`Deploy:prod`, as rmapp always showed it), a per-workflow
 * limit as the workflow's name. Text in no stored form (a finished run's key from before migration 0023,
 * which nothing counts any more) is shown as it is.
 *
 * @example
 * shownConcurrencyKey('g:issue:o/r#7'); // { key: 'issue:o/r#7', scope: 'global' }
 * shownConcurrencyKey('w:Deploy:prod'); // { key: 'Deploy:prod', scope: 'workflow' }
 */
export function shownConcurrencyKey(stored: string): { key: string; scope: ConcurrencyScope } {
  if (stored.startsWith(GLOBAL)) return { key: stored.slice(GLOBAL.length), scope: 'global' };
  if (!stored.startsWith(WORKFLOW)) return { key: stored, scope: 'workflow' };
  const rest = stored.slice(WORKFLOW.length);
  const colon = rest.indexOf(':');
  if (colon < 0) return { key: unescapeName(rest), scope: 'workflow' };
  return { key: `${unescapeName(rest.slice(0, colon))}:${rest.slice(colon + 1)}`, scope: 'workflow' };
}
