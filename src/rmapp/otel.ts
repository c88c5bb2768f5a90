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
  const sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME ?? 'rmapp',
    ...(options.otlp ? { traceExporter: new OTLPTraceExporter() } : { traceExporter: undefined, spanProcessors: [] }),
    metricReaders,
    instrumentations: [],
    // Not the stock process detector: it exports the command line (`--database-url
    // postgres://user:password@…`) with every metric and span, to /metrics and the collector.
    resourceDetectors: [resources.envDetector, resources.hostDetector, resources.osDetector, processWithoutCommandLine],
  });
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
