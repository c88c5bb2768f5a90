/**
 * Structured logs (pino, JSON lines on stderr). Secrets are redacted by path and, as a second line
 * of defence, by value with the service's one masker (src/rmapp/masking.ts): the configured secrets
 * and anything token- or key-shaped, wherever it appears.
 */
import { pino, type Logger } from 'pino';
import { createMasker } from './masking.ts';

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

/** A logger that masks `secrets` (their values), token- and key-shaped text, and the usual secret fields. */
export function createLogger(
  options: { level?: string | undefined; secrets?: (string | undefined)[]; destination?: NodeJS.WritableStream } = {},
): Logger {
  const masker = createMasker(options.secrets ?? []);
  const mask = masker.text;
  return pino(
    {
      level: options.level ?? process.env.RMAPP_LOG_LEVEL ?? 'info',
      base: { service: 'rmapp' },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
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
