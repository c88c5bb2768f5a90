/**
 * Structured logs (pino, JSON lines on stderr). Secrets are redacted by path and, as a second line
 * of defence, by value with the service's one masker (src/rmapp/masking.ts): the configured secrets
 * and anything token- or key-shaped, wherever it appears.
 */
import { pino, type Logger } from 'pino';
import { createMasker, MASK } from './masking.ts';

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
  const mask = masker.text;
  return pino(
    {
      level,
      base: { service: 'rmapp' },
      redact: { paths: REDACT_PATHS, censor: MASK },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? mask(a) : a)) as Parameters<typeof method>);
        },
      },
      formatters: { log: (obj) => masker.value(obj) },
    },
    (options.destination ?? process.stderr) as pino.DestinationStream,
  );
}

export type { Logger };
