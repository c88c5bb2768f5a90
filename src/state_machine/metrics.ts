/**
 * Metrics with the OpenTelemetry metrics API, fed by the engine's own event stream (so what metrics
 * count is exactly what hooks and history see). Without an SDK the instruments are no-ops.
 */
import { metrics, type Attributes } from '@opentelemetry/api';
import type { EngineEvents } from './events.ts';

/** Sources for the gauges. */
export interface MetricSources {
  /** Runs held in memory by this worker. */
  activeRuns(): number;
  /** Runs waiting (evicted) in the whole database; queried at collection time. */
  waitingRuns(): Promise<number>;
}

/** Subscribes the instruments to `events`; returns a function that unsubscribes. */
export function instrumentMetrics(events: EngineEvents, sources: MetricSources): () => void {
  const meter = metrics.getMeter('rmapp');
  const started = meter.createCounter('rmapp.runs.started', { description: 'Runs that began executing' });
  const finished = meter.createCounter('rmapp.runs.finished', { description: 'Runs that ended, by status' });
  const runDuration = meter.createHistogram('rmapp.run.duration', { unit: 'ms', description: 'From start to end of a run' });
  const steps = meter.createCounter('rmapp.steps', { description: 'Step attempts by outcome and error category' });
  const stepDuration = meter.createHistogram('rmapp.step.duration', { unit: 'ms', description: 'Duration of a step attempt' });
  const retries = meter.createCounter('rmapp.step.retries', { description: 'Step attempts scheduled for retry' });
  const lost = meter.createCounter('rmapp.runs.lost', {
    description: 'Runs this worker stopped executing because it no longer owned them, by reason',
  });
  const claimLag = meter.createHistogram('rmapp.claim.lag', { unit: 'ms', description: 'From a run being due to being claimed' });
  const active = meter.createObservableGauge('rmapp.runs.active', { description: 'Runs in memory on this worker' });
  const waiting = meter.createObservableGauge('rmapp.runs.waiting', { description: 'Runs waiting for a timer or a signal' });
  const observe = async (result: { observe(value: number, attributes?: Attributes): void }) => {
    result.observe(await sources.waitingRuns().catch(() => Number.NaN));
  };
  const observeActive = (result: { observe(value: number): void }) => result.observe(sources.activeRuns());
  active.addCallback(observeActive);
  waiting.addCallback(observe);
  const offs = [
    events.on('run.started', (e) => started.add(1, { 'workflow.name': e.workflow })),
    events.on('run.finished', (e) => {
      finished.add(1, {
        'workflow.name': e.workflow,
        'workflow.status': e.status,
        ...(e.error ? { 'error.category': e.error.category } : {}),
      });
      if (e.durationMs !== undefined) runDuration.record(e.durationMs, { 'workflow.name': e.workflow, 'workflow.status': e.status });
    }),
    events.on('step.succeeded', (e) => {
      steps.add(1, { 'workflow.name': e.workflow, 'workflow.step': e.step, outcome: 'succeeded' });
      stepDuration.record(e.durationMs, { 'workflow.name': e.workflow, 'workflow.step': e.step, outcome: 'succeeded' });
    }),
    events.on('step.failed', (e) => {
      const attrs = { 'workflow.name': e.workflow, 'workflow.step': e.step, outcome: 'failed', 'error.category': e.error.category };
      steps.add(1, attrs);
      stepDuration.record(e.durationMs, attrs);
    }),
    events.on('step.retrying', (e) => {
      const attrs = { 'workflow.name': e.workflow, 'workflow.step': e.step, outcome: 'retrying', 'error.category': e.error.category };
      steps.add(1, attrs);
      stepDuration.record(e.durationMs, attrs);
      retries.add(1, { 'workflow.name': e.workflow, 'workflow.step': e.step, 'error.category': e.error.category });
    }),
    events.on('run.claimed', (e) => claimLag.record(e.lagMs, { 'workflow.name': e.workflow })),
    events.on('run.lost', (e) => lost.add(1, { 'workflow.name': e.workflow, reason: e.reason })),
  ];
  return () => {
    for (const off of offs) off();
    active.removeCallback(observeActive);
    waiting.removeCallback(observe);
  };
}
