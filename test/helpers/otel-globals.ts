/**
 * The OpenTelemetry API's globals for a test file: its own context manager and tracer provider (and
 * meter provider, when given). Test files share processes (vitest.config.ts, `isolate: false`), and the
 * API keeps the first provider registered in a process: a later file's registration would be ignored
 * and its spans would go to the earlier file's exporter. So whatever an earlier file registered is
 * removed first, and this file's providers are removed again after its tests.
 */
import { context, metrics, trace, type MeterProvider, type TracerProvider } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { afterAll } from 'vitest';

/** Registers `tracerProvider` (and `meterProvider`) as the process's globals for this file's tests. */
export function useTestTelemetry(tracerProvider: TracerProvider, meterProvider?: MeterProvider): void {
  context.disable();
  trace.disable();
  metrics.disable();
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(tracerProvider);
  if (meterProvider) metrics.setGlobalMeterProvider(meterProvider);
  afterAll(() => {
    context.disable();
    trace.disable();
    metrics.disable();
  });
}
