/**
 * Adversarial: `rmapp show` prints a run's error, which quotes the end of the agent's stderr. An agent
 * (or a repository's tests) printing terminal escape sequences must not have them obeyed by the
 * operator's terminal: clear the screen, rewrite a line, set the clipboard (OSC 52).
 */
import { expect, it } from 'vitest';
import { formatRunDetails, formatRunList } from '../src/rmapp/cli/format.ts';
import type { RunInfo } from '../src/state_machine/run-info.ts';

const hostile = 'failed\x1b[2J\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07\rall tests passed\x9b31m';
const at = new Date('2026-01-01T00:00:00Z');
const run = {
  id: 'run-1',
  workflow: 'IssueImplementation',
  workflowVersion: 'v1',
  status: 'failed',
  statusMessage: hostile,
  state: 'failed',
  createdAt: at,
  updatedAt: at,
  wakeAt: null,
  output: null,
  error: { category: 'agent', code: 'AGENT_FAILED', message: `The coding agent (claude) exited with 1: ${hostile}` },
  children: [],
} as unknown as RunInfo;

it('no control character of a run reaches the terminal; newlines of the layout stay', () => {
  const history = [
    {
      at,
      type: 'step.failed',
      path: '',
      step: 'implementing',
      attempt: 1,
      state: null,
      data: { error: { category: 'agent', message: hostile } },
    },
  ];
  for (const text of [formatRunDetails(run, history as never), formatRunList([run])]) {
    // eslint-disable-next-line no-control-regex -- the point
    expect(text.match(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g), 'control characters printed as they are').toBeNull();
  }
  const details = formatRunDetails(run, history as never);
  expect(details).toContain('failed\\x1b[2J\\x1b]52;c;');
  expect(details.split('\n').length).toBeGreaterThan(5);
});
