/**
 * Tracing with `@opentelemetry/api` only: without an SDK registered by the application every call is
 * a no-op. A run's trace context is persisted as a W3C `traceparent`, so the segments of a run that
 * moves between processes (crash, restart, another worker) all join one trace:
 *
 *   workflow.start <name>            (the caller of engine.start)
 *   └─ workflow.run <name>           one per segment: from claim to release or end
 *      └─ workflow.step <step>       one per attempt; calls made inside the step are its children
 *
 * The traceparent is written and parsed here rather than through the global propagator, so it works
 * whatever propagators the application configured.
 */
import { ROOT_CONTEXT, SpanStatusCode, trace, TraceFlags, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { ErrorData } from './errors.ts';

/** The tracer, looked up on use so a provider registered after import still takes effect. */
export function tracer(): Tracer {
  return trace.getTracer('rmapp');
}

/** `00-<trace id>-<span id>-<flags>` of a span, or null for a non-recording no-op span. */
export function traceparentOf(span: Span): string | null {
  const c = span.spanContext();
  if (!trace.isSpanContextValid(c)) return null;
  return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED ? '01' : '00'}`;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** A context whose parent is the persisted span, or the root context when there is none. */
export function contextFromTraceparent(traceparent: string | null | undefined): Context {
  const m = traceparent ? TRACEPARENT.exec(traceparent) : null;
  if (!m) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: m[1] as string,
    spanId: m[2] as string,
    traceFlags: Number.parseInt(m[3] as string, 16),
    isRemote: true,
  });
}

/** Span attribute names, per the OpenTelemetry conventions the issue asks for. */
export const ATTR = {
  id: 'workflow.id',
  name: 'workflow.name',
  version: 'workflow.version',
  step: 'workflow.step',
  stepPath: 'workflow.step.path',
  attempt: 'workflow.attempt',
  state: 'workflow.state',
  status: 'workflow.status',
  errorCategory: 'error.category',
  errorCode: 'error.code',
} as const;

/**
 * Starts a run segment's span (`workflow.run`) as a child of the run's persisted trace context, and
 * the context its steps' spans are children of.
 */
export function startSegmentSpan(
  run: { id: string; traceContext: string | null },
  definition: { name: string; version: string },
): { span: Span; context: Context } {
  const parent = contextFromTraceparent(run.traceContext);
  const span = tracer().startSpan(
    `workflow.run ${definition.name}`,
    { attributes: { [ATTR.id]: run.id, [ATTR.name]: definition.name, [ATTR.version]: definition.version } },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

/**
 * Ends a run segment's span (`workflow.run`) with how the segment left the run: its final `state`,
 * its `status` (the run's final status, `waiting` when written out, `released` when handed over or
 * lost) and, when it failed, its error.
 */
export function endSegmentSpan(span: Span, state: unknown, status: string, error: ErrorData | undefined): void {
  span.setAttribute(ATTR.state, JSON.stringify(state));
  span.setAttribute(ATTR.status, status);
  if (error) {
    span.setAttribute(ATTR.errorCategory, error.category);
    if (status === 'failed') {
      span.recordException({ name: error.name, message: error.message, code: error.code });
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    }
  }
  span.end();
}
