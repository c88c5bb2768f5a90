/**
 * Observability: the span tree of a run with a retried step, metrics by outcome, and calls inside a
 * step as children of its span — with the OpenTelemetry SDK's in-memory exporters.
 */
import { trace } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, openDatabase, step, type Database, type Engine } from '../src/index.ts';
import { useTestTelemetry } from './helpers/otel-globals.ts';
import { durabilityWorkflows } from './helpers/durability-workflows.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const spans = new InMemorySpanExporter();
const reader = new TestReader();
useTestTelemetry(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }), new MeterProvider({ readers: [reader] }));

/** A workflow whose step makes an "outside call" with its own span, as Octokit or git would. */
const calling = defineWorkflow({
  name: 'test.calling',
  input: z.object({}).passthrough(),
  machine: setup({
    actors: {
      callGitHub: step(async () => trace.getTracer('octokit-like').startActiveSpan('GET /repos/o/r', (span) => span.end())),
    },
  }).createMachine({
    id: 'calling',
    initial: 'calling',
    states: { calling: { invoke: { src: 'callGitHub', onDone: 'done' } }, done: { type: 'final' } },
  }),
});

let testDb: TestDatabase;
let db: Database;
let engine: Engine;

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url });
  engine = createEngine({ database: db, workflows: [...durabilityWorkflows(), calling], pollMs: 50, evictAfterMs: 5_000 });
  await engine.startWorker();
});
afterAll(async () => {
  await engine.stop();
  await db.close();
  await testDb.drop();
});

const spansOf = (runId: string) => {
  const all = spans.getFinishedSpans();
  const start = all.find((s) => s.name.startsWith('workflow.start') && s.attributes['workflow.id'] === runId);
  return all.filter((s) => s.spanContext().traceId === start?.spanContext().traceId);
};
const parentId = (s: ReadableSpan) => s.parentSpanContext?.spanId;

it('a run with a retried step yields one trace: start → run segment → one span per step attempt', async () => {
  const id = await engine.start('test.flaky', { failTimes: 1 });
  expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
  await until(() => spansOf(id).some((s) => s.name.startsWith('workflow.run')), 5_000, 'the segment span');
  const tree = spansOf(id);
  const start = tree.find((s) => s.name === 'workflow.start test.flaky') as ReadableSpan;
  const run = tree.find((s) => s.name === 'workflow.run test.flaky') as ReadableSpan;
  const attempts = tree
    .filter((s) => s.name === 'workflow.step flaky')
    .sort((a, b) => Number(a.attributes['workflow.attempt']) - Number(b.attributes['workflow.attempt']));
  expect(start).toBeDefined();
  expect(run).toBeDefined();
  expect(parentId(run)).toBe(start.spanContext().spanId);
  expect(attempts).toHaveLength(2);
  for (const a of attempts) {
    expect(parentId(a)).toBe(run.spanContext().spanId);
    expect(a.attributes).toMatchObject({
      'workflow.id': id,
      'workflow.name': 'test.flaky',
      'workflow.step': 'flaky',
      'workflow.step.path': '0.flaky.working',
    });
    expect(a.attributes['workflow.version']).toBe(run.attributes['workflow.version']);
  }
  expect(attempts.map((a) => a.attributes['workflow.attempt'])).toEqual([1, 2]);
  expect(attempts[0]?.attributes['error.category']).toBe('transient');
  expect(attempts[0]?.status.code).toBe(2); // ERROR
  expect(attempts[0]?.events.map((e) => e.name)).toContain('exception');
  expect(attempts[1]?.status.code).toBe(0); // UNSET: succeeded
  expect(run.attributes).toMatchObject({
    'workflow.id': id,
    'workflow.name': 'test.flaky',
    'workflow.state': '"done"',
    'workflow.status': 'succeeded',
  });
  const events = run.events.map((e) => e.name);
  expect(events).toContain('state.entered');
  expect(events).toContain('step.retrying');
  const retry = run.events.find((e) => e.name === 'step.retrying');
  expect(retry?.attributes).toMatchObject({ 'workflow.attempt': 1, 'error.category': 'transient' });
});

