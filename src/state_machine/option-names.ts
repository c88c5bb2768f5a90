/**
 * `createEngine`'s options by name, so that one it does not know — a typo such as `leaseMS`, or an
 * option of another engine — is refused with the nearest known name rather than ignored: from
 * JavaScript nothing else would say that `{ leaseMS: 5000 }` left the lease at its default.
 */
import type { HistoryBound, RetentionPolicy } from '../persistence/retention.ts';
import { didYouMean } from './did-you-mean.ts';
import type { EngineOptions } from './engine-options.ts';
import { ValidationError } from './errors.ts';
import type { Limits } from './limits.ts';

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
  const names = Object.keys(known);
  for (const name of Object.keys(given)) {
    if (Object.hasOwn(known, name)) continue;
    const shown = `${prefix}${name.slice(0, 80)}`;
    const near = didYouMean(name, names);
    throw new ValidationError(
      `createEngine: unknown option ${JSON.stringify(shown)}${near ? ` (did you mean ${JSON.stringify(`${prefix}${near}`)}?)` : ''}. Known${prefix ? ` ${prefix.slice(0, -1)}` : ''} options: ${names.join(', ')}.`,
      [{ path: shown, message: 'unknown option' }],
    );
  }
}
