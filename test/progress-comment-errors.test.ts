/**
 * The progress comments follow the engine's events, fire and forget. When the run cannot be read (the
 * database blips, the run was pruned), the event must neither end the process with an unhandled
 * rejection (Node's default; vitest fails the file on one) nor leave the run's view held for the life
 * of the process; the next event reads the run again. When GitHub fails a write for a reason that
 * passes, the writer tries again (the comment is found by its marker first), and not after stop().
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../src/state_machine/engine.ts';
import { createGitHubClient, type GitHubOctokit } from '../src/rmapp/github/client.ts';
import { attachProgressComments } from '../src/rmapp/progress-comment.ts';
import { GitHubEmulator } from './helpers/github-emulator.ts';

it('an event of a run that cannot be read is logged and forgotten; the next one reads it again', async () => {
  const handlers = new Map<string, ((e: Record<string, unknown>) => void)[]>();
  let reads = 0;
  const engine = {
    on(name: string, fn: (e: Record<string, unknown>) => void) {
      handlers.set(name, [...(handlers.get(name) ?? []), fn]);
      return () => {};
    },
    get: async () => {
      reads++;
      throw new Error('connection terminated');
    },
    history: async () => [],
  } as unknown as Engine;
  const logged: string[] = [];
  const log = {
    error: (_o: unknown, m?: string) => logged.push(`error ${m}`),
    warn: (_o: unknown, m?: string) => logged.push(`warn ${m}`),
  };
  const progress = attachProgressComments(engine, {} as GitHubOctokit, { stages: {}, log });
  const fire = (name: string, e: Record<string, unknown>) => handlers.get(name)?.forEach((fn) => fn(e));

  fire('state.entered', { runId: 'r1', path: '', state: 'analyzing' });
  fire('run.waiting', { runId: 'r1' });
  await new Promise((r) => setTimeout(r, 50));
  expect(progress.heldRuns(), 'the view of a run that could not be read is still held').toEqual([]);
  expect(logged.join('\n')).toMatch(/warn progress comment of run r1: reading the run failed: connection terminated/);

  fire('state.entered', { runId: 'r1', path: '', state: 'planning' });
  await new Promise((r) => setTimeout(r, 50));
  expect(reads, 'the next event read the run again').toBe(2);
  progress.stop();
});

describe('a progress comment GitHub fails to write is written again', () => {
  let emulator: GitHubEmulator;
  let gh: GitHubOctokit;
  beforeAll(async () => {
    emulator = new GitHubEmulator('s3cret');
    gh = createGitHubClient({
      baseUrl: await emulator.start(),
      token: 's3cret',
      retries: 2,
      retryBaseMs: 10,
      minWriteIntervalMs: 0,
      minNotifyingWriteIntervalMs: 0,
    });
  });
  afterAll(() => emulator.stop());

  /** An engine that only emits the events the writer follows, for runs on issues of acme/widgets. */
  function fakeEngine() {
    const handlers = new Map<string, ((e: Record<string, unknown>) => void)[]>();
    const engine = {
      on(name: string, fn: (e: Record<string, unknown>) => void) {
        handlers.set(name, [...(handlers.get(name) ?? []), fn]);
        return () =>
          handlers.set(
            name,
            (handlers.get(name) ?? []).filter((f) => f !== fn),
          );
      },
      get: async (runId: string) => ({
        id: runId,
        workflow: 'IssueImplementation',
        input: { owner: 'acme', repo: 'widgets', issueNumber: Number(runId.split('-')[1]) },
        createdAt: new Date(),
      }),
      history: async () => [],
      getArtifact: async () => undefined,
    } as unknown as Engine;
    const fire = (name: string, e: Record<string, unknown>) => handlers.get(name)?.forEach((fn) => fn(e));
    return { engine, fire };
  }
  const quiet = { error: () => {}, warn: () => {} };
  const bodiesOn = (issue: number) => (emulator.comments.get(`acme/widgets#${issue}`) ?? []).map((c) => c.body.split('\n')[0]);
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 25));
    expect(ok(), what).toBe(true);
  };

  it("a run's only write answered 5xx (made or not) ends as one comment with its final body", async () => {
    const { engine, fire } = fakeEngine();
    const progress = attachProgressComments(engine, gh, { stages: {}, minIntervalMs: 20, log: quiet });
    const route = '/repos/{owner}/{repo}/issues/{issue_number}/comments';
    // #61: GitHub made the comment and answered 502; #62: refused twice before making it.
    emulator.hook({ method: 'POST', route, when: 'after', run: () => ({ status: 502 }) });
    fire('run.finished', { runId: 'run-61', status: 'succeeded', output: null });
    await until('the comment on #61 has its final body', () => bodiesOn(61)[0]?.includes('took') === true);
    emulator.hook({ method: 'POST', route, when: 'before', times: 2, run: () => ({ status: 503 }) });
    fire('run.finished', { runId: 'run-62', status: 'succeeded', output: null });
    await until('the comment on #62 was written', () => bodiesOn(62).length > 0);
    await until('the views were released', () => progress.heldRuns().length === 0);
    expect(bodiesOn(61), 'comments on #61').toHaveLength(1);
    expect(bodiesOn(62), 'comments on #62').toHaveLength(1);
    expect(bodiesOn(62)[0]).toContain('took');
    progress.stop();
  });

  it('a refusal that will not pass is not tried again, and nothing is tried after stop()', async () => {
    const { engine, fire } = fakeEngine();
    const progress = attachProgressComments(engine, gh, { stages: {}, minIntervalMs: 20, log: quiet });
    emulator.requests.length = 0;
    emulator.failNext('POST', /\/issues\/63\/comments$/, 403, { message: 'Resource not accessible by integration', times: 5 });
    fire('run.finished', { runId: 'run-63', status: 'succeeded', output: null });
    await until('the view of #63 was released', () => progress.heldRuns().length === 0);
    await new Promise((r) => setTimeout(r, 300));
    expect(emulator.writes(/\/issues\/63\/comments$/), 'creations of the comment on #63 sent').toHaveLength(1);
    progress.stop();
    // A passing failure, then stop() before the retry (due 400 ms later): the retry is not made.
    const slow = fakeEngine();
    const stopping = attachProgressComments(slow.engine, gh, { stages: {}, minIntervalMs: 400, log: quiet });
    emulator.failNext('POST', /\/issues\/64\/comments$/, 502, { times: 5 });
    slow.fire('run.finished', { runId: 'run-64', status: 'succeeded', output: null });
    await until('the first creation on #64 was sent', () => emulator.writes(/\/issues\/64\/comments$/).length > 0);
    stopping.stop();
    await new Promise((r) => setTimeout(r, 1_000));
    expect(emulator.writes(/\/issues\/64\/comments$/), 'creations on #64 sent, stop() included').toHaveLength(1);
  });
});
