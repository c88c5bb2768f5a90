/**
 * A run write for tests of the commit statements (src/persistence/commits.ts): a running run keeping
 * its lease, no signal consumed, one history entry; each test sets what it is about.
 */
import type { RunWrite } from '../../src/persistence/commits.ts';

export function runWrite(fence: Pick<RunWrite, 'id' | 'expectedVersion' | 'owner' | 'epoch'>, over: Partial<RunWrite> = {}): RunWrite {
  return {
    ...fence,
    status: 'running',
    snapshot: { value: 'x' },
    stateValue: 'x',
    output: null,
    error: null,
    timers: [],
    steps: {},
    stepsDone: null,
    wakeAt: null,
    release: false,
    statusMessage: null,
    seenSignalSeq: 0,
    consumedSignals: [],
    reportedSignals: [],
    history: [{ type: 'test' }],
    ...over,
  };
}
