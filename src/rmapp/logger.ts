/**
 * Structured logs (pino, JSON lines on stderr). Secrets are redacted by path and, as a second line
 * of defence, by value: the configured secrets are masked wherever they appear in a message.
 */
import { pino, type Logger } from 'pino';

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

/** A logger that masks `secrets` (their values) and the usual secret fields. */
export function createLogger(options: { level?: string | undefined; secrets?: (string | undefined)[]; destination?: NodeJS.WritableStream } = {}): Logger {
  const secrets = (options.secrets ?? []).filter((s): s is string => !!s && s.length >= 6);
  const mask = (text: string) => secrets.reduce((t, s) => t.split(s).join('[REDACTED]'), text);
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
      formatters: { log: (obj) => (secrets.length ? (JSON.parse(mask(JSON.stringify(obj))) as Record<string, unknown>) : obj) },
    },
    (options.destination ?? process.stderr) as pino.DestinationStream,
  );
}

export type { Logger };
