/**
 * The one parser and help text of a retention age on the command line, shared by `rmapp prune
 * --succeeded/--failed/--cancelled` and `rmapp worker --retain-succeeded/--retain-failed/--retain-cancelled`,
 * so that every flag that offers `never` accepts it.
 *
 * Durations go through `parseDuration` (src/persistence/retention.ts) rather than the `ms` package: `ms`
 * also reads fractions and long forms (`1.5h`, `2 weeks`, `1y`) and answers a typo with `undefined`,
 * where a retention age is a whole number of one unit and a typo must name the forms that work.
 */
import { InvalidArgumentError, Option } from 'commander';
import { DEFAULT_RETENTION, formatDuration, parseDuration, type RetentionPolicy } from '../../persistence/retention-policy.ts';
import type { FinalStatus } from '../../persistence/run-status.ts';

/** The forms a retention age may take, as the help lists them. */
export const RETENTION_AGE_FORMS = '7d, 12h, 30m, 45s, 500ms, or never';

/**
 * A retention age in milliseconds: `never` is `Infinity` (the status is kept forever, which the
 * retention policy understands); anything else goes through `parseDuration`. A bad value is a
 * commander `InvalidArgumentError`, so the CLI prints the flag and the forms and exits 1.
 *
 * @example
 * parseRetentionAge('12h'); // 43_200_000
 * parseRetentionAge('never'); // Infinity
 */
export function parseRetentionAge(value: string): number {
  if (value.trim() === 'never') return Infinity;
  try {
    return parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message.replace(/\.$/, '')}, or never.`);
  }
}

/**
 * The option `--<flag> <age>` for one final status, parsed by {@link parseRetentionAge}, defaulting to
 * that status's `DEFAULT_RETENTION` and saying so in its help.
 *
 * @example
 * program.addOption(retentionAgeOption('retain-failed', 'failed', 'prune failed runs this long after they finish'));
 */
export function retentionAgeOption(flag: string, status: FinalStatus, description: string): Option {
  const key = `${status}Ms` as keyof RetentionPolicy;
  return new Option(`--${flag} <age>`, `${description} (${RETENTION_AGE_FORMS})`)
    .argParser(parseRetentionAge)
    .default(DEFAULT_RETENTION[key], formatDuration(DEFAULT_RETENTION[key]));
}

/**
 * A policy as one line, for logs: `succeeded 7d, failed forever, cancelled 7d`.
 *
 * @example
 * describeRetention({ succeededMs: 604_800_000, failedMs: Infinity, cancelledMs: 604_800_000 }); // 'succeeded 7d, failed forever, cancelled 7d'
 */
export function describeRetention(policy: RetentionPolicy): string {
  return `succeeded ${formatDuration(policy.succeededMs)}, failed ${formatDuration(policy.failedMs)}, cancelled ${formatDuration(policy.cancelledMs)}`;
}
