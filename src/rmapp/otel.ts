/**
 * The OpenTelemetry SDK belongs to the application, not the engine: `rmapp worker --otel` sets up the
 * Node SDK with OTLP/HTTP exporters configured by the standard `OTEL_*` environment variables
 * (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_BSP_SCHEDULE_DELAY`, …), and
 * `--metrics-port` serves Prometheus metrics at `/metrics`.
 */
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK, resources } from '@opentelemetry/sdk-node';
import { withMaskedDiagnostics } from './masked-diag-logger.ts';
import { createMasker, type Masker } from './masking.ts';

type ExportedSpan = Parameters<OTLPTraceExporter['export']>[0][number];
type SpanExporter = Pick<OTLPTraceExporter, 'export' | 'shutdown' | 'forceFlush'>;

/**
 * The span as exported, its texts masked: a span's name, attributes, status message, events (an
 * exception's message and stack: a step's error may quote a secret, a test's output) and links'
 * attributes. The rest (ids, times, the resource) is the span's own, read through the prototype.
 */
function maskedSpan(span: ExportedSpan, masker: Masker): ExportedSpan {
  const copy = Object.create(span) as ExportedSpan;
  const status = span.status.message === undefined ? span.status : { ...span.status, message: masker.text(span.status.message) };
  return Object.defineProperties(copy, {
    name: { value: masker.text(span.name) },
    attributes: { value: masker.value(span.attributes) },
    status: { value: status },
    events: {
      value: span.events.map((e) => ({ ...e, name: masker.text(e.name), attributes: e.attributes && masker.value(e.attributes) })),
    },
    links: { value: span.links.map((l) => ({ ...l, attributes: l.attributes && masker.value(l.attributes) })) },
  });
}

/** An exporter that masks every span before `inner` sends it (see {@link maskedSpan}). */
export function maskingSpanExporter(inner: SpanExporter, masker: Masker): SpanExporter {
  return {
    export: (spans, done) =>
      inner.export(
        spans.map((s) => maskedSpan(s, masker)),
        done,
      ),
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush(),
  };
}

/** The process attributes of the stock detector, without `process.command*` and `process.executable.path`. */
const processWithoutCommandLine: resources.ResourceDetector = {
  detect: () => ({
    attributes: {
      'process.pid': process.pid,
      'process.executable.name': process.title,
      'process.runtime.name': 'nodejs',
      'process.runtime.version': process.versions.node,
      'process.runtime.description': 'Node.js',
    },
  }),
};

/** What to set up. */
export interface TelemetryOptions {
  /** Export traces and metrics over OTLP/HTTP. */
  otlp: boolean;
  /** Serve Prometheus metrics on this port (host 0.0.0.0 unless `prometheusHost`). */
  prometheusPort?: number | undefined;
  prometheusHost?: string | undefined;
  /** Create the Prometheus reader without its own server: the caller serves `/metrics` (`rmapp serve`). */
  prometheusEmbedded?: boolean | undefined;
  /**
   * Masks the spans before they are exported: an engine's span records a step's error (message and
   * stack), which may quote a secret. Metrics carry no text of a run. Also masks OpenTelemetry's own
   * diagnostics when `OTEL_LOG_LEVEL` turns them on (masked-diag-logger.ts); without it, those are
   * masked by the patterns alone (tokens, keys, URL passwords).
   */
  masker?: Masker | undefined;
}

/** Starts the SDK; `shutdown` flushes what is buffered (call it on SIGTERM). */
export async function startTelemetry(options: TelemetryOptions): Promise<{ shutdown(): Promise<void>; prometheus?: PrometheusExporter }> {
  const metricReaders: IMetricReader[] = [];
  let prometheus: PrometheusExporter | undefined;
  if (options.prometheusPort !== undefined || options.prometheusEmbedded) {
    // Started below, not by the exporter: it logs a port in use or out of range to OpenTelemetry's
    // diagnostics and goes on without an endpoint, and the operator's scraper finds nothing.
    prometheus = new PrometheusExporter({
      port: options.prometheusPort,
      host: options.prometheusHost ?? '0.0.0.0',
      preventServerStart: true,
    });
    metricReaders.push(prometheus);
  }
  if (options.otlp) {
    metricReaders.push(new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter() }));
  }
  // With OTEL_LOG_LEVEL, the constructor would set the SDK's diagnostics to the console, unmasked: they
  // go through the masker instead.
  const sdk = withMaskedDiagnostics(
    options.masker ?? createMasker(),
    () =>
      new NodeSDK({
        serviceName: process.env.OTEL_SERVICE_NAME ?? 'rmapp',
        ...(options.otlp
          ? { traceExporter: options.masker ? maskingSpanExporter(new OTLPTraceExporter(), options.masker) : new OTLPTraceExporter() }
          : { traceExporter: undefined, spanProcessors: [] }),
        metricReaders,
        instrumentations: [],
        // Not the stock process detector: it exports the command line (`--database-url
        // postgres://user:password@…`) with every metric and span, to /metrics and the collector.
        resourceDetectors: [resources.envDetector, resources.hostDetector, resources.osDetector, processWithoutCommandLine],
      }),
  );
  sdk.start();
  if (prometheus && !options.prometheusEmbedded) {
    const where = `${options.prometheusHost ?? '0.0.0.0'}:${options.prometheusPort}`;
    try {
      await prometheus.startServer();
    } catch (err) {
      await sdk.shutdown().catch(() => {});
      const cause = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'the port is in use' : (err as Error).message;
      throw new Error(`Cannot serve metrics on ${where} (${cause}): choose another --metrics-port.`);
    }
  }
  return {
    prometheus,
    shutdown: () => sdk.shutdown(),
  };
}
