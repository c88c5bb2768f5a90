/**
 * The progress comments follow the engine's events, fire and forget. When the run cannot be read (the
 * database blips, the run was pruned), the event must neither end the process with an unhandled
 * rejection (Node's default; vitest fails the file on one) nor leave the run's view held for the life
 * of the process; the next event reads the run again.
 */
import { expect, it } from 'vitest';
import type { Engine } from '../src/state_machine/engine.ts';
import type { GitHubOctokit } from '../src/rmapp/github/client.ts';
import { attachProgressComments } from '../src/rmapp/progress-comment.ts';

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
