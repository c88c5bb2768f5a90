/**
 * The query of `GET /api/runs` as the engine's list filter: `status`, `workflow`, `limit`,
 * `createdAfter`, `inputContains`, `idPrefix` and `parentRunId`. A client's mistake is a 400 naming the parameter and the form it
 * takes ({@link ClientError}), never a filter that quietly matches nothing or a database error.
 */
import { RUN_STATUSES, type RunStatus } from '../../persistence/run-status.ts';
import type { ListRunsFilter } from '../../persistence/runs.ts';
import { inexactNumber, inexactNumberMessage } from '../json-numbers.ts';
import { HTTP_FILTERS, idPrefixProblem, parentRunIdProblem, quotedValue } from '../run-list-filters.ts';
import { ClientError } from './http-util.ts';

/** The most runs one answer lists; a larger `limit` lists this many. */
export const MAX_LISTED = 500;

/**
 * ISO 8601 as RFC 3339 writes it: a date, or a date and time with `Z` or an offset. A time without
 * either would be read in the server's own time zone: refused rather than guessed.
 */
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2})))?$/;

const INSTANT_FORM =
  'send an ISO 8601 instant such as ?createdAfter=2026-03-01T09:30:00Z (UTC; an offset is written %2B02:00 or -05:00, since a + in a query is a space), or a date such as 2026-03-01 (its midnight UTC)';

/**
 * The instant of `?createdAfter=`. JavaScript's own date parser is not used alone: it reads
 * `2026-02-30` as 2 March, and forms such as `March 7` in the server's time zone.
 *
 * @example
 * createdAfterParam('2026-03-01T09:30:00Z'); // Date 2026-03-01T09:30:00.000Z
 * createdAfterParam('2026-02-30'); // throws ClientError 400: … has no such day …
 */
export function createdAfterParam(text: string): Date {
  const m = INSTANT.exec(text);
  if (!m) {
    // `+02:00` sent unencoded arrives as ` 02:00`.
    const plus = /^\d{4}-\d{2}-\d{2}T[\d:.]+ \d{2}:\d{2}$/.test(text) ? ' (its + arrived as a space: write it %2B)' : '';
    throw new ClientError(400, `The createdAfter ${quotedValue(text)} is not a date or an instant${plus}: ${INSTANT_FORM}.`);
  }
  // Groups: year, month, day, hour, minute, second, the offset's hours and minutes (absent: 0).
  const part = (group: number) => Number(m[group] ?? 0);
  const [year, month, day] = [part(1), part(2), part(3)];
  const valid =
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysIn(year, month) &&
    part(4) <= 23 &&
    part(5) <= 59 &&
    part(6) <= 59 &&
    part(7) <= 23 &&
    part(8) <= 59 &&
    !Number.isNaN(Date.parse(text));
  if (!valid) throw new ClientError(400, `The createdAfter ${quotedValue(text)} has no such day or time: ${INSTANT_FORM}.`);
  return new Date(Date.parse(text));
}

/** Days in `month` (1–12) of `year`, by the Gregorian calendar ISO 8601 uses for every year. */
function daysIn(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] as number;
}

const CONTAINS_EXAMPLE = `?inputContains=${encodeURIComponent('{"issueNumber":12}')} (that is {"issueNumber":12}, URL-encoded)`;

/**
 * The object of `?inputContains=`: a JSON object, whose keys and values a run's input must hold
 * (nested objects alike; Postgres's jsonb `@>`).
 *
 * @example
 * inputContainsParam('{"owner":"acme","issueNumber":12}'); // { owner: 'acme', issueNumber: 12 }
 * inputContainsParam('[1]'); // throws ClientError 400: … is JSON but not an object …
 */
export function inputContainsParam(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ClientError(400, `The inputContains ${quotedValue(text)} is not JSON: send a JSON object, e.g. ${CONTAINS_EXAMPLE}.`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new ClientError(
      400,
      `The inputContains ${quotedValue(text)} is JSON but ${kind}, not an object: send the keys and values a run's input holds, e.g. ${CONTAINS_EXAMPLE}.`,
    );
  }
  const inexact = inexactNumber(text);
  if (inexact) throw new ClientError(400, inexactNumberMessage('The inputContains', inexact));
  return value as Record<string, unknown>;
}

/**
 * The text of `?idPrefix=`: the start of a run id, matched as it is (`%`, `_` and `\` are no
 * wildcards). Empty would list every run and longer than a run id can be would list none: either is a
 * mistake the client is told about, in the words `rmapp runs list --id-prefix` uses (src/rmapp/run-list-filters.ts).
 *
 * @example
 * idPrefixParam('019ad6b2'); // '019ad6b2'
 * idPrefixParam(''); // throws ClientError 400: The idPrefix is empty …
 */
export function idPrefixParam(text: string): string {
  const problem = idPrefixProblem(text, HTTP_FILTERS);
  if (problem) throw new ClientError(400, problem);
  return text;
}

/**
 * The run id of `?parentRunId=`: a whole run id (the runs it started are listed). A value that cannot be
 * a run id is refused with the rule it breaks, rather than listing no children (as `rmapp runs list --parent`).
 *
 * @example
 * parentRunIdParam('019ad6b2-6c1e-7a3c-9f0e-3b1d2c4e5f60'); // the same
 * parentRunIdParam('a b'); // throws ClientError 400: The parentRunId "a b" is not a run id …
 */
export function parentRunIdParam(text: string): string {
  const problem = parentRunIdProblem(text, HTTP_FILTERS);
  if (problem) throw new ClientError(400, problem);
  return text;
}

/**
 * The engine's list filter for the query of `GET /api/runs`; `query(name)` is the parameter's
 * decoded value or null.
 */
export function runListFilter(query: (name: string) => string | null): ListRunsFilter {
  const status = query('status');
  if (status && !RUN_STATUSES.includes(status as RunStatus))
    throw new ClientError(400, `Unknown status "${status}"; use one of ${RUN_STATUSES.join(', ')}.`);
  const limitText = query('limit');
  // `abc`, `-5`, `1.9` or `1e309` quietly became 100 or 500: a mistake the client is told about.
  if (limitText !== null && !/^[1-9][0-9]{0,8}$/.test(limitText))
    throw new ClientError(
      400,
      `The limit "${limitText}" is not a whole number of runs from 1 (at most ${MAX_LISTED} are listed): send e.g. ?limit=50.`,
    );
  const createdAfter = query('createdAfter');
  const inputContains = query('inputContains');
  const idPrefix = query('idPrefix');
  const parentRunId = query('parentRunId');
  return {
    status: (status as RunStatus) || undefined,
    workflow: query('workflow') || undefined,
    limit: limitText === null ? 100 : Math.min(MAX_LISTED, Number(limitText)),
    ...(createdAfter !== null ? { createdAfter: createdAfterParam(createdAfter) } : {}),
    ...(inputContains !== null ? { inputContains: inputContainsParam(inputContains) } : {}),
    ...(idPrefix !== null ? { idPrefix: idPrefixParam(idPrefix) } : {}),
    ...(parentRunId !== null ? { parentRunId: parentRunIdParam(parentRunId) } : {}),
  };
}
