/**
 * The engine's own checks of the options a command's flags give it, reported with the flags' names: the
 * engine names its options as a library user writes them (`createEngine: leaseMs must be at least 500`),
 * which told `rmapp worker --lease-ms 10` of an option it never wrote. The rules stay the engine's, in one
 * place (`resolveEngineOptions`, src/state_machine/engine-options.ts).
 */
import type { EngineOptions } from '../../state_machine/engine-options.ts';
import { ValidationError } from '../../state_machine/errors.ts';

/** The flag that gives each engine option, e.g. `{ leaseMs: '--lease-ms' }`. */
export type EngineFlags = Partial<Record<keyof EngineOptions, string>>;

/**
 * Checks `options` with `resolve` (the engine's `resolveEngineOptions`) before anything is started; a
 * problem with an option that a flag gave is rethrown naming the flag.
 */
export function checkEngineFlags(resolve: (options: EngineOptions) => unknown, options: EngineOptions, flags: EngineFlags): void {
  try {
    resolve(options);
  } catch (err) {
    const m = err instanceof ValidationError ? /^createEngine: (\w+) (.*)$/s.exec(err.message) : null;
    const flag = m?.[1] ? flags[m[1] as keyof EngineOptions] : undefined;
    if (!m || !flag) throw err;
    throw new ValidationError(`${flag} ${m[2]}`);
  }
}
