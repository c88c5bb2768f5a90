/**
 * Structured logs (pino, JSON lines on stderr). Secrets are redacted by path and, as a second line
 * of defence, by value with the service's one masker (src/rmapp/masking.ts): the configured secrets
 * and anything token- or key-shaped, wherever it appears.
 */
import { pino, type Logger } from 'pino';
import { createMasker, MASK, type Masker } from './masking.ts';

const REDACT_PATHS = [
  '*.token',
  '*.privateKey',
  '*.webhookSecret',
  '*.dashboardToken',
  '*.password',
  '*.authorization',
  'headers.authorization',
  'headers["x-hub-signature-256"]',
  'config.github.token',
  'config.github.privateKey',
  'config.github.webhookSecret',
  'config.server.dashboardToken',
];

/**
 * A log call's arguments as pino is to see them: the message and the values it interpolates (`%s`, `%o`,
 * `%j`) masked. With no message, pino writes an error's own as the line's `msg` — of `log.error(err)`
 * and of `log.warn({ err })` — after every hook and formatter, so unmasked: a secret in a thrown error's
 * message reached the log as `"msg":"… <secret>"` while its `err.message` beside it read `[REDACTED]`
 * (an adversarial pass). That message is given here, masked, as pino would take it.
 */
function maskedArguments(args: unknown[], masker: Masker): unknown[] {
  const [first, ...rest] = args;
  if (first !== null && typeof first === 'object') {
    if (rest.length === 0 || rest[0] === undefined) {
      const err =
        first instanceof Error
          ? first
          : (first as { msg?: unknown; err?: unknown }).msg === undefined
            ? (first as { err?: unknown }).err
            : undefined;
      const message = (err as { message?: unknown } | null | undefined)?.message;
      return typeof message === 'string' ? [first, masker.text(message)] : args;
    }
    return [first, ...rest.map((a) => maskedParameter(a, masker))];
  }
  return args.map((a) => maskedParameter(a, masker));
}

/** A message or a value it interpolates, masked: an error as its text (`%s` of one reads `Error: …`, not an object). */
const maskedParameter = (value: unknown, masker: Masker): unknown =>
  typeof value === 'string' || value instanceof Error ? masker.text(String(value)) : masker.value(value);

/** pino's levels: what `RMAPP_LOG_LEVEL` may say. */
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * A logger that masks `secrets` (their values), token- and key-shaped text, and the usual secret
 * fields. A level pino does not know is refused naming the variable and the levels (pino's own error,
 * "default level:bogus must be included in custom levels", named neither).
 */
export function createLogger(
  options: { level?: string | undefined; secrets?: (string | undefined)[]; destination?: NodeJS.WritableStream } = {},
): Logger {
  // As the other settings take it: blanks around it and its case do not matter (`INFO`).
  const level = (options.level ?? process.env.RMAPP_LOG_LEVEL ?? 'info').trim().toLowerCase();
  if (!LEVELS.includes(level)) {
    const shown = JSON.stringify(level.length > 40 ? `${level.slice(0, 40)}…` : level);
    throw new Error(
      `${options.level === undefined ? 'RMAPP_LOG_LEVEL' : 'The log level'} ${shown} is not a log level: use one of ${LEVELS.join(', ')}.`,
    );
  }
  const masker = createMasker(options.secrets ?? []);
  const logger = pino(
    {
      level,
      base: { service: 'rmapp' },
      redact: { paths: REDACT_PATHS, censor: MASK },
      hooks: {
        logMethod(args, method) {
          method.apply(this, maskedArguments(args, masker) as Parameters<typeof method>);
        },
      },
      formatters: { log: (obj) => masker.value(obj) },
    },
    (options.destination ?? process.stderr) as pino.DestinationStream,
  );
  return withMaskedBindings(logger, masker);
}

/**
 * `logger` with the bindings of its children masked: `child(bindings, options)` and `setBindings`
 * mask the bindings (as `masker.value`: secret-named keys' values replaced too) and a child's
 * `msgPrefix`, and a child's own `formatters` (`log`, `bindings`, `level`) and `serializers` are followed by the masker.
 * pino writes a child's bindings into each of its lines as they were given — the `log` formatter and
 * the `logMethod` hook never see them, and `formatters.bindings` is called once, for the root's `base`
 * (pino's docs, "formatters", which also say to sanitize bindings first) — so a secret in a child's
 * bindings reached every line of that child in clear. Set on the root: each child is made from its
 * parent (pino's `Object.create`), so children of children inherit the masking.
 */
function withMaskedBindings(logger: Logger, masker: Masker): Logger {
  const child = logger.child as unknown as (this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => Logger;
  const setBindings = logger.setBindings as (this: Logger, bindings: pino.Bindings) => void;
  const after =
    <A extends unknown[]>(format: ((...a: A) => object) | undefined) =>
    (...a: A): object =>
      masker.value(format ? format(...a) : a[0]) as object;
  const maskedOptions = (options: pino.ChildLoggerOptions | undefined): pino.ChildLoggerOptions | undefined => {
    if (!options) return options;
    const { msgPrefix, formatters, serializers } = options;
    return {
      ...options,
      ...(typeof msgPrefix === 'string' ? { msgPrefix: masker.text(msgPrefix) } : {}),
      ...(serializers ? { serializers: maskedSerializers(serializers) } : {}),
      ...(formatters
        ? {
            formatters: {
              ...formatters,
              ...(formatters.log ? { log: after(formatters.log) } : {}),
              ...(formatters.bindings ? { bindings: after(formatters.bindings) } : {}),
              ...(formatters.level ? { level: after(formatters.level) } : {}),
            },
          }
        : {}),
    };
  };
  // pino runs a child's serializers on its bindings and, after the `log` formatter, on each line's
  // fields: what they return is written as it is. Symbol keys too (pino's `pino.*` wildcard).
  const maskedSerializers = (serializers: Record<string | symbol, (value: unknown) => unknown>) => {
    const out: Record<string | symbol, (value: unknown) => unknown> = {};
    for (const key of Reflect.ownKeys(serializers)) {
      const serialize = serializers[key];
      if (typeof serialize === 'function') out[key] = (value: unknown) => masker.value(serialize(value));
    }
    return out;
  };
  return Object.assign(logger, {
    child(this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) {
      return child.call(this, masker.value(bindings), maskedOptions(options));
    },
    setBindings(this: Logger, bindings: pino.Bindings) {
      setBindings.call(this, masker.value(bindings));
    },
  }) as Logger;
}

export type { Logger };
