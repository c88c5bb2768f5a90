/**
 * What `engine.start` and `engine.send` refuse before they touch the database, with a message that
 * names the fix: input the workflow's schema rejects or JSON would change, empty or undurable keys, a
 * malformed run id, a bad timeout, a concurrency key for a workflow without a limit; an event that is
 * not one, reserved, undurable or over `limits.signalBytes`, bad `buffer` or `waitMs` options.
 *
 * Separate from engine.ts because these are pure checks of a call's arguments (no database, no
 * worker): the engine does the storing and the delivering.
 */
import { z } from 'zod';
import type { AnyWorkflowDefinition } from './definition.ts';
import { findUndurableValue, findUnstorableText } from './durable-check.ts';
import { ConcurrencyKeyError, ValidationError } from './errors.ts';
import { storedConcurrencyKey } from './concurrency-key.ts';
import { dueNever } from './clock.ts';
import { jsonBytes, SizeLimitError, type Limits } from './limits.ts';

/** Options of `engine.send`. */
export interface SendOptions {
  /** Sending again with a key already used for this run sends nothing (unless that signal was ignored). */
  dedupeKey?: string | undefined;
  /**
   * Keep the event until a state accepts it (default 24 h, or `forMs`), instead of ignoring it. Default:
   * the workflow's `signals.buffer` (see `defineWorkflow`); `false` ignores it even when that is set.
   */
  buffer?: boolean | { forMs: number } | undefined;
  /** Wait up to this long for the run to take the event, and report what became of it. */
  waitMs?: number | undefined;
}

/** Options of `engine.start`. */
export interface StartOptions {
  runId?: string | undefined;
  /** Starting twice with the same key returns the first run. */
  idempotencyKey?: string | undefined;
  parentRunId?: string | undefined;
  /** Per-run timeout (overrides the definition's): past it the run fails with category `timeout`. */
  timeoutMs?: number | undefined;
  /** Concurrency key (overrides the definition's `concurrency.key`); needs `concurrency` on the definition. */
  concurrencyKey?: string | undefined;
}

/**
 * The most UTF-8 bytes of a key rmapp stores in an index (idempotency, concurrency and dedupe keys,
 * artifact names). Postgres refuses a btree entry over ~2.7 kB ("index row requires … bytes"), which
 * reached a library caller as a raw database error and an HTTP client as a 500.
 */
export const MAX_KEY_BYTES = 1000;

/** The most UTF-8 bytes of a cancellation reason (stored as the run's error message). */
export const MAX_REASON_BYTES = 4000;

function describeValue(value: unknown): string {
  return typeof value === 'string' ? `a string of ${value.length} characters` : value === null ? 'null' : typeof value;
}

/**
 * Checks text rmapp stores: a string (non-empty unless `allowEmpty`), with no NUL or lone surrogate
 * (Postgres refuses the one and stores the other as U+FFFD, so two names became one), at most
 * `maxBytes` of UTF-8. Throws a {@link ValidationError} naming `what` and the fix.
 */
export function checkText(what: string, value: unknown, maxBytes: number, allowEmpty = false, prefix = ''): string {
  if (typeof value !== 'string' || (value === '' && !allowEmpty)) {
    const rule = allowEmpty ? 'a string' : 'a non-empty string';
    throw new ValidationError(`${prefix}${what} must be ${rule} (got ${describeValue(value)}).`, [
      { path: what, message: `must be ${rule}` },
    ]);
  }
  const bad = findUnstorableText(value, what);
  if (bad) throw new ValidationError(`${prefix}${what} ${bad.problem}.`, [{ path: what, message: bad.problem }]);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > maxBytes) {
    const message = `is ${bytes} bytes of UTF-8; at most ${maxBytes}`;
    throw new ValidationError(`${prefix}${what} ${message}: use a shorter one (a hash of a long key, for instance).`, [
      { path: what, message },
    ]);
  }
  return value;
}

/** The longest run id. */
export const MAX_RUN_ID_LENGTH = 200;

const runIdSchema = z
  .string()
  .min(1)
  .max(MAX_RUN_ID_LENGTH)
  .regex(/^[\w.:@/-]+$/, 'use letters, digits and . _ : @ / -')
  // Ids name files and URLs (a run's workspace, the dashboard's links): no `.` or `..` between slashes.
  .refine((id) => !id.split('/').some((part) => /^\.+$/.test(part)), 'no part between slashes may be only dots ("." or "..")');

/**
 * Why `id` cannot be a run id (the rule every start checks: 1 to 200 of letters, digits and `. _ : @ / -`,
 * no part between slashes only dots), or null when it can: a filter by a malformed id is a mistake to
 * name, not a list that is always empty.
 *
 * @example
 * runIdProblem('019ad6b2-6c1e-7a3c-9f0e-3b1d2c4e5f60'); // null
 * runIdProblem('a b'); // 'use letters, digits and . _ : @ / -'
 */
