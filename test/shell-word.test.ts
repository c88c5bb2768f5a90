/**
 * The commands the CLI prints for a run can be pasted as they are (src/rmapp/cli/shell-word.ts): an id
 * starting with `-` after `--` (`rmapp runs show -lead` failed: "unknown option", an outside tester), one
 * holding what a shell splits or expands single-quoted.
 */
import { expect, it } from 'vitest';
import { runsCommand, shellWord } from '../src/rmapp/cli/shell-word.ts';
import { formatRunDetails } from '../src/rmapp/cli/format.ts';
import type { RunInfo } from '../src/state_machine/run-info.ts';

it('an id is written as the shell reads it back, after -- when it starts with -, the options before it', () => {
  expect(shellWord('r-1')).toBe('r-1');
  expect(shellWord("a b'c$")).toBe(`'a b'\\''c$'`);
  expect(runsCommand('show', 'r-1')).toBe('rmapp runs show r-1');
  expect(runsCommand('show', '-lead')).toBe('rmapp runs show -- -lead');
  expect(runsCommand('retry', 'r-1', { options: '--drop-signal' })).toBe('rmapp runs retry r-1 --drop-signal');
  expect(runsCommand('retry', '-lead', { options: '--drop-signal' })).toBe('rmapp runs retry --drop-signal -- -lead');
  expect(runsCommand('send', '-lead', { rest: `'{}'` })).toBe(`rmapp runs send -- -lead '{}'`);
});

/** A failed run as `runs show` gets it, with `error`. */
function failedRun(id: string, error: RunInfo['error']): RunInfo {
  const at = new Date(0);
  return {
    id,
    workflow: 'w',
    workflowVersion: '1',
    status: 'failed',
    statusMessage: null,
    state: 's',
    input: {},
    output: null,
    error,
    parentRunId: null,
    idempotencyKey: null,
    wakeAt: null,
    leaseOwner: null,
    createdAt: at,
    updatedAt: at,
    finishedAt: at,
    children: [],
  };
}

it("runs show's retry command for a run that failed handling a signal is one that works for an id starting with -", () => {
  const run = failedRun('-lead', {
    name: 'Error',
    message: 'boom',
    code: 'MACHINE_ERROR',
    category: 'permanent',
    signal: { id: 3, type: 'approve' },
  });
  expect(formatRunDetails(run, []).split('\n')).toContain(
    'Signal    #3 approve — failed handling it; retry without it: rmapp runs retry --drop-signal -- -lead',
  );
});

it("runs show prints a history entry's error without a category as its message alone, never `[undefined]`", () => {
  const at = new Date(0);
  const run = failedRun('r-1', null);
  const entry = (seq: number, error: unknown) => ({
    seq,
    type: 'step.failed',
    path: '',
    state: null,
    step: 'fetch',
    attempt: 1,
    data: { error },
    worker: null,
    leaseEpoch: null,
    at,
  });
  const lines = formatRunDetails(run, [
    entry(1, { message: 'written by another version' }),
    entry(2, { category: 'transient' }),
    entry(3, { category: 'permanent', message: 'boom' }),
  ]).split('\n');
  expect(
    lines.filter((l) => l.includes('undefined')),
    'lines naming undefined',
  ).toEqual([]);
  expect(lines).toContain('  1970-01-01T00:00:00.000Z  step.failed fetch #1  written by another version');
  expect(lines).toContain('  1970-01-01T00:00:00.000Z  step.failed fetch #1  [transient]');
  expect(lines).toContain('  1970-01-01T00:00:00.000Z  step.failed fetch #1  [permanent] boom');
});
