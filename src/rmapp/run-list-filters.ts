/**
 * The checks of the run-list filters that name runs by id — `idPrefix` (the start of a run id) and
 * `parentRunId` (a whole run id) — shared by `GET /api/runs` (src/rmapp/server/run-list-query.ts) and
 * `rmapp runs list --id-prefix / --parent` (src/rmapp/cli/main.ts): one rule and one message, spelled as
 * each surface names its filter, so that a mistake reads the same in the dashboard's API and in a
 * terminal, and neither lists nothing where the caller made a mistake.
 */
import { storableText } from '../state_machine/errors.ts';
import { MAX_RUN_ID_LENGTH, runIdProblem } from '../state_machine/request-checks.ts';

/** How a surface names the filters and asks for a value: a query parameter, or a command-line option. */
export interface FilterSpelling {
  /** The id prefix filter's name: `idPrefix`, `--id-prefix`. */
  idPrefix: string;
  /** The parent run filter's name: `parentRunId`, `--parent`. */
  parentRunId: string;
  /** The filter `name` with `value`, as a caller writes it: `?idPrefix=019ad6b2`, `--id-prefix 019ad6b2`. */
  written(name: string, value: string): string;
  /** What the caller does with a value: a client sends one, a user gives one. */
  verb: 'send' | 'give';
  /** Where the caller sees run ids. */
  shownIn: string;
}

/** The filters as `GET /api/runs` names them (its query parameters). */
export const HTTP_FILTERS: FilterSpelling = {
  idPrefix: 'idPrefix',
  parentRunId: 'parentRunId',
  written: (name, value) => `?${name}=${value}`,
  verb: 'send',
  shownIn: 'the dashboard',
};

/** The filters as `rmapp runs list` names them (its options). */
export const CLI_FILTERS: FilterSpelling = {
  idPrefix: '--id-prefix',
  parentRunId: '--parent',
  written: (name, value) => `${name} ${value}`.trimEnd(),
  verb: 'give',
  shownIn: '`rmapp runs list`',
};

/** A value as an error message quotes it: as JSON (control characters and lone surrogates escaped), whole if short, else its start. */
export const quotedValue = (text: string): string => JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text);

/** A run id's example, the shape `rmapp` gives ids (UUIDv7). */
const EXAMPLE_RUN_ID = '019ad6b2-6c1e-7a3c-9f0e-3b1d2c4e5f60';

/**
 * Why `text` cannot be an id prefix filter, as the message to show (naming the filter as `spelling` does
 * and the fix), or null when it can. The prefix is matched as it is: `%`, `_` and `\` are no wildcards
 * (src/persistence/id-prefix.ts), so they are no mistake. Empty would list every run and longer than a
 * run id can be would list none; a NUL byte or a lone UTF-16 surrogate is text no database holds.
 *
 * @example
 * idPrefixProblem('019ad6b2', HTTP_FILTERS); // null
 * idPrefixProblem('', CLI_FILTERS); // 'The --id-prefix is empty: give the first characters of a run id, e.g. …'
 */
export function idPrefixProblem(text: string, spelling: FilterSpelling): string | null {
  const name = spelling.idPrefix;
  const how = `${spelling.verb} the first characters of a run id, e.g. ${spelling.written(name, '019ad6b2')} (the start of a run id as ${spelling.shownIn} shows it)`;
  if (text === '') return `The ${name} is empty: ${how}.`;
  if (text.includes('\0')) return `The ${name} ${quotedValue(text)} contains a NUL byte, which no run id holds: ${how}.`;
  if (storableText(text) !== text) return `The ${name} ${quotedValue(text)} contains a lone UTF-16 surrogate, which is not text: ${how}.`;
  if (text.length > MAX_RUN_ID_LENGTH)
    return `The ${name} ${quotedValue(text)} is ${text.length} characters, longer than any run id (at most ${MAX_RUN_ID_LENGTH}): ${spelling.verb} the first characters of one, e.g. ${spelling.written(name, '019ad6b2')} (the start of a run id as ${spelling.shownIn} shows it).`;
  return null;
}

/**
 * Why `text` cannot be a parent run filter (a whole run id, by the rule every start checks), as the
 * message to show, or null when it can: a filter by a malformed id is a mistake to name, not a list that
 * is always empty.
 *
 * @example
 * parentRunIdProblem('a b', CLI_FILTERS); // 'The --parent "a b" is not a run id (use letters, digits and . _ : @ / -): give a whole run id, …'
 */
export function parentRunIdProblem(text: string, spelling: FilterSpelling): string | null {
  const problem = runIdProblem(text);
  if (!problem) return null;
  const name = spelling.parentRunId;
  return `The ${name} ${quotedValue(text)} is not a run id (${problem}): ${spelling.verb} a whole run id, e.g. ${spelling.written(name, EXAMPLE_RUN_ID)}; to find runs by the start of their id, ${spelling.verb} ${spelling.written(spelling.idPrefix, '')} instead.`;
}
