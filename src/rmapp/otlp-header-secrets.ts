/**
 * The values of the headers the OpenTelemetry exporters send (`OTEL_EXPORTER_OTLP_HEADERS` and the
 * per-signal `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, `…_METRICS_HEADERS`, `…_LOGS_HEADERS`): a collector's
 * or a vendor's API key (`Authorization=Bearer%20…`, `x-honeycomb-team=…`, `api-key=…`). The SDK's
 * diagnostics and an export's failure may quote them, and the masker knew them only where a pattern
 * caught them (`Authorization: Bearer …`), never the key alone or decoded. Read as secrets of the
 * service's own (config.ts `secretsOf`, service-secret-sources.ts `serviceSecretSources`).
 */
import { decodeOrKeep } from './masking.ts';

/** The variables that hold exporter headers, as the SDK reads them (otlp-exporter-base's env configuration). */
export const OTLP_HEADER_VARIABLE = /^OTEL_EXPORTER_OTLP_(?:[A-Z]+_)?HEADERS$/;

/** The schemes whose credential follows a blank in an `Authorization` value. */
const SCHEME = /^(?:bearer|basic|token|apikey|api-key|digest|negotiate)\s+(\S.*)$/i;

/**
 * The secret values of one headers variable: the list is `key=value` pairs separated by `,`, each value
 * percent-encoded and ending at a `;` (W3C baggage's format, which the SDK parses: `@opentelemetry/core`
 * `parseKeyPairsIntoRecord`). Each value as written and decoded, and the credential after an
 * authorization scheme (`Bearer xyz` gives `xyz` too), and a Basic credential's password (its base64
 * decoded to `user:password`): any of them may be what a message quotes. Every header's value is taken,
 * not only those named for a secret: a vendor's key travels under any name (`x-honeycomb-team`).
 *
 * @example
 * otlpHeaderValues('Authorization=Bearer%20abc123def,x-scope-orgid=tenant-1'); // ['Bearer%20abc123def', 'Bearer abc123def', 'abc123def', 'tenant-1']
 */
export function otlpHeaderValues(list: string): string[] {
  const out = new Set<string>();
  for (const entry of list.split(',')) {
    const pair = entry.split(';')[0] ?? '';
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const raw = pair.slice(eq + 1).trim();
    if (!raw) continue;
    for (const value of [raw, decodeOrKeep(raw)]) {
      out.add(value);
      const credential = SCHEME.exec(value)?.[1]?.trim();
      if (!credential) continue;
      out.add(credential);
      if (/^basic\s/i.test(value) && /^[A-Za-z0-9+/]+=*$/.test(credential)) {
        const decoded = Buffer.from(credential, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon >= 0 && !decoded.includes('\uFFFD') && decoded.length > colon + 1) out.add(decoded.slice(colon + 1));
      }
    }
  }
  return [...out];
}

/**
 * The secret values of every exporter headers variable in `env` ({@link OTLP_HEADER_VARIABLE},
 * {@link otlpHeaderValues}).
 *
 * @example
 * otlpHeaderSecrets({ OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'api-key=k3y-abc' }); // ['k3y-abc']
 */
export function otlpHeaderSecrets(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.entries(env).flatMap(([name, value]) => (value && OTLP_HEADER_VARIABLE.test(name) ? otlpHeaderValues(value) : []));
}
