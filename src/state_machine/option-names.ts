/**
 * `createEngine`'s options by name, so that one it does not know — a typo such as `leaseMS`, or an
 * option of another engine — is refused with the nearest known name rather than ignored: from
 * JavaScript nothing else would say that `{ leaseMS: 5000 }` left the lease at its default. The
 * options of `engine.start`, `send` and `waitFor`, and `list`'s filter, likewise
 * ({@link refuseUnknownCallOptions}).
 */
import type { HistoryBound, RetentionPolicy } from '../persistence/retention.ts';
import { didYouMean } from './did-you-mean.ts';
import type { EngineOptions } from './engine-options.ts';
import { ValidationError } from './errors.ts';
import type { Limits } from './limits.ts';
import type { ListRunsFilter } from '../persistence/runs.ts';
import type { SendOptions, StartOptions } from './request-checks.ts';

/** Every option, each listed once: the type makes adding one to {@link EngineOptions} without naming it here an error. */
const ENGINE_OPTIONS: Record<keyof EngineOptions, true> = {
  database: true,
  workflows: true,
  previousVersions: true,
  workerId: true,
  concurrency: true,
  leaseMs: true,
  pollMs: true,
  evictAfterMs: true,
  retryPolicies: true,
  migrate: true,
  clock: true,
  limits: true,
  history: true,
  retention: true,
  inspect: true,
  stepConcurrency: true,
  logger: true,
};
const LIMITS: Record<keyof Limits, true> = {
  snapshotBytes: true,
  stepOutputBytes: true,
  stepOutputInlineBytes: true,
  signalBytes: true,
  artifactBytes: true,
};
const HISTORY: Record<keyof HistoryBound, true> = { maxRows: true, keepLast: true };
const RETENTION: Record<keyof NonNullable<EngineOptions['retention']>, true> = { policy: true, intervalMs: true };
const RETENTION_POLICY: Record<keyof RetentionPolicy, true> = { succeededMs: true, failedMs: true, cancelledMs: true };

/** Throws a {@link ValidationError} naming the first option of `options` (at any depth) that `createEngine` does not know. */
export function refuseUnknownOptions(options: EngineOptions): void {
  check('', options, ENGINE_OPTIONS);
  check('limits.', options.limits, LIMITS);
  check('history.', options.history, HISTORY);
  check('retention.', options.retention, RETENTION);
  check('retention.policy.', options.retention?.policy, RETENTION_POLICY);
}

function check(prefix: string, given: object | null | undefined, known: Record<string, true>): void {
  if (given === null || typeof given !== 'object') return;
  const name = firstUnknown(given, known);
  if (name === undefined) return;
  const names = Object.keys(known);
  const shown = `${prefix}${name.slice(0, 80)}`;
  const near = didYouMean(name, names);
  throw new ValidationError(
    `createEngine: unknown option ${JSON.stringify(shown)}${near ? ` (did you mean ${JSON.stringify(`${prefix}${near}`)}?)` : ''}. Known${prefix ? ` ${prefix.slice(0, -1)}` : ''} options: ${names.join(', ')}.`,
    [{ path: shown, message: 'unknown option' }],
  );
}

/** The first own key of `given` that `known` does not list, if any. */
function firstUnknown(given: object, known: Record<string, true>): string | undefined {
  for (const name of Object.keys(given)) if (!Object.hasOwn(known, name)) return name;
  return undefined;
}

/** The calls whose options (or filter) are checked by name, and the names each knows. */
const START_OPTIONS: Record<keyof StartOptions, true> = {
  runId: true,
  idempotencyKey: true,
  parentRunId: true,
  timeoutMs: true,
  concurrencyKey: true,
};
const SEND_OPTIONS: Record<keyof SendOptions, true> = { dedupeKey: true, buffer: true, waitMs: true };
const WAIT_OPTIONS: Record<'timeoutMs' | 'pollMs', true> = { timeoutMs: true, pollMs: true };
const LIST_FILTER: Record<keyof ListRunsFilter, true> = {
  status: true,
  workflow: true,
  parentRunId: true,
  idPrefix: true,
  createdAfter: true,
  inputContains: true,
  limit: true,
};

const CALLS = {
  start: { known: START_OPTIONS, what: 'option', aliases: { dedupeKey: 'idempotencyKey', id: 'runId', workflowId: 'runId' } },
  // The HTTP API takes a send's key as the Idempotency-Key header: the likeliest wrong name of `dedupeKey`.
  send: { known: SEND_OPTIONS, what: 'option', aliases: { idempotencyKey: 'dedupeKey' } },
  waitFor: { known: WAIT_OPTIONS, what: 'option', aliases: { timeout: 'timeoutMs' } },
  list: { known: LIST_FILTER, what: 'filter', aliases: { parent: 'parentRunId', statuses: 'status' } },
} as const;

/**
 * Refuses what a call of the engine cannot take as its options (or `list`'s filter): anything but an
 * object (or `undefined`), and a name the call does not know. From JavaScript, an unknown name was
 * ignored: `engine.start(…, { idempotencyKye })` started a new run on every retry of the call, and
 * `engine.send(…, { idempotencyKey })` — the HTTP API's header name for a send's `dedupeKey` —
 * delivered the event again on each retry (an approval, a payment applied twice), with no word.
 *
 * @example
 * refuseUnknownCallOptions('send', { idempotencyKey: 'a-1' }); // throws: … (did you mean "dedupeKey"?) …
 */
export function refuseUnknownCallOptions(call: keyof typeof CALLS, given: unknown): void {
  const { known, what, aliases } = CALLS[call];
  if (given === undefined) return;
  if (given === null || typeof given !== 'object' || Array.isArray(given)) {
    throw new ValidationError(
      `${call}: the ${what === 'filter' ? 'filter' : 'options'} must be an object or left out (got ${given === null ? 'null' : Array.isArray(given) ? 'an array' : typeof given}).`,
      [{ path: what === 'filter' ? 'filter' : 'options', message: 'not an object' }],
    );
  }
  // Every start and waitFor passes through here: the names are listed only on the way to a refusal.
  const name = firstUnknown(given, known);
  if (name === undefined) return;
  const names = Object.keys(known);
  const near = (Object.hasOwn(aliases, name) ? (aliases as Record<string, string>)[name] : undefined) ?? didYouMean(name, names);
  const shown = JSON.stringify(name.slice(0, 80));
  throw new ValidationError(
    `${call}: unknown ${what} ${shown}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}; it would have been ignored. Known ${what}s: ${names.join(', ')}.`,
    [{ path: name.slice(0, 80), message: `unknown ${what}` }],
  );
}