it('a call made inside a step is a child of the step span', async () => {
  const id = await engine.start('test.calling', {});
  await engine.waitFor(id, { timeoutMs: 20_000 });
  await until(() => spansOf(id).some((s) => s.name === 'GET /repos/o/r'), 5_000, 'the inner span');
  const tree = spansOf(id);
  const stepSpan = tree.find((s) => s.name === 'workflow.step callGitHub') as ReadableSpan;
  const call = tree.find((s) => s.name === 'GET /repos/o/r') as ReadableSpan;
  expect(parentId(call)).toBe(stepSpan.spanContext().spanId);
});

it('a failed run marks its segment span as an error with the category; signals are span events', async () => {
  const failed = await engine.start('test.flaky', { failTimes: 1, failCategory: 'permanent' });
  await engine.waitFor(failed, { timeoutMs: 20_000 });
  const approval = await engine.start('test.approval', { timeoutMs: 60_000 });
  await until(async () => (await engine.get(approval)).state === 'awaitingApproval', 20_000, 'the approval wait');
  await engine.send(approval, { type: 'approve', by: 'octocat' });
  await engine.waitFor(approval, { timeoutMs: 20_000 });
  await until(() => spansOf(failed).some((s) => s.name.startsWith('workflow.run')), 5_000, 'segment spans');
  const run = spansOf(failed).find((s) => s.name.startsWith('workflow.run')) as ReadableSpan;
  expect(run.status.code).toBe(2);
  expect(run.attributes).toMatchObject({ 'workflow.status': 'failed', 'error.category': 'permanent' });
  await until(() => spansOf(approval).some((s) => s.events.some((e) => e.name === 'signal.received')), 5_000, 'the signal event');
});

function points(rm: ResourceMetrics, name: string) {
  const metric = rm.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  return (metric?.dataPoints ?? []) as { attributes: Record<string, unknown>; value: unknown }[];
}

it('metrics count runs of each outcome, step outcomes by category, retries and durations', async () => {
  const ok = await engine.start('test.flaky', { failTimes: 1 });
  const bad = await engine.start('test.flaky', { failTimes: 1, failCategory: 'validation' });
  const hang = await engine.start('test.hanging', {});
  await until(
    async () => (await engine.get(hang)).state === 'working' && (await engine.history(hang)).some((h) => h.type === 'step.started'),
    20_000,
    'the hanging step',
  );
  await engine.cancel(hang, 'metrics test');
  for (const id of [ok, bad, hang]) await engine.waitFor(id, { timeoutMs: 20_000 });

  const { resourceMetrics } = await reader.collect();
  const finished = points(resourceMetrics, 'rmapp.runs.finished');
  const count = (status: string) =>
    finished.filter((p) => p.attributes['workflow.status'] === status).reduce((n, p) => n + Number(p.value), 0);
  expect(count('succeeded')).toBeGreaterThanOrEqual(1);
  expect(count('failed')).toBeGreaterThanOrEqual(1);
  expect(count('cancelled')).toBeGreaterThanOrEqual(1);
  expect(points(resourceMetrics, 'rmapp.runs.started').reduce((n, p) => n + Number(p.value), 0)).toBeGreaterThanOrEqual(3);

  const steps = points(resourceMetrics, 'rmapp.steps');
  const outcome = (o: string, category?: string) =>
    steps
      .filter((p) => p.attributes.outcome === o && (category === undefined || p.attributes['error.category'] === category))
      .reduce((n, p) => n + Number(p.value), 0);
  expect(outcome('retrying', 'transient')).toBeGreaterThanOrEqual(1);
  expect(outcome('failed', 'validation')).toBeGreaterThanOrEqual(1);
  expect(outcome('succeeded')).toBeGreaterThanOrEqual(1);
  expect(points(resourceMetrics, 'rmapp.step.retries').map((p) => p.attributes['workflow.step'])).toContain('flaky');
  const durations = points(resourceMetrics, 'rmapp.step.duration');
  expect(Math.max(0, ...durations.map((p) => (p.value as { count: number }).count)), 'step duration points with a count').toBeGreaterThan(
    0,
  );
  expect(points(resourceMetrics, 'rmapp.run.duration').length).toBeGreaterThan(0);
  expect(points(resourceMetrics, 'rmapp.runs.active')).toHaveLength(1);
  expect(points(resourceMetrics, 'rmapp.runs.waiting')).toHaveLength(1);
});
