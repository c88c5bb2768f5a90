/**
 * How long finished runs are kept, and the durations people write for it (`7d`, `12h`): the part of
 * retention the command line and the configuration read. Kept apart from the sweeps (retention.ts),
 * which load the database drivers, so that `rmapp --version` and `--help` start without them.
 */
/**
 * How long finished runs are kept after `finished_at`, per final status, in milliseconds.
 * `Infinity` keeps runs of that status forever.
 */
export interface RetentionPolicy {
  succeededMs: number;
  failedMs: number;
  cancelledMs: number;
}

const DAY_MS = 86_400_000;

/**
 * Failures are kept longer than successes: they are what someone investigates (or retries with
 * `rmapp runs retry`) days later, while a succeeded or cancelled run is rarely looked at after a week.
 */
export const DEFAULT_RETENTION: RetentionPolicy = Object.freeze({
  succeededMs: 7 * DAY_MS,
  failedMs: 30 * DAY_MS,
  cancelledMs: 7 * DAY_MS,
});

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: DAY_MS };

/**
 * Parses a human duration such as `7d`, `12h`, `30m`, `45s` or `500ms` into milliseconds, so the CLI
 * and configuration can say retention ages the way people think of them.
 *
 * @throws {Error} naming the bad value and the accepted forms.
 */
export function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(String(value).trim());
  const ms = match ? Number(match[1]) * (UNIT_MS[match[2] as string] as number) : Number.NaN;
  if (match && !Number.isSafeInteger(ms)) {
    // A whole number with a unit, only too large: said so, not that it is no whole number.
    throw new Error(`Invalid duration ${JSON.stringify(value)}: too long; at most ${Math.floor(Number.MAX_SAFE_INTEGER / DAY_MS)}d.`);
  }
  if (!Number.isSafeInteger(ms)) {
    throw new Error(
      `Invalid duration ${JSON.stringify(value)}: use a whole number followed by a unit, one of ms, s, m, h, d ` +
        '(e.g. 7d, 12h, 30m, 45s, 500ms).',
    );
  }
  return ms;
}

/**
 * Renders milliseconds with the largest unit {@link parseDuration} accepts that divides it exactly
 * (`604800000` → `7d`), so printed policies read like the flags that set them.
 */
export function formatDuration(ms: number): string {
  if (ms === Infinity) return 'forever';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit] as number;
    if (ms !== 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
