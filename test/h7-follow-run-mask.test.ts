/**
 * `runs watch` and `start --wait` print a run's history lines masked, then terminal-safe
 * (src/rmapp/cli/progress-lines.ts `followRun`'s `mask`). Masked after `terminalSafe`, a secret split by
 * colour codes in a step's error (an agent's stderr) was printed in the clear: each code became `\xNN`,
 * whose letters and digits came between the secret's, and the masker finds a secret by those alone.
 */
import { describe, expect, it } from 'vitest';
import { createMasker } from '../src/rmapp/masking.ts';
import { followRun, type RunReader } from '../src/rmapp/cli/progress-lines.ts';
import type { HistoryEvent } from '../src/persistence/run-status.ts';
import type { RunInfo } from '../src/state_machine/run-info.ts';

const SECRET = 'Q7mZp3Rt9XwLk2Vb8NcY4HdJ';
// The secret as a diff coloured by word prints it: three pieces, each in its own colour.
const COLOURED = `\x1b[31mQ7mZp3Rt\x1b[32m9XwLk2Vb\x1b[33m8NcY4HdJ\x1b[0m`;

const entry = (seq: number, type: string, data: unknown): HistoryEvent => ({
  seq,
  type,
  path: '',
  state: null,
  step: 'agent',
  attempt: 1,
  data,
  worker: null,
  leaseEpoch: null,
  at: new Date(0),
});

const reader: RunReader = {
  get: async () => ({ id: 'r1', status: 'failed' }) as RunInfo,
  history: async () => [
    entry(1, 'step.failed', { error: { category: 'permanent', message: `the agent failed: token ${COLOURED} refused` } }),
    entry(2, 'progress', { message: `pushing with ${COLOURED}` }),
  ],
};

/** The letters and digits printed, the `\xNN` of each escaped control taken out. */
const lettersOf = (text: string) => text.replace(/\\x[0-9a-f]{2}/g, '').replace(/[^A-Za-z0-9]/g, '');

describe('followRun with the CLI masker', () => {
  it('masks a secret split by colour codes before escaping the codes', async () => {
    const masker = createMasker([SECRET], { minted: null });
    const lines: string[] = [];
    // As the CLI prints: every line goes through the masker on its way out too.
    await followRun(reader, 'r1', (line) => lines.push(masker.text(line)), { mask: (t) => masker.text(t) });
    expect(lines.length, 'the two entries were not printed').toBe(2);
    for (const line of lines) {
      // eslint-disable-next-line no-control-regex -- a raw control in the output is what is checked
      expect(line, 'a raw escape reached the terminal').not.toMatch(/[\x1b]/);
      expect(lettersOf(line), `the secret was printed in the clear: ${JSON.stringify(line)}`).not.toContain(SECRET);
      expect(lettersOf(line), `a piece of the secret was printed: ${JSON.stringify(line)}`).not.toMatch(/Q7mZp3Rt|9XwLk2Vb|8NcY4HdJ/);
    }
  });
});
