/**
 * `rmapp runs watch` / `start --wait` follow a run by polling (src/rmapp/cli/progress-lines.ts): each
 * wait listens to the stop signal and must stop listening when it ends. One listener was added per
 * poll and never removed (Node's MaxListenersExceededWarning after ten polls of a pending run).
 */
import { getEventListeners } from 'node:events';
import { expect, it } from 'vitest';
import { followRun, type RunReader } from '../src/rmapp/cli/progress-lines.ts';
import type { RunInfo } from '../src/state_machine/run-info.ts';

it('polling a run that stays pending leaves no listener behind on the stop signal', async () => {
  let reads = 0;
  const controller = new AbortController();
  const listeners: number[] = [];
  const reader: RunReader = {
    get: async () => {
      reads += 1;
      listeners.push(getEventListeners(controller.signal, 'abort').length);
      if (reads === 30) controller.abort();
      return { id: 'r1', status: 'pending' } as unknown as RunInfo;
    },
    history: async () => [],
  };
  const run = await followRun(reader, 'r1', () => {}, { pollMs: 1, signal: controller.signal });
  expect(run.status).toBe('pending');
  expect(reads).toBe(30);
  expect(Math.max(...listeners), `abort listeners seen at each poll: ${listeners.join(',')}`).toBe(0);
});
