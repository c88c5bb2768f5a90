/**
 * One IssueImplementation run's trace: the run segment, a span per step attempt, and under each step
 * the calls it made — GitHub requests (`github GET /repos/{owner}/{repo}/issues/{issue_number}`), git
 * commands, the agent and the test command. The tree is printed (the README shows it).
 */
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, expect, it } from 'vitest';
import { createEngine } from '../src/index.ts';
import { issueImplementationSteps } from '../src/actors/issue-implementation.ts';
import { issueImplementationWorkflow } from '../src/machines/issue-implementation.ts';
import { useTestTelemetry } from './helpers/otel-globals.ts';
import { createGitHubWorld, type GitHubWorld } from './helpers/github-world.ts';

const spans = new InMemorySpanExporter();
useTestTelemetry(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));

let world: GitHubWorld | undefined;
afterAll(async () => world?.stop());

function tree(all: ReadableSpan[]): string {
  const children = new Map<string, ReadableSpan[]>();
  for (const s of all) {
    const parent = s.parentSpanContext?.spanId ?? '';
    children.set(parent, [...(children.get(parent) ?? []), s]);
  }
  const ids = new Set(all.map((s) => s.spanContext().spanId));
  const lines: string[] = [];
  const walk = (s: ReadableSpan, depth: number) => {
    const ms = (s.duration[0] * 1e3 + s.duration[1] / 1e6).toFixed(1);
    const attrs = ['workflow.state', 'workflow.attempt', 'http.response.status_code', 'process.exit.code']
      .filter((k) => s.attributes[k] !== undefined)
      .map((k) => `${k}=${String(s.attributes[k])}`)
      .join(' ');
    lines.push(`${'   '.repeat(depth)}${depth ? '└─ ' : ''}${s.name}  ${ms} ms${attrs ? `  ${attrs}` : ''}`);
    for (const c of (children.get(s.spanContext().spanId) ?? []).sort(
      (a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1],
    ))
      walk(c, depth + 1);
  };
  for (const root of all.filter((s) => !s.parentSpanContext || !ids.has(s.parentSpanContext.spanId))) walk(root, 0);
  return lines.join('\n');
}

it('traces a run with the GitHub, git, agent and test calls as children of their step spans', async () => {
  world = await createGitHubWorld();
  world.emulator.issues.set('acme/widgets#41', { title: 'Traced', body: 'PLAN write impl.txt\nWRITE impl.txt right' });
  const engine = createEngine({
    database: { url: '', dataDir: 'memory://' },
    workflows: [issueImplementationWorkflow(issueImplementationSteps(world.deps))],
    pollMs: 50,
  });
  await engine.startWorker();
  try {
    const id = await engine.start('IssueImplementation', { owner: 'acme', repo: 'widgets', issueNumber: 41 });
    expect((await engine.waitFor(id, { timeoutMs: 60_000 })).status).toBe('succeeded');
  } finally {
    await engine.stop();
  }
  // The world's own set-up (git init, clone, push) made other traces: keep the run's.
  const runTrace = spans
    .getFinishedSpans()
    .find((s) => s.name === 'workflow.start IssueImplementation')
    ?.spanContext().traceId;
  const all = spans.getFinishedSpans().filter((s) => s.spanContext().traceId === runTrace);
  const byId = new Map(all.map((s) => [s.spanContext().spanId, s]));
  const stepOf = (s: ReadableSpan): string | undefined => {
    for (
      let p = s.parentSpanContext && byId.get(s.parentSpanContext.spanId);
      p;
      p = p.parentSpanContext && byId.get(p.parentSpanContext.spanId)
    ) {
      if (p.name.startsWith('workflow.step ')) return p.name.slice('workflow.step '.length);
    }
    return undefined;
  };
  const under = (name: string) => all.filter((s) => s.name === name).map(stepOf);
  expect(under('github GET /repos/{owner}/{repo}/issues/{issue_number}')).toEqual(['analyze']);
  // The draft PR is opened once the plan is committed (createPR then makes it ready).
  expect(under('github POST /repos/{owner}/{repo}/pulls')).toEqual(['openDraftPR']);
  expect(under('exec node').sort()).toEqual(['analyze', 'implement', 'plan', 'test']);
  expect(under('exec git push')).toContain('implement');
  // Every call the run made is inside one of its steps.
  expect(all.filter((s) => (s.name.startsWith('exec ') || s.name.startsWith('github ')) && !stepOf(s))).toEqual([]);
  console.log(tree(all));
});