export function runIdProblem(id: string): string | null {
  const checked = runIdSchema.safeParse(id);
  return checked.success ? null : (checked.error.issues[0]?.message ?? 'not a run id');
}

/** A start that passed {@link checkStart}: what the run is stored with. */
export interface CheckedStart {
  /** The input as the workflow's schema parsed it. */
  input: unknown;
  timeoutMs: number | undefined;
  /** The concurrency key the run is admitted under, and its limit; null without a limit. */
  concurrency: { key: string; limit: number } | null;
}

/**
 * The key `keyOf` gives for a run's input. One that throws (a field it reads missing, a bug) is a
 * {@link ConcurrencyKeyError} naming the workflow, with what it threw as the cause: it reached the
 * caller of `engine.start` as that error alone, which named neither the workflow nor the key function.
 */
function callKeyFunction(workflow: string, keyOf: ((input: never) => unknown) | undefined, input: unknown): unknown {
  if (!keyOf) return undefined;
  try {
    return keyOf(input as never);
  } catch (err) {
    throw new ConcurrencyKeyError(workflow, err);
  }
}

/**
 * Checks a start of `def` and resolves its timeout and concurrency key (in its stored form,
 * concurrency-key.ts); throws a {@link ValidationError} naming the field, or a
 * {@link ConcurrencyKeyError} when the workflow's key function throws.
 *
 * @example
 * const { input, timeoutMs, concurrency } = checkStart(def, { id: 'A-1' }, { idempotencyKey: 'A-1' });
 */
export function checkStart(def: AnyWorkflowDefinition, input: unknown, options: StartOptions, limits?: Limits): CheckedStart {
  const name = def.name;
  const parsed = def.input.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(input)', message: i.message }));
    throw new ValidationError(`Invalid input for workflow "${name}": ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}.`, issues);
  }
  // Stored as JSON: a value JSON would change (a Date a z.date() schema produced, a Map) is refused
  // here rather than reaching the machine as something else.
  const bad = findUndurableValue(parsed.data, 'input');
  if (bad)
    throw new ValidationError(`Invalid input for workflow "${name}": ${bad.path} ${bad.problem}.`, [
      { path: bad.path, message: bad.problem },
    ]);
  // Stored twice in the run's snapshot (its input and, usually, the context made from it): one over the
  // snapshot's limit fails the run at its first write, after the start said it was stored.
  const inputBytes = jsonBytes(JSON.stringify(parsed.data ?? null));
  if (limits && inputBytes > limits.snapshotBytes) {
    throw new SizeLimitError(
      `The input of workflow "${name}"`,
      'snapshotBytes',
      inputBytes,
      limits.snapshotBytes,
      'Pass a reference (e.g. an artifact name or a URL) instead of the data.',
    );
  }
  if (options.idempotencyKey !== undefined)
    checkText('idempotencyKey', options.idempotencyKey, MAX_KEY_BYTES, false, 'Invalid idempotencyKey: ');
  if (options.concurrencyKey !== undefined)
    checkText('concurrencyKey', options.concurrencyKey, MAX_KEY_BYTES, false, 'Invalid concurrencyKey: ');
  for (const [field, id] of [
    ['runId', options.runId],
    ['parentRunId', options.parentRunId],
  ] as const) {
    if (id === undefined) continue;
    const ok = runIdSchema.safeParse(id);
    if (!ok.success)
      throw new ValidationError(`Invalid ${field} ${JSON.stringify(String(id).slice(0, 80))}: ${ok.error.issues[0]?.message}.`);
  }
  if (options.parentRunId !== undefined && options.parentRunId === options.runId) {
    throw new ValidationError(`Invalid parentRunId: a run cannot be its own parent (${options.runId}).`);
  }
  const timeoutMs = options.timeoutMs ?? def.timeoutMs;
  // Stored as the run's deadline: it must be a date Postgres reads back (by 9999-12-31).
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0 && !dueNever(Date.now(), timeoutMs))) {
    throw new ValidationError(`timeoutMs must be a positive number of milliseconds ending by 9999-12-31 (got ${String(timeoutMs)}).`);
  }
  let concurrency: { key: string; limit: number } | null = null;
  if (def.concurrency) {
    const { limit, scope = 'workflow' } = def.concurrency;
    const keyOf = def.concurrency.key;
    // Without a key (neither the call's nor a key function), one limit holds the whole workflow.
    if (options.concurrencyKey === undefined && !keyOf) concurrency = { key: storedConcurrencyKey(name, null, 'workflow'), limit };
    else {
      let key: unknown = options.concurrencyKey ?? callKeyFunction(name, keyOf, parsed.data);
      if (typeof key === 'number' && Number.isFinite(key)) key = String(key);
      // null or undefined: the run has no key, and no limit. Anything else must be a key: an object's would
      // be "[object Object]" for every run (all of them queued behind one another), and an empty string,
      // NaN or false — an input field left empty, `Number('x')` — ran the run beside its key's runs with no
      // limit at all, so an input could opt out of the limit meant for it.
      if (key !== null && key !== undefined && (typeof key !== 'string' || key === '')) {
        throw new ValidationError(
          `concurrency.key of workflow "${name}" returned ${key === '' ? 'an empty string' : typeof key === 'number' ? String(key) : describeValue(key)}: it must return a non-empty string or a finite number (null or undefined for a run that no limit holds).`,
          [{ path: 'concurrency.key', message: 'not a key' }],
        );
      }
      if (typeof key === 'string') {
        // The caller's key is what the limit counts (stored with its scope, concurrency-key.ts).
        checkText('The concurrency key', key, MAX_KEY_BYTES);
        concurrency = { key: storedConcurrencyKey(name, key, scope === 'global' ? 'global' : 'workflow'), limit };
      }
    }
  } else if (options.concurrencyKey) {
    throw new ValidationError(`Workflow "${name}" has no concurrency limit: define one with defineWorkflow({ concurrency: { limit } }).`);
  }
  return { input: parsed.data, timeoutMs, concurrency };
}

