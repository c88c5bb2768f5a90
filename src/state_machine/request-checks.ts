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
import { findUndurableValue } from './durable-check.ts';
import { ValidationError } from './errors.ts';
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

const runIdSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\w.:@/-]+$/, 'use letters, digits and . _ : @ / -');

/** A start that passed {@link checkStart}: what the run is stored with. */
export interface CheckedStart {
  /** The input as the workflow's schema parsed it. */
  input: unknown;
  timeoutMs: number | undefined;
  /** The concurrency key the run is admitted under, and its limit; null without a limit. */
  concurrency: { key: string; limit: number } | null;
}

/**
 * Checks a start of `def` and resolves its timeout and concurrency key; throws a
 * {@link ValidationError} naming the field.
 *
 * @example
 * const { input, timeoutMs, concurrency } = checkStart(def, { id: 'A-1' }, { idempotencyKey: 'A-1' });
 */
export function checkStart(def: AnyWorkflowDefinition, input: unknown, options: StartOptions): CheckedStart {
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
  for (const [key, value] of [
    ['idempotencyKey', options.idempotencyKey],
    ['concurrencyKey', options.concurrencyKey],
  ] as const) {
    if (value === undefined) continue;
    const problem =
      typeof value !== 'string' || value === '' ? { path: key, problem: 'must be a non-empty string' } : findUndurableValue(value, key);
    if (problem)
      throw new ValidationError(`Invalid ${key}: ${problem.path} ${problem.problem}.`, [{ path: problem.path, message: problem.problem }]);
  }
  if (options.runId !== undefined) {
    const ok = runIdSchema.safeParse(options.runId);
    if (!ok.success) throw new ValidationError(`Invalid runId "${options.runId}": ${ok.error.issues[0]?.message}.`);
  }
  const timeoutMs = options.timeoutMs ?? def.timeoutMs;
  // Stored as the run's deadline: it must be a date Postgres reads back (by 9999-12-31).
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0 && !dueNever(Date.now(), timeoutMs))) {
    throw new ValidationError(`timeoutMs must be a positive number of milliseconds ending by 9999-12-31 (got ${String(timeoutMs)}).`);
  }
  let concurrency: { key: string; limit: number } | null = null;
  if (def.concurrency) {
    const key = options.concurrencyKey ?? (def.concurrency.key ? def.concurrency.key(parsed.data) : def.name);
    const scoped = def.concurrency.scope === 'global' && key ? key : `${def.name}:${key}`;
    if (key) concurrency = { key: options.concurrencyKey || def.concurrency.key ? scoped : def.name, limit: def.concurrency.limit };
  } else if (options.concurrencyKey) {
    throw new ValidationError(`Workflow "${name}" has no concurrency limit: define one with defineWorkflow({ concurrency: { limit } }).`);
  }
  return { input: parsed.data, timeoutMs, concurrency };
}

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
  if (event.type.startsWith('xstate.') || event.type.startsWith('rmapp.')) {
    throw new ValidationError(`Event type "${event.type}" is reserved: "xstate." and "rmapp." events come from the engine.`);
  }
  // Events reach the machine through the inbox, as JSON: refuse what would not come back the same.
  const bad = findUndurableValue(event, 'event');
  if (bad) throw new ValidationError(`${bad.path} ${bad.problem}.`);
  const bytes = jsonBytes(JSON.stringify(event));
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
