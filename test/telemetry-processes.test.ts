/**
 * Telemetry across processes: a run killed with SIGKILL and resumed by another `rmapp worker --otel`
 * yields one trace; `--metrics-port` serves Prometheus metrics.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { expect, it } from 'vitest';
import { useTestTelemetry } from './helpers/otel-globals.ts';
import { durabilityWorkflows } from './helpers/durability-workflows.ts';
import { freePort, startCollector } from './helpers/otlp-collector.ts';
import { processClient } from './helpers/process-client.ts';
import { readCounts, spawnRmapp, TEST_WORKFLOWS, until } from './helpers/processes.ts';
import { failingWorkflow, sequenceWorkflow } from './helpers/workflows.ts';

const clientSpans = new InMemorySpanExporter();
useTestTelemetry(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(clientSpans)] }));

const pg = processClient(() => [sequenceWorkflow(6), failingWorkflow(), ...durabilityWorkflows()]);

it('a run killed with SIGKILL and resumed in another process yields one trace', async () => {
  const collector = await startCollector();
  const counter = join(mkdtempSync(join(tmpdir(), 'rmapp-otel-')), 'counts.txt');
  const env = {
    DATABASE_URL: pg.url,
    RMAPP_TEST_COUNTER_FILE: counter,
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
    OTEL_BSP_SCHEDULE_DELAY: '50',
    OTEL_METRIC_EXPORT_INTERVAL: '600000',
  };
  const id = await pg.client.start('test.sequence', {});
  const start = clientSpans.getFinishedSpans().find((s) => s.attributes['workflow.id'] === id);
  expect(start?.name).toBe('workflow.start test.sequence');
  const traceId = start?.spanContext().traceId as string;

  const args = ['--workflows', TEST_WORKFLOWS, 'worker', '--otel', '--lease-ms', '2000'];
  const first = spawnRmapp(args, { ...env, RMAPP_TEST_SLOW_STEP: 'step4', RMAPP_TEST_SLOW_MS: '60000' });
  await until(() => readCounts(counter).get('step4') === 1, 30_000, 'step 4 to start');
  // The first worker's finished step spans are exported in the background before it dies.
  await until(() => collector.spans.filter((s) => s.name === 'workflow.step add').length >= 3, 10_000, 'spans of steps 1-3');
  first.child.kill('SIGKILL');
  await first.exited;

  const second = spawnRmapp(args, env);
  expect((await pg.client.waitFor(id, { timeoutMs: 30_000 })).status).toBe('succeeded');
  second.child.kill('SIGTERM');
  expect(await second.exited).toBe(0);
  await collector.close();

  const spans = collector.spans;
  expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([traceId]));
  const segments = spans.filter((s) => s.name === 'workflow.run test.sequence');
  expect(segments).toHaveLength(1); // the killed worker's segment never ended
  expect(segments[0]?.parentSpanId).toBe(start?.spanContext().spanId);
  const stepSpans = spans.filter((s) => s.name === 'workflow.step add');
  const byPath = (n: number) => stepSpans.filter((s) => s.attributes['workflow.step.path'] === `0.sequence.step${n}`);
  for (const n of [1, 2, 3, 5, 6]) expect(byPath(n)).toHaveLength(1);
  expect(byPath(4)).toHaveLength(1); // only the resumed attempt ended
  const pids = new Set(stepSpans.map((s) => s.resource['process.pid']));
  expect(pids.size).toBe(2);
  expect(byPath(4)[0]?.parentSpanId).toBe(segments[0]?.spanId);
});

it("a step's error quoting a secret leaves the worker masked in its spans", async () => {
  // An adversarial pass: the API and the logs masked it, the exported spans (the exception event's
  // message and stack, the span's status) did not.
  const collector = await startCollector();
  const env = {
    DATABASE_URL: pg.url,
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
    OTEL_BSP_SCHEDULE_DELAY: '50',
    OTEL_METRIC_EXPORT_INTERVAL: '600000',
    // A value the sandbox passes to the tests (so the service masks it), which the step's error quotes.
    RMAPP_SANDBOX_ENV: 'WIDGET_SECRET',
    WIDGET_SECRET: 'widget is broken',
  };
  const worker = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--otel'], env);
  const id = await pg.client.start('test.fails', {});
  expect((await pg.client.waitFor(id, { timeoutMs: 30_000 })).status).toBe('failed');
  await until(() => collector.spans.some((s) => s.name === 'workflow.run test.fails'), 10_000, 'the failed run exported');
  worker.child.kill('SIGTERM');
  expect(await worker.exited).toBe(0);
  await collector.close();
  const exported = collector.bodies.join('\n');
  expect(exported, 'the error reached the spans (otherwise this proves nothing)').toContain('the [REDACTED]');
  expect(exported, 'the secret in the exported spans').not.toContain('widget is broken');
});

it('--metrics-port serves Prometheus metrics', async () => {
  const port = await freePort();
  const worker = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--metrics-port', String(port)], { DATABASE_URL: pg.url });
  const id = await pg.client.start('test.sequence', {});
  expect((await pg.client.waitFor(id, { timeoutMs: 30_000 })).status).toBe('succeeded');
  let text = '';
  await until(
    async () => {
      text = await fetch(`http://127.0.0.1:${port}/metrics`)
        .then((r) => r.text())
        .catch(() => '');
      return text.includes('rmapp_runs_finished');
    },
    15_000,
    '/metrics to report the run',
  );
  expect(text).toMatch(/rmapp_runs_finished(_total)?\{[^}]*workflow_name="test\.sequence"[^}]*workflow_status="succeeded"[^}]*\} 1/);
  expect(text).toMatch(/rmapp_steps(_total)?\{[^}]*outcome="succeeded"/);
  expect(text).toMatch(/rmapp_runs_waiting/);
  worker.child.kill('SIGTERM');
  expect(await worker.exited).toBe(0);
});
