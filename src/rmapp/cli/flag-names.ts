/**
 * The engine's refusals name its API's fields (`Invalid runId "a b": …`, `dedupeKey "rmapp.x" is
 * reserved`); typed at the CLI, the value came from a flag, which the user may not know by that name. A
 * refusal of such a field is said with the flag first (README "CLI": errors name what to fix).
 */
import { ValidationError } from '../../state_machine/errors.ts';

/**
 * `err` again, its message naming the flag of the field it refuses (`fields`: field → flag), when it is a
 * {@link ValidationError} whose message starts with `Invalid <field>` or `<field>`; any other error as it is.
 *
 * @example
 * withFlagNames(new ValidationError('Invalid runId "a b": …'), { runId: '--id' }).message; // '--id: Invalid runId "a b": …'
 */
export function withFlagNames(err: unknown, fields: Record<string, string>): unknown {
  if (!(err instanceof ValidationError)) return err;
  for (const [field, flag] of Object.entries(fields)) {
    if (err.message.startsWith(`Invalid ${field}`) || err.message.startsWith(`${field} `))
      return new ValidationError(`${flag}: ${err.message}`, err.issues);
  }
  return err;
}