/**
 * XState's one event of its own that a caller sends: `{ type: 'xstate.route', to: '#id' }` takes the
 * machine to a state declared with `route` (xstate 5.33). Every other `xstate.` event (done, error,
 * init, `after` timers) comes from the actors themselves; refusing this one too left a machine's routes
 * unreachable under rmapp (docs/xstate-semantics.md, "Events").
 */
const ROUTE_EVENT = 'xstate.route';

/**
 * Checks an event and the options of its send; throws a {@link ValidationError} (or a
 * {@link SizeLimitError}) naming the fix.
 *
 * @example
 * checkSend({ type: 'approve' }, { buffer: { forMs: 60_000 } }, engine.limits);
 */
export function checkSend(event: { type: string }, options: SendOptions, limits: Limits): void {
  if (!event || typeof event !== 'object' || typeof event.type !== 'string' || event.type === '') {
    throw new ValidationError('An event must be an object with a non-empty string "type", e.g. {"type":"approve"}.');
  }
  if ((event.type.startsWith('xstate.') && event.type !== ROUTE_EVENT) || event.type.startsWith('rmapp.')) {
    throw new ValidationError(
      `Event type "${event.type}" is reserved: "xstate." and "rmapp." events come from the engine (except "${ROUTE_EVENT}", a state's \`route\`).`,
    );
  }
  // Events reach the machine through the inbox, as JSON: refuse what would not come back the same.
  const bad = findUndurableValue(event, 'event');
  if (bad) throw new ValidationError(`${bad.path} ${bad.problem}.`);
  const json = JSON.stringify(event);
  // A type JSON does not write (not an own enumerable property, or a toJSON that drops it) reached the
  // machine as an event without one, and failed the run.
  if ((JSON.parse(json) as { type?: unknown } | null)?.type !== event.type) {
    throw new ValidationError(
      `The event's "type" must be an own, enumerable property that JSON writes (got an event written as ${json.slice(0, 80)}).`,
    );
  }
  if (options.dedupeKey !== undefined) {
    checkText('dedupeKey', options.dedupeKey, MAX_KEY_BYTES);
    // The engine's own signals (a cancellation is "rmapp.cancel") are deduplicated under these keys: a
    // user's event held under one made every later cancellation a duplicate, reported as requested.
    if (options.dedupeKey.startsWith('rmapp.')) {
      throw new ValidationError(`dedupeKey "${options.dedupeKey.slice(0, 80)}" is reserved: keys starting with "rmapp." are the engine's.`);
    }
  }
  const bytes = jsonBytes(json);
  if (bytes > limits.signalBytes) {
    throw new SizeLimitError(
      `The event "${event.type}"`,
      'signalBytes',
      bytes,
      limits.signalBytes,
      'Send a reference (e.g. an artifact name) instead of the data.',
    );
  }
  const buffer = options.buffer;
  if (
    buffer !== undefined &&
    typeof buffer !== 'boolean' &&
    !(buffer && typeof buffer === 'object' && Number.isFinite(buffer.forMs) && buffer.forMs > 0 && !dueNever(Date.now(), buffer.forMs))
  ) {
    throw new ValidationError(
      `send: buffer.forMs must be a positive number of milliseconds ending by 9999-12-31 (got ${String((buffer as { forMs?: unknown } | null)?.forMs)}).`,
    );
  }
  if (options.waitMs !== undefined && !(Number.isFinite(options.waitMs) && options.waitMs >= 0)) {
    throw new ValidationError(`send: waitMs must be a number of milliseconds >= 0 (got ${String(options.waitMs)}).`);
  }
}
