/**
 * OpenTelemetry's own diagnostics, masked. `OTEL_LOG_LEVEL` makes the Node SDK (`new NodeSDK`) set
 * the API's global `diag` logger to a `DiagConsoleLogger`, which hands each message and its arguments
 * to the console methods as they were when the API loaded — unmasked, whatever wraps the console
 * later. What the SDK and its exporters log there includes what they were given (an export's failure
 * with the request's error, a span's attributes at `verbose`, a value a library passes through), and
 * the rest of the process masks everything it writes (README, "Sandbox and threat model"). So
 * `startTelemetry` (otel.ts) sets {@link maskedDiagLogger} at the same level instead
 * ({@link withMaskedDiagnostics}).
 */
import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import { formatWithOptions } from 'node:util';
import type { Masker } from './masking.ts';

/** `OTEL_LOG_LEVEL`'s values (any case), as the SDK reads them; anything else is INFO, as its default. */
const LEVELS: Record<string, DiagLogLevel> = {
  NONE: DiagLogLevel.NONE,
  ERROR: DiagLogLevel.ERROR,
  WARN: DiagLogLevel.WARN,
  INFO: DiagLogLevel.INFO,
  DEBUG: DiagLogLevel.DEBUG,
  VERBOSE: DiagLogLevel.VERBOSE,
  ALL: DiagLogLevel.ALL,
};

/** The level `OTEL_LOG_LEVEL` names, or null when it is unset or empty (the SDK then sets no logger). */
export function otelLogLevel(value: string | undefined): DiagLogLevel | null {
  if (value === undefined || value.trim() === '') return null;
  return LEVELS[value.trim().toUpperCase()] ?? DiagLogLevel.INFO;
}

/**
 * A diag logger that writes each message as one line to `write` (stderr), after the masker: every
 * argument masked as the API masks a value (secret-named keys too), an error by its stack, then the
 * formatted line masked as text. Every level goes to stderr: the console logger sent info and debug
 * to stdout, where a command's own output goes.
 *
 * @example
 * diag.setLogger(maskedDiagLogger(masker), { logLevel: DiagLogLevel.DEBUG, suppressOverrideMessage: true });
 */
export function maskedDiagLogger(masker: Masker, write: (line: string) => void = (line) => void process.stderr.write(line)): DiagLogger {
  const at =
    (level: string) =>
    (message: string, ...args: unknown[]): void => {
      const shown = args.map((a) => (a instanceof Error ? masker.text(a.stack ?? String(a)) : masker.value(a)));
      write(`${masker.text(formatWithOptions({ colors: false, breakLength: Infinity }, `otel ${level}: ${message}`, ...shown))}\n`);
    };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), verbose: at('verbose') };
}

/**
 * Makes the SDK with `make` (`() => new NodeSDK(…)`) with OpenTelemetry's diagnostics masked: when
 * `OTEL_LOG_LEVEL` asks for them, {@link maskedDiagLogger} is set at that level first, and the variable
 * is hidden while `make` runs, so that the constructor sets no console logger of its own (replacing
 * it afterwards left the constructor's own lines, `Registered a global for diag`, printed unmasked to
 * stdout). Synchronous: nothing else runs while the variable is hidden.
 *
 * @example
 * const sdk = withMaskedDiagnostics(masker, () => new NodeSDK({ serviceName: 'rmapp' }));
 */
export function withMaskedDiagnostics<T>(masker: Masker, make: () => T, env: NodeJS.ProcessEnv = process.env): T {
  const value = env.OTEL_LOG_LEVEL;
  const logLevel = otelLogLevel(value);
  if (logLevel === null) return make();
  diag.setLogger(maskedDiagLogger(masker), { logLevel, suppressOverrideMessage: true });
  delete env.OTEL_LOG_LEVEL;
  try {
    return make();
  } finally {
    env.OTEL_LOG_LEVEL = value;
  }
}
